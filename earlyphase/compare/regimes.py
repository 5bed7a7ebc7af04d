"""The four regimes of the sharpness over a long run (docs/PROTOCOL.md section 4).

Given the sharpness lambda_t at the measured steps of one run at learning rate eta, let
lambda~_t be its running median over ``smooth_points`` consecutive measurements (centred,
the raw value at the ends; it removes the step-to-step oscillation of SGD and of the edge
of stability). Then

  t_a  end of the early transient: the first measured step t at which lambda~ stays within
       a factor 1 +- flat_tolerance of lambda~_t for every measurement in [t, t + flat_steps]
       (the window must lie inside the run);
  t_c  start of the edge of stability: the first measured step t >= t_a with
       lambda~_t >= eos_fraction * 2 / eta (for SGD lower eos_fraction: the edge sits below 2/eta
       by a batch-size-dependent gap);
  t_b  start of progressive sharpening: with m the smallest lambda~ over [t_a, t_c) (over
       [t_a, end] without an edge), reached first at t_m, the first measured step t >= t_m with
       lambda~_t > (1 + rise_tolerance) * m; t_c if that comes first;

and the regimes are the half-open step ranges

  early transient           [first step, t_a)
  intermediate saturation   [t_a, t_b)
  progressive sharpening    [t_b, t_c)
  edge of stability         [t_c, last step + 1)

A boundary that is never reached extends the regime before it to the end of the run; a
regime whose range is empty is None (e.g. no saturation when the sharpness rises at once).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from earlyphase.core.validate import require_int, require_positive

DEFAULT_EOS_FRACTION = 0.98
"""lambda~ >= 0.98 * 2/eta marks the edge of stability of full-batch GD (lower it for SGD)."""
REGIME_NAMES = ("early_transient", "intermediate_saturation", "progressive_sharpening", "edge_of_stability")
REGIME_LABELS = {
    "early_transient": "early transient",
    "intermediate_saturation": "intermediate saturation",
    "progressive_sharpening": "progressive sharpening",
    "edge_of_stability": "edge of stability",
}


@dataclass(frozen=True)
class Regimes:
    """Step ranges [start, stop) of the four regimes; None where a regime is absent."""

    early_transient: tuple[int, int] | None
    intermediate_saturation: tuple[int, int] | None
    progressive_sharpening: tuple[int, int] | None
    edge_of_stability: tuple[int, int] | None

    def items(self) -> list[tuple[str, tuple[int, int] | None]]:
        return [(name, getattr(self, name)) for name in REGIME_NAMES]

    def describe(self) -> str:
        return "; ".join(
            f"{REGIME_LABELS[name]}: " + ("absent" if span is None else f"steps {span[0]}..{span[1] - 1}")
            for name, span in self.items()
        )


def running_median(values: np.ndarray, points: int) -> np.ndarray:
    """Centred running median over ``points`` consecutive entries; the raw value where the
    window does not fit (the first and last points // 2 entries), so that a transient
    shorter than the window is not smoothed away."""
    smooth = pd.Series(values).rolling(points, center=True, min_periods=points).median().to_numpy()
    return np.where(np.isnan(smooth), values, smooth)


def detect_regimes(
    step: ArrayLike,
    sharpness: ArrayLike,
    eta: float,
    flat_tolerance: float = 0.05,
    flat_steps: int = 20,
    rise_tolerance: float = 0.03,
    eos_fraction: float = DEFAULT_EOS_FRACTION,
    smooth_points: int = 5,
) -> Regimes:
    """Regime step ranges of one run from lambda_t at its measured steps (module docstring)."""
    require_positive("eta", eta)
    require_positive("flat_tolerance", flat_tolerance)
    require_int("flat_steps", flat_steps, minimum=1)
    require_positive("rise_tolerance", rise_tolerance)
    require_positive("eos_fraction", eos_fraction)
    require_int("smooth_points", smooth_points, minimum=1)
    step = np.asarray(step, dtype=float)
    sharpness = np.asarray(sharpness, dtype=float)
    if step.shape != sharpness.shape or step.ndim != 1:
        raise ValueError("step and sharpness must be one-dimensional arrays of equal length")
    order = np.argsort(step, kind="stable")
    step, sharpness = step[order], sharpness[order]
    measured = np.isfinite(sharpness)
    if measured.sum() < 2:
        raise ValueError("regime detection needs the sharpness at two or more steps")
    t = step[measured].astype(int)
    smooth = running_median(sharpness[measured], smooth_points)
    first, stop = int(step.min()), int(step.max()) + 1

    index_a = _first_flat(t, smooth, flat_tolerance, flat_steps)
    if index_a is None:
        return Regimes(_span(first, stop), None, None, None)
    index = np.arange(t.size)
    index_c = _first((index >= index_a) & (smooth >= eos_fraction * 2.0 / eta))
    before_edge = slice(index_a, t.size if index_c is None else max(index_c, index_a + 1))
    index_m = index_a + int(np.argmin(smooth[before_edge]))
    rises = (index >= index_m) & (smooth > (1.0 + rise_tolerance) * smooth[index_m])
    index_b = min(i for i in (_first(rises), index_c, t.size) if i is not None)
    t_a = int(t[index_a])
    t_b = int(t[index_b]) if index_b < t.size else stop
    t_c = int(t[index_c]) if index_c is not None else stop
    return Regimes(_span(first, t_a), _span(t_a, t_b), _span(t_b, t_c), _span(t_c, stop))


def _first_flat(t: np.ndarray, smooth: np.ndarray, tolerance: float, window: int) -> int | None:
    """Index of the first t_i whose window [t_i, t_i + window] lies in the run and within 1 +- tol."""
    stops = np.searchsorted(t, t + window, side="right")
    for i in np.flatnonzero(t + window <= t[-1]):
        if np.all(np.abs(smooth[i : stops[i]] / smooth[i] - 1.0) <= tolerance):
            return int(i)
    return None


def _first(mask: np.ndarray) -> int | None:
    return int(np.argmax(mask)) if mask.any() else None


def _span(start: int, stop: int) -> tuple[int, int] | None:
    return (start, stop) if stop > start else None
