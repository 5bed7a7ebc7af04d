"""The ``earlyphase`` command-line program.

Every module of this package that defines ``register(subparsers)`` adds one subcommand, named
after the module; ``register`` must call ``parser.set_defaults(run=FUNCTION)`` where
FUNCTION(args) -> int, and the module's ``HELP`` is its one-line summary. Modules import their
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
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
