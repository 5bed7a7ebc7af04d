"""Searches over the c grid for the critical values of one (architecture, d, w, seed).

Both searches work on the INDICES k of the grid c_k = 2**(x_min + k * x_step), k = 0..K
(``earlyphase.core.grid.grid_point``), and are pure: the next index to evaluate is a function
of the grid and of the flags evaluated so far (``plan.next_index(evaluated)``). A caller
evaluates one run per requested index, in any way it likes (a loop, a worker pool, a batched
ensemble advancing many searches in lockstep), and a search resumed from stored runs takes
exactly the same path as an uninterrupted one.

- ``GridPlan`` (the reference protocol, docs/PROTOCOL.md section 2): k = 0, 1, 2, ... until the
  first divergent run (or the end of the grid); ``next_chunk`` hands out the same indices a
  chunk at a time, for a caller that evaluates many c in one batch (the theory models).
- ``BracketPlan``: expand from a start index until the first divergence is bracketed, bisect
  it to adjacent grid points, then do the same for the loss catapult, the sharpness catapult
  and the barrier flags below it. With flags monotone in c (False below a threshold, True at
  and above it) every threshold comes out equal to the full grid's: each one is bracketed by
  ADJACENT evaluated grid points and no evaluated point below the bracket has the flag set.

The thresholds themselves are never re-derived here: ``search_result`` passes the evaluated
points up to the first divergence (the range the reference grid scans) to
``earlyphase.core.critical.critical_values``.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from earlyphase.core.critical import (
    CriticalValues,
    barrier_flag,
    critical_values,
    divergence_flag,
    loss_catapult_flag,
    sharpness_catapult_flag,
)
from earlyphase.core.grid import DEFAULT_X_MAX, DEFAULT_X_STEP, c_grid, grid_point
from earlyphase.core.trajectory import Trajectory
from earlyphase.core.validate import ConfigError, require_int


@dataclass(frozen=True)
class Flags:
    """The per-run flags that define the critical values (``earlyphase.core.critical``).

    ``barrier`` is None when the straight-path loss was not measured. The optional margins
    only guide where a search looks next (``BracketPlan``); the flags decide the answer.
    """

    loss_catapult: bool
    sharpness_catapult: bool
    diverged: bool
    barrier: bool | None = None
    loss_margin: float | None = None
    """log max_t L_t / L_0 over the finite losses (+inf if diverged): > 0 iff the loss catapults."""
    sharpness_margin: float | None = None
    """log max_t lambda_t / lambda_0 - log(1 + epsilon): > 0 iff the sharpness catapults."""


def flags_of(trajectory: Trajectory, epsilon: float = 0.0) -> Flags:
    """Flags of one run: loss catapult, sharpness catapult (lambda_t/lambda_0 > 1 + epsilon),
    divergence (L_t non-finite or > L_max) and barrier (max_s L(theta(s)) > L(theta_0) on the same
    set, ``Trajectory.barrier_reference``; None if the
    record has no barrier_loss and did not diverge; a diverged run's barrier is irrelevant
    to c_barrier, which only looks at trainable c, and is set False), with the two margins.
    """
    loss = trajectory.loss
    diverged = bool(divergence_flag(loss, trajectory.loss_max))
    if diverged:
        barrier: bool | None = False
    elif math.isnan(trajectory.barrier_loss):
        barrier = None
    else:
        barrier = bool(barrier_flag(np.array([trajectory.barrier_loss]), trajectory.barrier_reference))
    return Flags(
        loss_catapult=bool(loss_catapult_flag(loss, trajectory.loss_max)),
        sharpness_catapult=bool(sharpness_catapult_flag(trajectory.sharpness, epsilon)),
        diverged=diverged,
        barrier=barrier,
        loss_margin=math.inf if diverged else _log_peak_ratio(loss),
        sharpness_margin=_log_peak_ratio(trajectory.sharpness) - math.log1p(epsilon),
    )


def _log_peak_ratio(values: np.ndarray) -> float:
    """log(max_{t >= 1} v_t / v_0) over finite values: -inf for a zero peak; NaN when there are
    none, when v_0 is not positive, or for a negative peak."""
    later = values[1:][np.isfinite(values[1:])]
    if later.size == 0 or not values[0] > 0:
        return math.nan
    ratio = later.max() / values[0]
    if ratio <= 0:
        return -math.inf if ratio == 0 else math.nan
    return float(np.log(ratio))


@dataclass(frozen=True)
class CGrid:
    """The grid c_k = 2**(x_min + k * x_step), k = 0 .. size - 1 (x <= x_max)."""

    x_min: float = 0.0
    x_max: float = DEFAULT_X_MAX
    x_step: float = DEFAULT_X_STEP

    def __post_init__(self) -> None:
        c_grid(self.x_min, self.x_max, self.x_step)  # validates x_step > 0, finite x in [-20, 20], x_max >= x_min

    @functools.cached_property
    def size(self) -> int:
        """Number of grid points (those of ``c_grid(x_min, x_max, x_step)``), computed once."""
        return len(c_grid(self.x_min, self.x_max, self.x_step))

    def c(self, index: int) -> float:
        """c_k = 2**round(x_min + k * x_step, 10)."""
        return grid_point(index, self.x_min, self.x_step)

    @property
    def values(self) -> np.ndarray:
        """Every c_k, k = 0 .. size - 1, as ``c(k)`` gives them."""
        return np.array([self.c(k) for k in range(self.size)])

    def x(self, index: int) -> float:
        """x_k = round(x_min + k * x_step, 10), so that c_k = 2**x_k."""
        return round(self.x_min + index * self.x_step, 10)

    def index_at_or_above(self, x: float) -> int:
        """Smallest k with x_k >= x (clipped to the grid)."""
        k = math.ceil((x - self.x_min) / self.x_step - 1e-9)
        return min(max(k, 0), self.size - 1)


class SearchPlan(Protocol):
    """A pure search: the next grid index to evaluate given the flags evaluated so far."""

    @property
    def grid(self) -> CGrid:
        """The grid searched."""
        ...

    def next_index(self, evaluated: Mapping[int, Flags]) -> int | None:
        """The next index to evaluate, or None when the search is finished."""
        ...


STOP_FLAGS = ("loss_catapult", "sharpness_catapult", "diverged", "barrier")
"""The ``Flags`` fields a ``GridPlan`` may stop at."""


@dataclass(frozen=True)
class GridPlan:
    """The reference protocol: every grid point from k = 0 up to the first divergence.

    ``until``: the flags whose first occurrence ends the walk (that run included); the default,
    divergence alone, is the reference protocol. A walk that needs a threshold defined as the
    smallest flagged c, and nothing above it, may stop there too: ("diverged",
    "sharpness_catapult") reads c_sharp in the range the reference scans.
    """

    grid: CGrid
    until: tuple[str, ...] = ("diverged",)

    def __post_init__(self) -> None:
        if not self.until or any(name not in STOP_FLAGS for name in self.until):
            raise ConfigError(
                f"until must be a non-empty tuple of names from {STOP_FLAGS}, got {self.until!r}", "until"
            )

    def next_index(self, evaluated: Mapping[int, Flags]) -> int | None:
        if self._stopped(evaluated):
            return None
        missing = (k for k in range(self.grid.size) if k not in evaluated)
        return next(missing, None)

    def next_chunk(self, evaluated: Mapping[int, Flags], size: int) -> tuple[int, ...]:
        """The next ``size`` indices ``next_index`` would return one after another if none of
        their runs stopped the walk (fewer at the end of the grid, none once it has stopped).

        For a caller that evaluates a whole chunk in one batch (one compiled program over many
        c): the stopping rule is then applied at the chunk's end, so a chunk may hold runs past
        the stop, which the walk never takes in (it takes the indices ``next_index`` asks for).
        """
        size = require_int("size", size, 1)
        if self._stopped(evaluated):
            return ()
        missing = (k for k in range(self.grid.size) if k not in evaluated)
        return tuple(itertools.islice(missing, size))

    def _stopped(self, evaluated: Mapping[int, Flags]) -> bool:
        """Whether some evaluated run has one of the ``until`` flags set."""
        return any(getattr(flags, name) for name in self.until for flags in evaluated.values())


@dataclass(frozen=True)
class BracketPlan:
    """Expand, then narrow brackets on grid indices, one threshold at a time (divergence first).

    Expansion starts at ``start`` and moves away from it in strides of ``expand_step`` grid
    points, clipped to the grid, until the first divergence is bracketed. The stride is fixed,
    not doubling, so an expansion overshoots the first divergence by less than one stride: on
    real networks the flags are not always monotone far above it (a tiny ReLU net can catapult
    into a dead, finite-loss state at a c above one where it diverged).

    A bracket (lo, hi) (lo the largest evaluated index below hi, the lowest flagged one) is
    narrowed at an interior point k until hi = lo + 1: k is the midpoint, or for the loss and
    sharpness catapults, whose flags come with a continuous margin m (m > 0 iff flagged), the
    regula-falsi point k = ceil(lo + (hi - lo) m_lo / (m_lo - m_hi)) kept inside the middle
    half of the bracket, so the bracket still shrinks geometrically. A bracket is final once the
    ``confirm`` grid points below hi are evaluated (for a threshold not found: the ``confirm``
    points at the top of its range); ``confirm = 1`` is plain bracketing, 2 also checks hi - 2,
    which catches a flag that flickers off for one grid point just above its threshold, for at
    most one run more per threshold. Which points are evaluated never changes the answer for
    monotone flags: it is read off adjacent evaluated grid points either way.
    """

    grid: CGrid
    start: int = 0
    expand_step: int = 6
    confirm: int = 1

    def __post_init__(self) -> None:
        require_int("start", self.start, 0, self.grid.size - 1)
        require_int("expand_step", self.expand_step, 1)
        require_int("confirm", self.confirm, 1)

    def next_index(self, evaluated: Mapping[int, Flags]) -> int | None:
        if not evaluated:
            return self.start
        last = self.grid.size - 1
        divergent = _bracket(evaluated, lambda f: f.diverged, last)
        step = self._refine(evaluated, divergent, last, None)
        if step is not None:
            return step
        first_divergent = divergent[1]
        top = last if first_divergent is None else first_divergent
        # the barrier counts on trainable points only (below the first divergence)
        searches: tuple[tuple[Callable[[Flags], bool], Callable[[Flags], float | None] | None, int], ...] = (
            (lambda f: f.loss_catapult, lambda f: f.loss_margin, top),
            (lambda f: f.sharpness_catapult, lambda f: f.sharpness_margin, top),
            (lambda f: bool(f.barrier), None, top if first_divergent is None else first_divergent - 1),
        )
        for flag, margin, upper in searches:
            step = self._refine(evaluated, _bracket(evaluated, flag, upper), upper, margin)
            if step is not None:
                return step
        return None

    def _refine(
        self,
        evaluated: Mapping[int, Flags],
        bracket: tuple[int | None, int | None],
        upper: int,
        margin: Callable[[Flags], float | None] | None,
    ) -> int | None:
        """Next index that narrows or confirms ``bracket`` = (lo, hi) inside 0..upper, or None if resolved."""
        lo, hi = bracket
        if hi is None:  # no flagged point yet: expand up to the top of the range
            if lo is None:
                return None
            return min(upper, lo + self.expand_step) if lo < upper else self._confirm(evaluated, upper + 1)
        if hi == 0:
            return None
        if lo is None:  # flagged at the lowest evaluated point: expand down
            return max(0, hi - self.expand_step)
        if hi - lo > 1:
            margins = (None, None) if margin is None else (margin(evaluated[lo]), margin(evaluated[hi]))
            return _interior(lo, hi, *margins)
        return self._confirm(evaluated, hi)

    def _confirm(self, evaluated: Mapping[int, Flags], hi: int) -> int | None:
        """The first of hi - 2, ..., hi - confirm (>= 0) not evaluated yet, or None."""
        return next((k for k in range(hi - 2, max(hi - self.confirm, 0) - 1, -1) if k not in evaluated), None)


def _interior(lo: int, hi: int, m_lo: float | None, m_hi: float | None) -> int:
    """Point inside (lo, hi): regula falsi on the margins where both are usable, else the midpoint."""
    if m_lo is None or m_hi is None or not (math.isfinite(m_lo) and math.isfinite(m_hi)) or not m_lo <= 0 < m_hi:
        return (lo + hi) // 2
    guess = math.ceil(lo + (hi - lo) * m_lo / (m_lo - m_hi) - 1e-9)
    slack = max(1, (hi - lo) // 4)
    return min(max(guess, lo + slack), hi - slack)


def _bracket(
    evaluated: Mapping[int, Flags], flag: Callable[[Flags], bool], upper: int
) -> tuple[int | None, int | None]:
    """(lo, hi) over evaluated indices <= upper: hi the smallest flagged one, lo the largest below it."""
    indices = sorted(k for k in evaluated if k <= upper)
    flagged = [k for k in indices if flag(evaluated[k])]
    hi = flagged[0] if flagged else None
    below = [k for k in indices if hi is None or k < hi]
    return (below[-1] if below else None), hi


@dataclass(frozen=True)
class SearchResult:
    """Evaluated grid indices (in order), their flags, and the critical values."""

    grid: CGrid
    order: tuple[int, ...]
    flags: Mapping[int, Flags]
    critical: CriticalValues

    @property
    def scanned(self) -> tuple[int, ...]:
        """Indices inside the reference grid's scanned range (up to the first divergence)."""
        return tuple(sorted(k for k in self.flags if k <= _scan_top(self.grid, self.flags)))


def search_result(grid: CGrid, order: tuple[int, ...], flags: Mapping[int, Flags]) -> SearchResult:
    """Critical values from the evaluated points up to the first divergent one.

    Points above the first divergence (an expansion overshoot) are left out, so the answer
    is computed from the same range the reference grid scans. c_barrier is not measured
    (reported not found) unless every trainable point in range has a measured barrier.
    """
    top = _scan_top(grid, flags)
    indices = sorted(k for k in flags if k <= top)
    if not indices:
        raise ValueError("a search result needs at least one evaluated grid point")
    chosen = [flags[k] for k in indices]
    barrier = [f.barrier for f in chosen]
    critical = critical_values(
        [grid.c(k) for k in indices],
        loss_catapult=[f.loss_catapult for f in chosen],
        sharpness_catapult=[f.sharpness_catapult for f in chosen],
        diverged=[f.diverged for f in chosen],
        barrier=None if any(b is None for b in barrier) else barrier,  # type: ignore[arg-type]  # no None left
    )
    return SearchResult(grid=grid, order=tuple(order), flags=dict(flags), critical=critical)


def _scan_top(grid: CGrid, flags: Mapping[int, Flags]) -> int:
    divergent = [k for k, f in flags.items() if f.diverged]
    return min(divergent) if divergent else grid.size - 1


def run_search(plan: SearchPlan, evaluate: Callable[[int], Flags]) -> SearchResult:
    """Drive ``plan`` to the end, calling ``evaluate(k)`` once per requested grid index k."""
    flags: dict[int, Flags] = {}
    order: list[int] = []
    while (index := plan.next_index(flags)) is not None:
        if index in flags:
            raise RuntimeError(f"search plan asked for grid index {index} twice")
        flags[index] = evaluate(index)
        order.append(index)
    return search_result(plan.grid, tuple(order), flags)
