"""The one-step look-ahead as an opt-in start of a bisect search, each use checked by full runs
(``[search] lookahead = true``; docs/PROTOCOL.md sections 3 and 7).

One point's search with the option:

1. Prediction. The look-ahead along the first SGD step's ray theta_1(c) = theta_0 - (c / lambda_H0) g_0
   (``earlyphase.empirical.lookahead.ray_prediction`` over the sweep's grid, its K-step runs with
   K = ``LOOKAHEAD_STEPS``) gives c*_loss (L(theta_1(c)) / L_0 > 1) and c*_sharp
   (lambda_H(theta_1(c)) / lambda_H0 > 1 + epsilon). It is kept (``prediction_path``), so a resumed
   search does not recompute it.
2. Check runs. ``run_at_c`` runs first at each predicted grid point k* and at k* - 1 (the run at
   c*_sharp with every step's sharpness solved, measure_mode "full": its peak must be seen).
3. Bracketing. The spec's ``BracketPlan`` then continues over full runs from the check runs of
   the predictions that passed their check (below; ``SeededPlan``): it brackets the first
   divergence upwards from them (c_max), the barrier (c_barrier), and c_loss or c_sharp where
   no check run brackets it. The check runs of a prediction that failed are left out (reused
   only if the plan asks for them), so where both fail the search is the plain one, run for run.

Every critical value is read from the full runs (``earlyphase.core.search.search_result``), as a
plain search reads it. Its ``source`` is "lookahead" when the look-ahead's value passed its check:

    the run at c* shows the flag (loss catapult, resp. sharpness catapult; earlyphase.core.critical),
    does not diverge, and its ratio L_t / L_0 (resp. lambda_t / lambda_0, every step measured)
    peaks at t = 1 over t = 1 .. T; the run at the grid point below shows no flag; and the value
    read from the runs is c*;

"runs" otherwise (and always for c_max and c_barrier). With flags monotone in c the values are
the plain search's whatever the look-ahead predicted: the check runs are grid points evaluated
early, and a threshold is read off adjacent evaluated grid points either way; a wrong prediction
only costs its check runs. With flags that switch back in c (a tiny net that diverges at one c
and trains at a larger one), a bisection's answer depends on the points it starts from, so an
accepted prediction can move c_max by more than a grid step from the plain search's (both are
brackets of a non-monotone flag: ``critical_values.csv``'s ``non_monotone`` names them when seen).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from earlyphase.core.cost import Cost
from earlyphase.core.critical import CRITICAL_NAMES, Threshold
from earlyphase.core.search import CGrid, Flags, SearchPlan, flags_of
from earlyphase.core.trajectory import Trajectory
from earlyphase.core.validate import ConfigError
from earlyphase.empirical.initial import first_batch_gradient
from earlyphase.empirical.lookahead import DEFAULT_LOOKAHEAD_STEPS, ray_prediction
from earlyphase.empirical.search_runner import RunKey, RunStore, SearchRuns, run_searches
from earlyphase.empirical.sweep.spec import DEFAULT_RUNNER, SweepSpec
from earlyphase.empirical.training import Experiment, run_at_c

LOOKAHEAD_STEPS = DEFAULT_LOOKAHEAD_STEPS
"""K of the look-ahead's K-step runs: they only bound the range its c_loss and c_sharp are read
in (up to their first divergence); the check runs catch a value beyond the sweep's own c_max."""

CHECKED = {"c_loss": ("loss_catapult", "loss"), "c_sharp": ("sharpness_catapult", "sharpness")}
"""The thresholds the look-ahead predicts: their flag (``Flags`` field) and the record's series."""

LOOKAHEAD, RUNS = "lookahead", "runs"


@dataclass(frozen=True)
class SeededPlan:
    """Evaluate the grid indices ``seeds`` first (in order), then follow ``plan`` from there
    (None: stop)."""

    grid: CGrid
    seeds: tuple[int, ...]
    plan: SearchPlan | None = None

    def next_index(self, evaluated: Mapping[int, Flags]) -> int | None:
        pending = [k for k in self.seeds if k not in evaluated]
        if pending:
            return pending[0]
        return None if self.plan is None else self.plan.next_index(evaluated)


@dataclass(frozen=True)
class Prediction:
    """The look-ahead's c_loss and c_sharp of one point (over the sweep's grid) and its cost
    (g_0, the ray's forward passes and Lanczos solves, the K-step runs)."""

    c_loss: Threshold
    c_sharp: Threshold
    cost: Cost

    def as_dict(self) -> dict[str, Any]:
        return {
            "c_loss": dataclasses.asdict(self.c_loss),
            "c_sharp": dataclasses.asdict(self.c_sharp),
            "cost": self.cost.as_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Prediction:
        return cls(Threshold(**data["c_loss"]), Threshold(**data["c_sharp"]), Cost(**data["cost"]))


@dataclass(frozen=True)
class Check:
    """The check of one predicted threshold by full runs: ``index`` k* of c* (None: the look-ahead
    found none in its range, nothing to check), the run at k* (``flagged``, ``diverged``,
    ``peak_step``: argmax over t >= 1 of its ratio, None when some step is unmeasured), the run
    at k* - 1 (``below_flagged``; None when k* = 0), and ``passed``."""

    name: str
    index: int | None
    flagged: bool | None = None
    diverged: bool | None = None
    peak_step: int | None = None
    below_flagged: bool | None = None

    @property
    def passed(self) -> bool:
        return bool(self.flagged and not self.diverged and self.peak_step == 1 and not self.below_flagged)

    @property
    def verdict(self) -> str:
        """Why the check passed or failed, in words."""
        if self.index is None:
            return "no prediction in range"
        if not self.flagged:
            return "no flag at c*"
        if self.diverged:
            return "diverged at c*"
        if self.peak_step != 1:
            return "peak not measured" if self.peak_step is None else f"peak at t = {self.peak_step}"
        return "flag one step below c*" if self.below_flagged else "passed"


@dataclass(frozen=True)
class LookaheadSearch:
    """One point's search with the look-ahead: the full runs' search (``runs``), the prediction
    (``computed``: now, not loaded), the checks, and each critical value's source."""

    runs: SearchRuns
    prediction: Prediction
    computed: bool
    checks: Mapping[str, Check]

    @property
    def sources(self) -> dict[str, str]:
        """ "lookahead" for a predicted threshold whose check passed and whose value the runs
        confirm, else "runs" (module docstring)."""
        critical = self.runs.result.critical
        return {
            name: LOOKAHEAD
            if name in self.checks
            and self.checks[name].passed
            and getattr(critical, name).estimate == getattr(self.prediction, name).estimate
            else RUNS
            for name in CRITICAL_NAMES
        }

    def summary(self) -> dict[str, Any]:
        """What a search summary adds: ``source`` per critical value and ``lookahead`` (the
        prediction, its cost, whether computed now, the check of each predicted threshold)."""
        return {
            "source": self.sources,
            "lookahead": {
                **self.prediction.as_dict(),
                "computed": self.computed,
                "checks": {
                    name: {**dataclasses.asdict(check), "verdict": check.verdict} for name, check in self.checks.items()
                },
            },
        }


def require_supported(spec: SweepSpec) -> None:
    """ConfigError unless a spec with ``search.lookahead`` can run it: the look-ahead
    measures the empirical engine's ``Experiment`` one point at a time."""
    if not spec.search.lookahead:
        return
    if spec.runner != DEFAULT_RUNNER:
        raise ConfigError(f"search.lookahead needs the empirical engine; runner must be {DEFAULT_RUNNER!r}", "runner")
    if spec.ensemble:
        raise ConfigError(
            "search.lookahead searches one point at a time; execution.ensemble must be 0", "execution.ensemble"
        )


def predict(experiment: Experiment, plan: SearchPlan) -> Prediction:
    """The look-ahead's c_loss and c_sharp over ``plan.grid`` (K-step runs searched by ``plan``),
    with its cost including g_0's gradient."""
    started = time.perf_counter()
    _, gradient = first_batch_gradient(experiment)
    critical, cost, _ = ray_prediction(experiment, gradient, plan, LOOKAHEAD_STEPS)
    cost = dataclasses.replace(cost, gradients=cost.gradients + 1, seconds=time.perf_counter() - started)
    return Prediction(critical.c_loss, critical.c_sharp, cost)


def lookahead_search(
    plan: SearchPlan,
    runs: RunStore,
    experiment: Callable[[], Experiment],
    epsilon: float,
    stored: Prediction | None = None,
    keep: Callable[[Prediction], None] | None = None,
) -> LookaheadSearch:
    """Search one point with the look-ahead (module docstring): ``plan`` the spec's bisect plan,
    ``runs`` where its full runs are kept (key (0, k): the run at grid.c(k)), ``experiment()``
    the point's prepared experiment (called only when something has to be computed), ``epsilon``
    the c_sharp tolerance of its config, ``stored`` a prediction kept from before (None: predict now,
    and hand it to ``keep`` before any run)."""
    grid = plan.grid
    prediction = stored or predict(experiment(), plan)
    if stored is None and keep is not None:
        keep(prediction)
    targets = {name: _grid_index(grid, getattr(prediction, name)) for name in CHECKED}
    seeds = tuple(dict.fromkeys(k for target in targets.values() for k in check_indices(target)))
    full_sharpness = targets["c_sharp"]

    def compute(keys: list[RunKey]) -> list[Trajectory]:
        prepared = experiment()
        full = dataclasses.replace(prepared, config=prepared.config.replace(measure_mode="full"))
        return [run_at_c(full if index == full_sharpness else prepared, grid.c(index)) for _, index in keys]

    (checked,) = run_searches([SeededPlan(grid, seeds)], runs, compute, epsilon)
    checks = {name: check_run(name, target, runs, epsilon) for name, target in targets.items()}
    passed = tuple(k for check in checks.values() if check.passed for k in check_indices(check.index))
    (searched,) = run_searches([SeededPlan(grid, passed, plan)], runs, compute, epsilon)
    return LookaheadSearch(_together(checked, searched, runs, seeds), prediction, stored is None, checks)


def _together(checked: SearchRuns, searched: SearchRuns, runs: RunStore, seeds: tuple[int, ...]) -> SearchRuns:
    """The bracketing's result with the work of both searches: runs computed in either, runs
    loaded = the distinct runs used minus those computed, the lambda_H0 solve's HVPs counted once."""
    computed = checked.computed + searched.computed
    used = len(set(seeds) | set(searched.result.flags))
    hvps = checked.hvps + searched.hvps
    if checked.computed and searched.computed:
        hvps -= int(runs.load((0, seeds[0])).config.get("lambda0_hvps", 0))
    return dataclasses.replace(searched, computed=computed, loaded=used - computed, hvps=hvps)


def check_indices(index: int | None) -> tuple[int, ...]:
    """The grid indices of the check runs of a prediction at ``index``: k* and k* - 1 (>= 0);
    none without a prediction."""
    return () if index is None else tuple(k for k in (index, index - 1) if k >= 0)


def check_run(name: str, index: int | None, runs: RunStore, epsilon: float) -> Check:
    """The ``Check`` of threshold ``name`` (c_loss or c_sharp) predicted at grid index ``index``,
    from the stored full runs at ``index`` and ``index - 1``."""
    if index is None:
        return Check(name, None)
    flag, series = CHECKED[name]
    record = runs.load((0, index))
    flags = flags_of(record, epsilon)
    below = None if index == 0 else bool(getattr(flags_of(runs.load((0, index - 1)), epsilon), flag))
    return Check(name, index, bool(getattr(flags, flag)), flags.diverged, peak_step(getattr(record, series)), below)


def peak_step(values: np.ndarray) -> int | None:
    """argmax over t >= 1 of v_t (step axis first), None when some v_t (t >= 1) is not finite
    (unmeasured or diverged: the peak is not known)."""
    later = np.asarray(values, dtype=float)[1:]
    if later.size == 0 or not np.isfinite(later).all():
        return None
    return int(np.argmax(later)) + 1


def prediction_path(root: Path, point_name: str, key: str) -> Path:
    """Where the prediction of a point is kept: DIR/lookahead/POINT.SEARCH.json."""
    return root / "lookahead" / f"{point_name}.{key}.json"


def _grid_index(grid: CGrid, threshold: Threshold) -> int | None:
    """The grid index of a found threshold's estimate (None when not found)."""
    if threshold.estimate is None:
        return None
    index = grid.index_at_or_above(math.log2(threshold.estimate))
    if not math.isclose(grid.c(index), threshold.estimate, rel_tol=1e-9):
        raise ValueError(f"look-ahead estimate {threshold.estimate} is not on the grid")
    return index
