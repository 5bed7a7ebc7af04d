"""Settings declared once: a frozen-dataclass field carries its default, help, allowed values and
the word that switches it off; the TOML sections, the command-line flags and the validation are
read from these fields (``earlyphase.empirical.config``, ``earlyphase.empirical.sweep.spec``,
``earlyphase.cli``).

A configuration section is a frozen dataclass deriving from ``Section`` with a ``SECTION`` name;
each field is declared with ``setting(default, help, ...)``. ``Section.__post_init__`` checks
every field against its declaration (type, choices, range) and then calls ``check()`` for the
rules that tie fields together; a bad value raises ``ConfigError`` whose parameter is
``section.key``.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Collection
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Any, ClassVar

from earlyphase.core.validate import ConfigError, require_choice, require_int, require_positive

NONE_WORD = "none"
"""The word that switches an optional setting off where its declaration names no other."""


def setting(
    default: Any,
    help: str,
    *,
    choices: Collection[str] = (),
    minimum: int | None = None,
    allow_zero: bool = False,
    below: float | None = None,
    none_word: str = NONE_WORD,
    name: str | None = None,
) -> Any:
    """A dataclass field declared with everything its readers need.

    ``help``: one line for the TOML documentation and ``--help``; ``choices``: the allowed
    strings; ``minimum``: least integer value; for a number, > 0 (>= 0 with ``allow_zero``) and
    < ``below``; ``none_word``: the word for None in a TOML file or on the command line ("none"
    also works); ``name``: the setting's flat name (its flag, its key in records and hashes)
    where it differs from the field name.
    """
    metadata = {
        "help": help,
        "choices": tuple(choices),
        "minimum": minimum,
        "allow_zero": allow_zero,
        "below": below,
        "none_word": none_word,
        "name": name,
    }
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Setting:
    """One setting as its readers see it: ``section.key`` in a TOML file, ``name`` in flat form
    (a flag ``--name-with-dashes``, a record's configuration, a hash), its type, default and help."""

    section: str
    key: str
    name: str
    hint: Any
    default: Any
    help: str
    none_word: str = NONE_WORD
    choices: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def optional(self) -> bool:
        return _is_optional(self.hint)

    def shown(self, value: Any) -> Any:
        """``value`` as a file or a command line writes it: the none word for None."""
        return self.none_word if value is None else value


def settings_of(cls: type, section: str) -> tuple[Setting, ...]:
    """Every field of the dataclass ``cls`` as a Setting of ``section`` (its ``help`` from the field)."""
    hints = _hints(cls)
    return tuple(
        Setting(
            section=section,
            key=field.name,
            name=field.metadata.get("name") or field.name,
            hint=hints[field.name],
            default=field.default,
            help=field.metadata.get("help", ""),
            none_word=field.metadata.get("none_word", NONE_WORD),
            choices=field.metadata.get("choices", ()),
        )
        for field in dataclasses.fields(cls)
    )


@functools.cache
def _hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


class Section:
    """Base of a frozen configuration section: validates its fields from their declarations."""

    SECTION: ClassVar[str]

    def __post_init__(self) -> None:
        hints = _hints(typing.cast(Any, type(self)))
        for field in dataclasses.fields(self):  # type: ignore[arg-type]  # subclasses are dataclasses
            check_value(f"{self.SECTION}.{field.name}", getattr(self, field.name), hints[field.name], field.metadata)
        self.check()

    def check(self) -> None:
        """Rules that tie several fields together (ConfigError naming ``section.key``)."""


def check_value(path: str, value: Any, hint: Any, declaration: typing.Mapping[str, Any]) -> None:
    """ConfigError naming ``path`` unless ``value`` fits ``hint`` and the field's declaration."""
    if value is None and _is_optional(hint):
        return
    kind = _inner(hint)
    if declaration.get("choices"):
        require_choice(path, value, declaration["choices"])
    elif kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false, got {value!r}", path)
    elif kind is int:
        require_int(path, value, minimum=declaration.get("minimum"))
    elif kind is float:
        number = require_positive(path, value, allow_zero=declaration.get("allow_zero", False))
        below = declaration.get("below")
        if below is not None and not number < below:
            low = "[0" if declaration.get("allow_zero") else "(0"
            raise ConfigError(f"{path} must be in {low}, {below:g}), got {value!r}", path)
    elif kind is str and not isinstance(value, str):
        raise ConfigError(f"{path} must be a string, got {value!r}", path)


def _is_optional(hint: Any) -> bool:
    return (isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union) and NoneType in typing.get_args(
        hint
    )


def _inner(hint: Any) -> Any:
    """X of ``X | None``, else ``hint``."""
    if _is_optional(hint):
        (inner,) = [a for a in typing.get_args(hint) if a is not NoneType]
        return inner
    return hint


def coerce(path: str, value: Any, hint: Any, none_word: str = NONE_WORD, text: bool = False) -> Any:
    """``value`` as type ``hint`` (int, float, str, bool, X | None, tuple[int, ...]), else ConfigError naming ``path``.

    ``none_word`` (or "none") stands for None in an optional value. With ``text`` the value comes
    from the command line as a string (a list of strings for lists).
    """
    if _is_optional(hint):
        if value is None or (isinstance(value, str) and value.lower() in (none_word, NONE_WORD)):
            return None
        return coerce(path, value, _inner(hint), none_word, text)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{path} must be a non-empty list of integers, got {value!r}", path)
        items = tuple(coerce(f"{path}[{i}]", item, typing.get_args(hint)[0], text=text) for i, item in enumerate(value))
        if len(set(items)) != len(items):
            raise ConfigError(f"{path} must not repeat values, got {list(items)}", path)
        return items
    key = path.split("[", 1)[0]
    if text and isinstance(value, str):
        value = _from_text(path, value, hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false, got {value!r}", key)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path} must be an integer, got {value!r}", key)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path} must be a number, got {value!r}", key)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path} must be a string, got {value!r}", key)
        return value
    raise TypeError(f"unsupported setting type {hint!r} for {path}")


def _from_text(path: str, value: str, hint: Any) -> Any:
    try:
        if hint is bool:
            return {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}[value.lower()]
        if hint is int:
            return int(value)
        if hint is float:
            return float(value)
    except (KeyError, ValueError):
        raise ConfigError(
            f"{path} must be {'true or false' if hint is bool else 'a number'}, got {value!r}", path.split("[", 1)[0]
        ) from None
    return value
