"""The learning-rate grid: eta = c / lambda_H0 with c = 2**x on a uniform grid in x."""

from __future__ import annotations

import numpy as np

from earlyphase.core.validate import require_positive

DEFAULT_X_STEP = 0.1
"""Default grid step in log2(c): 2**0.1 = 1.072, a 7.2 % step (SCIENCE.md section 2)."""


def c_grid(x_min: float = 0.0, x_max: float = 5.0, x_step: float = DEFAULT_X_STEP) -> np.ndarray:
    """Grid c_k = 2**(x_min + k * x_step) for k = 0, 1, ... while x <= x_max.

    The exponents are rounded to 10 decimals so that the same point is produced
    identically however the grid is built (memoisation and resumption rely on it).
    """
    require_positive("x_step", x_step)
    if x_max < x_min:
        raise ValueError(f"x_max must be >= x_min ({x_min}), got {x_max}")
    count = int(np.floor((x_max - x_min) / x_step + 1e-9)) + 1
    # Python's float power, as in grid_point: np.power differs from it in the last bit
    return np.array([2.0 ** float(x) for x in grid_exponents(x_min, x_step, count)])


def grid_exponents(x_min: float, x_step: float, count: int) -> np.ndarray:
    """Exponents x_k = round(x_min + k * x_step, 10) for k = 0 .. count-1."""
    return np.round(x_min + x_step * np.arange(count), 10)


def grid_point(index: int, x_min: float = 0.0, x_step: float = DEFAULT_X_STEP) -> float:
    """c at grid index ``index``: 2**round(x_min + index * x_step, 10)."""
    return float(2.0 ** round(x_min + index * x_step, 10))
