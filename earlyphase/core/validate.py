"""Input checks that raise a clear error naming the parameter and its allowed range.

Bad input raises ``ConfigError`` (a ValueError) whose ``parameter`` names the offending
setting: the CLI prints it as a one-line message, and callers that map settings to their own
names (the sweep spec's ``section.key``) read the attribute instead of parsing the text.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Any


class ConfigError(ValueError):
    """Bad user input: a setting outside its allowed range, a file that cannot serve as input
    or output. ``parameter`` names the setting (None where no single one is to blame)."""

    parameter: str | None = None

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        if parameter is not None:
            self.parameter = parameter

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickles with its parameter (errors travel back from worker processes)."""
        return (type(self), (str(self), self.parameter))


def require_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int, or raise ConfigError naming ``name`` and the allowed range."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int,))
        and not (isinstance(value, float) and value.is_integer())
    ):
        raise ConfigError(f"{name} must be an integer, got {value!r}", name)
    value = int(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}{_upper(maximum)}, got {value}", name)
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum} (and >= {minimum}), got {value}", name)
    return value


def require_positive(name: str, value: Any, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite float > 0 (>= 0 with ``allow_zero``), else raise ConfigError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}", name) from None
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}", name)
    return number


def require_choice(name: str, value: Any, allowed: Collection[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise ConfigError listing the choices."""
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {sorted(allowed)}, got {value!r}", name)
    return value


def _upper(maximum: int | None) -> str:
    return "" if maximum is None else f" and <= {maximum}"
