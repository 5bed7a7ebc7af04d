"""Command-line flags read from the configuration schema (``earlyphase.core.schema.Setting``).

Every setting is one flag ``--name-with-dashes`` (its flat name: ``--measure-size``,
``--seed-init``), typed from its declaration, with its help and default; an optional setting takes
its none word (``--batch-size full``, ``--n-train all``, ``--chunk-size none``); a yes/no setting
is ``--barrier`` / ``--barrier false`` / ``--no-barrier``; a list setting takes several values
(``--depths 2 4 8``). A flag stores its value only when given (argparse.SUPPRESS): the
configuration applies its own defaults to the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from earlyphase.core.schema import Setting, coerce
from earlyphase.core.validate import ConfigError

OTHER_NAMES: Mapping[str, tuple[str, ...]] = {"seed_measure": ("--measure-seed",)}
"""Further flags of a setting (the sweep's historical ``--measure-seed``)."""
OTHER_NEGATIVES: Mapping[str, tuple[str, ...]] = {"warm_start": ("--cold-start",)}
"""Further flags switching a yes/no setting off (``earlyphase train``'s historical ``--cold-start``)."""


def flag(setting: Setting) -> str:
    return "--" + setting.name.replace("_", "-")


def add_setting_flags(
    parser: argparse.ArgumentParser,
    settings: Iterable[Setting],
    dest: Callable[[Setting], str] = lambda setting: setting.name,
    many: Callable[[Setting], bool] = lambda setting: False,
    defaults: Mapping[str, Any] | None = None,
    title: str = "",
) -> None:
    """One flag per setting, in one argument group per section.

    ``dest``: the namespace attribute of a setting (default its flat name); ``many``: whether it
    takes a list; ``defaults``: the default shown in its help where it differs from the setting's
    own (a required setting has no default and shows none); ``title``: before each group's name.
    """
    groups: dict[str, Any] = {}
    for setting in settings:
        group = groups.get(setting.section)
        if group is None:
            group = groups[setting.section] = parser.add_argument_group(f"{title}[{setting.section}] settings")
        default = (defaults or {}).get(setting.name, setting.default)
        text = _help(setting, default)
        converter = _converter(setting)
        if setting.hint is bool:
            group.add_argument(
                flag(setting),
                *OTHER_NAMES.get(setting.name, ()),
                dest=dest(setting),
                nargs="?",
                const=True,
                type=converter,
                metavar="BOOL",
                default=argparse.SUPPRESS,
                help=text,
            )
            group.add_argument(
                "--no-" + flag(setting)[2:],
                *OTHER_NEGATIVES.get(setting.name, ()),
                dest=dest(setting),
                action="store_const",
                const=False,
                default=argparse.SUPPRESS,
                help=f"the same as {flag(setting)} false",
            )
            continue
        group.add_argument(
            flag(setting),
            *OTHER_NAMES.get(setting.name, ()),
            dest=dest(setting),
            nargs="+" if many(setting) else None,
            type=converter,
            metavar=_metavar(setting),
            default=argparse.SUPPRESS,
            help=text,
        )


def given_settings(args: argparse.Namespace, settings: Iterable[Setting]) -> dict[str, Any]:
    """{flat name: value} of the settings given on the command line (their dest is their name)."""
    return {setting.name: getattr(args, setting.name) for setting in settings if hasattr(args, setting.name)}


def _converter(setting: Setting) -> Callable[[str], Any]:
    """The command-line text of one value as the setting's type (a list's items as its item type)."""
    hint = setting.hint
    if typing.get_origin(hint) is tuple:
        hint = typing.get_args(hint)[0]

    def convert(text: str) -> Any:
        try:
            return coerce(setting.path, text, hint, setting.none_word, text=True)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = setting.name
    return convert


def _metavar(setting: Setting) -> str:
    if setting.choices:
        return "|".join(setting.choices)
    kind = {int: "N", float: "X", str: "TEXT"}
    if typing.get_origin(setting.hint) is tuple:
        return "N"
    inner = [a for a in typing.get_args(setting.hint) or (setting.hint,) if a is not type(None)][0]
    return kind.get(inner, "VALUE") + (f"|{setting.none_word}" if setting.optional else "")


def _help(setting: Setting, default: Any) -> str:
    text = setting.help.replace("%", "%%")
    if default is dataclasses.MISSING:
        return text
    if isinstance(default, tuple):
        shown = " ".join(str(item) for item in default)
    elif isinstance(default, bool):
        shown = "true" if default else "false"
    else:
        shown = f"{default:g}" if isinstance(default, float) else str(default)
    if default is None:
        shown = f"'{setting.none_word}'"
    return f"{text} (default {shown})"
