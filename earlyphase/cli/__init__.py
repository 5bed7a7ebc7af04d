"""The ``earlyphase`` command-line program.

Every module of this package that defines ``register(subparsers)`` adds one subcommand, named
after the module; ``register`` must call ``parser.set_defaults(run=FUNCTION)`` where
FUNCTION(args) -> int, and the module's ``HELP`` is its one-line summary. A subcommand with
actions of its own (``sweep run|status|tables``) names them in ``ACTIONS`` and may name the one
taken when none is given in ``DEFAULT_ACTION``. Modules import their
heavy dependencies (torch, jax, pandas) inside functions: a command builds the options of the
subcommand it runs only, so ``earlyphase predict`` never imports torch.

Bad input (``earlyphase.core.validate.ConfigError``, which the validators, the configurations,
the data loaders and the results directories raise) is printed as one message with exit status
2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from earlyphase.core.validate import ConfigError

DESCRIPTION = """\
earlyphase: the phase diagram of early neural-network training
(Kalra & Barkeshli, NeurIPS 2023). Every experiment is indexed by the
dimensionless learning rate c = eta * lambda_H0, where lambda_H0 is the top
Hessian eigenvalue at initialisation. Run `earlyphase SUBCOMMAND --help`.
"""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The program's parser: every subcommand with its options, or, with ``only``, that
    subcommand's options and the others listed by name and HELP (their options unbuilt)."""
    parser = argparse.ArgumentParser(
        prog="earlyphase", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(title="subcommands", metavar="SUBCOMMAND")
    package = importlib.import_module(__name__)
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        register = getattr(module, "register", None)
        if register is None:
            continue
        if only is None or module_info.name == only:
            register(subparsers)
        else:
            subparsers.add_parser(module_info.name, help=module.HELP)
    return parser


def with_default_action(argv: Sequence[str]) -> list[str]:
    """``argv`` with the subcommand's ``DEFAULT_ACTION`` inserted after it when no action is named
    (``sweep SPEC.toml ...`` -> ``sweep run SPEC.toml ...``); help requests and bare subcommands are left alone."""
    argv = list(argv)
    command = next((index for index, token in enumerate(argv) if not token.startswith("-")), None)
    if command is None or not argv[command].isidentifier() or argv[command].startswith("_"):
        return argv
    try:
        module = importlib.import_module(f"{__name__}.{argv[command]}")
    except ModuleNotFoundError:
        return argv  # an unknown subcommand: argparse reports it
    default = getattr(module, "DEFAULT_ACTION", None)
    rest = argv[command + 1 :]
    if default is None or not rest or rest[0] in module.ACTIONS or rest[0] in ("-h", "--help"):
        return argv
    return [*argv[: command + 1], default, *rest]


def main(argv: Sequence[str] | None = None) -> int:
    argv = with_default_action(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=next((token for token in argv if not token.startswith("-")), ""))
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except ConfigError as error:  # bad input: a clear message, no traceback; anything else keeps its traceback
        parser.exit(2, f"earlyphase: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
