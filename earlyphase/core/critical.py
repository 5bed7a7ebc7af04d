"""Critical learning-rate constants of a sweep over c (docs/PROTOCOL.md section 3).

Two layers, both used by theory and experiment:

1. Per-run flags, vectorised over any leading axes (runs, seeds, c) with the step axis
   LAST (t = 0 .. T, row 0 the initialisation):

   loss catapult        exists t in 1..T:  L_t / L_0 > 1   (a diverged run counts)
   sharpness catapult   exists t in 1..T:  lambda_t / lambda_0 > 1 + epsilon
                        (finite, measured values only)
   divergence           exists t: L_t not finite or L_t > L_max
   barrier              max_s L((1-s) theta_0 + s theta_T) > L_0

2. Thresholds over c for one (architecture, d, w, seed), from the flags of runs sorted by c:

   c_loss     smallest c with a loss catapult
   c_sharp    smallest c with a sharpness catapult
   c_max      largest c below the first divergent c
   c_barrier  smallest trainable c (c <= c_max) with a barrier; c_max if none has one

   Each is a ``Threshold``: the estimate and the bracketing pair (last c where the
   condition fails, first c where it holds). A threshold not reached in the scanned range
   is reported as not found, with the bracket open on that side; it is never invented.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from earlyphase.core.conventions import DEFAULT_LOSS_MAX, is_diverged

CRITICAL_NAMES = ("c_loss", "c_sharp", "c_max", "c_barrier")


# --- per-run flags -----------------------------------------------------------------
def loss_catapult_flag(loss: ArrayLike, loss_max: float = DEFAULT_LOSS_MAX) -> np.ndarray:
    """exists t >= 1 with L_t / L_0 > 1, or the run diverged (step axis last)."""
    loss = np.asarray(loss, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rises = (loss[..., 1:] > loss[..., :1]).any(axis=-1)
    return rises | divergence_flag(loss, loss_max)


def sharpness_catapult_flag(sharpness: ArrayLike, epsilon: float = 0.0) -> np.ndarray:
    """exists t >= 1 with lambda_t / lambda_0 > 1 + epsilon, over finite values (step axis last)."""
    sharpness = np.asarray(sharpness, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = sharpness[..., 1:] / sharpness[..., :1]
        return (np.isfinite(ratio) & (ratio > 1.0 + epsilon)).any(axis=-1)


def divergence_flag(loss: ArrayLike, loss_max: float = DEFAULT_LOSS_MAX) -> np.ndarray:
    """exists t >= 1 with a non-finite L_t or L_t > L_max (step axis last; t = 0 is the initial loss)."""
    return is_diverged(np.asarray(loss, dtype=float)[..., 1:], loss_max).any(axis=-1)  # type: ignore[return-value]


BARRIER_STEP = 0.01
"""Spacing of the interpolation parameter s in [0, 1] of the straight path (docs/PROTOCOL.md section 3)."""


def interpolation_grid(step: float = BARRIER_STEP) -> np.ndarray:
    """s = 0, step, 2 step, ..., 1: where the loss on theta(s) = (1-s) theta_0 + s theta_T is read."""
    return np.linspace(0.0, 1.0, int(round(1.0 / step)) + 1)


def barrier_flag(path_loss: ArrayLike, loss0: ArrayLike) -> np.ndarray:
    """max_s L(theta(s)) > L_0 along the straight line theta(s) = (1-s) theta_0 + s theta_T."""
    path_loss = np.asarray(path_loss, dtype=float)
    with np.errstate(invalid="ignore"):
        peak = np.where(np.isfinite(path_loss), path_loss, np.inf).max(axis=-1)
    return peak > np.asarray(loss0, dtype=float)


# --- thresholds over c -------------------------------------------------------------
@dataclass(frozen=True)
class Threshold:
    """A critical value known to the grid resolution.

    ``low`` is the last scanned c where the defining condition fails, ``high`` the first
    where it holds (for c_max: the last trainable c and the first divergent one). A side
    is None when the bracket is open there (the threshold lies outside the scanned range).
    ``estimate`` is the grid value the definition names, None when not found.
    """

    name: str
    estimate: float | None
    low: float | None
    high: float | None

    @property
    def found(self) -> bool:
        return self.estimate is not None

    def describe(self) -> str:
        if self.found:
            return f"{self.name} = {self.estimate:.4g}  (bracket {_fmt(self.low)} .. {_fmt(self.high)})"
        if self.low is None:
            return f"{self.name} not found: below the scanned range (c < {_fmt(self.high)})"
        return f"{self.name} not found: above the scanned range (c > {_fmt(self.low)})"


@dataclass(frozen=True)
class CriticalValues:
    """c_loss, c_sharp, c_max and c_barrier of one sweep over c."""

    c_loss: Threshold
    c_sharp: Threshold
    c_max: Threshold
    c_barrier: Threshold

    def as_row(self) -> dict[str, float | None]:
        """Flat mapping {c_loss, c_loss_low, c_loss_high, ...} for tables."""
        row: dict[str, float | None] = {}
        for name in CRITICAL_NAMES:
            threshold: Threshold = getattr(self, name)
            row[name] = threshold.estimate
            row[f"{name}_low"] = threshold.low
            row[f"{name}_high"] = threshold.high
        return row

    def as_dict(self) -> dict[str, dict]:
        return {name: asdict(getattr(self, name)) for name in CRITICAL_NAMES}


def first_true(name: str, c: ArrayLike, flags: ArrayLike) -> Threshold:
    """Smallest c whose flag is True, bracketed by the c before it (c sorted ascending)."""
    c, flags = _sorted(c, flags)
    if not flags.any():
        return Threshold(name, None, float(c[-1]) if c.size else None, None)
    index = int(np.argmax(flags))
    return Threshold(name, float(c[index]), float(c[index - 1]) if index else None, float(c[index]))


def last_before_first_true(name: str, c: ArrayLike, flags: ArrayLike) -> Threshold:
    """Largest c below the first True flag (c_max from divergence flags)."""
    c, flags = _sorted(c, flags)
    if not flags.any():
        return Threshold(name, None, float(c[-1]) if c.size else None, None)
    index = int(np.argmax(flags))
    if index == 0:
        return Threshold(name, None, None, float(c[0]))
    return Threshold(name, float(c[index - 1]), float(c[index - 1]), float(c[index]))


def critical_values(
    c: ArrayLike,
    loss_catapult: ArrayLike,
    sharpness_catapult: ArrayLike,
    diverged: ArrayLike,
    barrier: ArrayLike | None = None,
) -> CriticalValues:
    """Thresholds of one sweep from per-run flags (one entry per c, any order).

    The scan ends at the first divergent c: runs at larger c (an overshoot, or a run that
    trains again above a divergence) are left out of every threshold, so c_sharp and c_barrier
    never exceed the first divergence. ``barrier`` may be None (not measured): c_barrier is
    then reported not found.
    """
    c = np.asarray(c, dtype=float)
    if len({c.shape, np.shape(loss_catapult), np.shape(sharpness_catapult), np.shape(diverged)}) != 1 or c.ndim != 1:
        raise ValueError("c and every flag array must be one-dimensional and of equal length")
    if np.unique(c).size != c.size:
        raise ValueError("c values of one sweep must be distinct")
    c_max = last_before_first_true("c_max", c, diverged)
    if c_max.high is not None:
        scanned = c <= c_max.high
        c, loss_catapult, sharpness_catapult = (
            c[scanned],
            np.asarray(loss_catapult)[scanned],
            np.asarray(sharpness_catapult)[scanned],
        )
        barrier = None if barrier is None else np.asarray(barrier)[scanned]
    if barrier is None:
        c_barrier = Threshold("c_barrier", None, None, None)
    else:
        c_barrier = _barrier_threshold(c, np.asarray(barrier, dtype=bool), c_max)
    return CriticalValues(
        c_loss=first_true("c_loss", c, loss_catapult),
        c_sharp=first_true("c_sharp", c, sharpness_catapult),
        c_max=c_max,
        c_barrier=c_barrier,
    )


def non_monotone(
    c: ArrayLike,
    loss_catapult: ArrayLike,
    sharpness_catapult: ArrayLike,
    diverged: ArrayLike,
    barrier: ArrayLike | None = None,
) -> tuple[str, ...]:
    """Names of the thresholds whose flag switches back in c among the given runs: it holds at
    some c and fails at a larger one (c_max: a run trains above a divergent one). Within the
    scan (c_loss: up to the first divergence; c_sharp and c_barrier: the trainable runs, None
    entries skipped).

    A grid's thresholds are defined whatever the flags do; a bisection assumes a single switch,
    so a name here warns that its answer may differ from the grid's by more than one step.
    """
    c = np.asarray(c, dtype=float)
    diverged = np.asarray(diverged, dtype=bool)
    first_divergent = c[diverged].min() if diverged.any() else np.inf
    names = []
    for name, flags, keep in (
        ("c_loss", loss_catapult, c <= first_divergent),
        ("c_sharp", sharpness_catapult, c < first_divergent),  # a divergent run's sharpness is not finite
        ("c_max", diverged, np.ones(c.shape, dtype=bool)),
        ("c_barrier", barrier, c < first_divergent),
    ):
        if flags is None:
            continue
        flags = np.asarray(flags, dtype=object)
        keep = keep & np.array([flag is not None for flag in flags], dtype=bool)
        ordered = _sorted(c[keep], flags[keep].astype(bool))[1]
        if (ordered[:-1] & ~ordered[1:]).any():
            names.append(name)
    return tuple(names)


def _barrier_threshold(c: np.ndarray, barrier: np.ndarray, c_max: Threshold) -> Threshold:
    """Smallest trainable c with a barrier; c_max (same bracket) when none has one."""
    first_divergent = c_max.high
    trainable = c < first_divergent if first_divergent is not None else np.ones(c.shape, dtype=bool)
    if not trainable.any():
        return Threshold("c_barrier", None, None, first_divergent)
    threshold = first_true("c_barrier", c[trainable], barrier[trainable])
    if threshold.found or not c_max.found:
        return threshold
    return Threshold("c_barrier", c_max.estimate, c_max.low, c_max.high)


def _sorted(c: ArrayLike, flags: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(c, dtype=float)
    flags = np.asarray(flags, dtype=bool)
    order = np.argsort(c, kind="stable")
    return c[order], flags[order]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


# --- seed aggregation --------------------------------------------------------------
@dataclass(frozen=True)
class SeedSummary:
    """Seed statistics of one threshold (docs/PROTOCOL.md section 3).

    Over the ``found`` seeds where the threshold lies in the scanned range (of ``seeds``):
    ``mean`` and ``std`` (ddof = 0) of the estimates, and ``low``/``high`` the means of the
    bracketing grid values of THOSE seeds, so low <= mean <= high; a side is None when a found
    seed's bracket is open there.

    Over all seeds, censored: ``median`` is the median of the per-seed thresholds with "not
    found above the scanned range" counted as +inf and "below" as -inf (seeds with no bracket
    at all, e.g. c_barrier not measured, are left out); None when undefined (no seed, or the two
    middle values are -inf and +inf). When it is infinite, ``median_bound`` is the median with
    each censored seed put at the end of its scanned range: the median is above it (+inf) or
    below it (-inf).
    """

    mean: float | None
    std: float | None
    low: float | None
    high: float | None
    found: int
    seeds: int
    median: float | None = None
    median_bound: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)

    def describe_median(self) -> str:
        """The censored median as text: "3.48", "> 64" (above the range), "< 1" or "-" (undefined)."""
        if self.median is None:
            return "-"
        if math.isinf(self.median):
            return f"{'>' if self.median > 0 else '<'} {self.median_bound:.4g}"
        return f"{self.median:.4g}"


def summarize_seeds(thresholds: Sequence[Threshold]) -> SeedSummary:
    """Mean, std (ddof=0) and mean bracket over the seeds where the threshold was found; censored median over all."""
    found = [t for t in thresholds if t.found]
    estimates = [t.estimate for t in found if t.estimate is not None]  # all of them: found means estimated
    median, bound = _censored_median(thresholds)
    return SeedSummary(
        mean=float(np.mean(estimates)) if estimates else None,
        std=float(np.std(estimates)) if estimates else None,
        low=_mean_if_all([t.low for t in found]),
        high=_mean_if_all([t.high for t in found]),
        found=len(found),
        seeds=len(thresholds),
        median=median,
        median_bound=bound,
    )


def _mean_if_all(values: Sequence[float | None]) -> float | None:
    """Mean of ``values``, None if there are none or any is None (an open side stays open)."""
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if values and len(present) == len(values) else None


def _censored_median(thresholds: Sequence[Threshold]) -> tuple[float | None, float | None]:
    """(median with not-found counted as +-inf, the median with those put at the range's end instead)."""
    values: list[float] = []
    ends: list[float] = []
    for t in thresholds:
        if t.estimate is not None:  # found
            values.append(t.estimate)
            ends.append(t.estimate)
        elif t.low is not None and t.high is None:  # above the scanned range: threshold > low
            values.append(math.inf)
            ends.append(t.low)
        elif t.high is not None and t.low is None:  # below the scanned range: threshold < high
            values.append(-math.inf)
            ends.append(t.high)
    if not values:
        return None, None
    with np.errstate(invalid="ignore"):
        median = float(np.median(values))
    if math.isnan(median):
        return None, None
    return median, (float(np.median(ends)) if math.isinf(median) else None)
