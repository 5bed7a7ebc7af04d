"""The learning-rate grid: eta = c / lambda_H0 with c = 2**x on a uniform grid in x."""

from __future__ import annotations

import numpy as np

from earlyphase.core.validate import ConfigError, require_positive

DEFAULT_X_STEP = 0.1
"""Default grid step in log2(c): 2**0.1 = 1.072, a 7.2 % step (docs/PROTOCOL.md section 2)."""

DEFAULT_X_MAX = 6.0
"""Default top of the grid, c = 2**6 = 64, for the theory and the experiments alike: above the
divergence of the solvable models (c_max 4 to 6.4) and of most measured ReLU nets (10 to 42).
A run family that has not diverged by then has c_max unbracketed (not found); raise x_max for it."""

X_LIMIT = 20.0
"""Grid exponents x lie in [-X_LIMIT, X_LIMIT]: c = 2**x from about 1e-6 to 1e6 (no network
trains at c = 1e6 since c_max is of order 4 to 40; beyond, 2**x soon overflows)."""
MAX_GRID_POINTS = 100_000


def c_grid(x_min: float = 0.0, x_max: float = DEFAULT_X_MAX, x_step: float = DEFAULT_X_STEP) -> np.ndarray:
    """Grid c_k = 2**(x_min + k * x_step) for k = 0, 1, ... while x <= x_max.

    The exponents are rounded to 10 decimals so that the same point is produced
    identically however the grid is built (memoisation and resumption rely on it).
    """
    require_positive("x_step", x_step)
    for name, value in (("x_min", x_min), ("x_max", x_max)):
        require_exponent(name, value)
    if x_max < x_min:
        raise ConfigError(f"x_max must be >= x_min ({x_min}), got {x_max}", "x_max")
    count = int(np.floor((x_max - x_min) / x_step + 1e-9)) + 1
    if count > MAX_GRID_POINTS:
        raise ConfigError(
            f"x_step must give at most {MAX_GRID_POINTS} grid points in [x_min, x_max], got {x_step!r} ({count} points)",
            "x_step",
        )
    # Python's float power, as in grid_point: np.power differs from it in the last bit
    return np.array([2.0 ** float(x) for x in grid_exponents(x_min, x_step, count)])


def require_exponent(name: str, value: float) -> float:
    """``value`` as a float if it is a finite grid exponent in [-X_LIMIT, X_LIMIT], else ConfigError naming ``name``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{name} must be a number in [{-X_LIMIT:g}, {X_LIMIT:g}] (c = 2^{name}), got {value!r}", name
        ) from None
    if not -X_LIMIT <= number <= X_LIMIT:  # also refuses NaN
        raise ConfigError(
            f"{name} must be a finite number in [{-X_LIMIT:g}, {X_LIMIT:g}] (c = 2^{name}), got {value!r}", name
        )
    return number


def grid_exponents(x_min: float, x_step: float, count: int) -> np.ndarray:
    """Exponents x_k = round(x_min + k * x_step, 10) for k = 0 .. count-1."""
    return np.round(x_min + x_step * np.arange(count), 10)


def grid_point(index: int, x_min: float = 0.0, x_step: float = DEFAULT_X_STEP) -> float:
    """c at grid index ``index``: 2**round(x_min + index * x_step, 10)."""
    return float(2.0 ** round(x_min + index * x_step, 10))
