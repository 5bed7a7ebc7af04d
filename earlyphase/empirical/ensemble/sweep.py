"""Sweep searches through ensembles: the seeds of one (depth, width) searched in lockstep.

With ``[execution] ensemble = L`` (L >= 1) a sweep hands each worker one ``EnsembleTask``: all
points (seed pairs) of one (depth, width). Their searches advance in lockstep
(``earlyphase.empirical.search_runner.run_searches``, L indices per search per round) and the
runs of a round that are not yet stored train as one ensemble (``run_ensemble``). Each search
evaluates, stores and summarises exactly the runs ``search_point`` would, so the results
directory is the same as without ensembles (float64: to round-off; float32: see docs/RESULTS.md).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from earlyphase.core.trajectory import Trajectory
from earlyphase.empirical.ensemble.members import Ensemble, Member, prepare_ensemble
from earlyphase.empirical.ensemble.run import EnsembleOptions, run_ensemble
from earlyphase.empirical.search_runner import RunKey, run_searches
from earlyphase.empirical.sweep.spec import SweepPoint, SweepSpec
from earlyphase.empirical.sweep.store import PointRuns, Store
from earlyphase.empirical.sweep.worker import point_summary, torch_threads


@dataclass(frozen=True)
class EnsembleTask:
    """The points of one (depth, width) of a sweep, searched together (picklable)."""

    root: str
    spec: SweepSpec
    points: tuple[SweepPoint, ...]
    threads: int | None = None
    """torch CPU threads for this task (None: leave the worker's setting)."""

    def search(self) -> dict[str, Any]:
        return search_ensemble(self)


def ensemble_tasks(root: str, spec: SweepSpec, points: Sequence[SweepPoint], threads: int | None) -> list[EnsembleTask]:
    """One task per (depth, width) among ``points``, in order of first appearance."""
    groups: dict[tuple[int, int], list[SweepPoint]] = {}
    for point in points:
        groups.setdefault((point.depth, point.width), []).append(point)
    return [EnsembleTask(root, spec, tuple(group), threads) for group in groups.values()]


def search_ensemble(task: EnsembleTask) -> dict[str, Any]:
    """Run (or resume) the searches of ``task.points`` in lockstep, store their summaries.

    Returns {"runs_computed", "runs_loaded", "searches": [summary per point]}.
    """
    with torch_threads(task.threads):
        return _search_ensemble(task)


def _search_ensemble(task: EnsembleTask) -> dict[str, Any]:
    store = Store(Path(task.root), task.spec)
    spec, points, grid = task.spec, task.points, task.spec.search.grid
    config = spec.config(points[0])
    prepared: list[Ensemble] = []  # every point's experiment, once a run has to be computed
    started = time.perf_counter()

    def compute(keys: list[RunKey]) -> list[Trajectory]:
        """The runs the store lacks, trained as one ensemble."""
        if not prepared:
            prepared.append(prepare_ensemble(config, [(p.seed_init, p.seed_sgd) for p in points]))
        members = [Member(grid.c(index), points[number].seed_init, points[number].seed_sgd) for number, index in keys]
        return run_ensemble(prepared[0], members, EnsembleOptions())

    plans = [spec.search.plan() for _ in points]
    searches = run_searches(plans, PointRuns(store, points), compute, config.protocol.epsilon, spec.ensemble)
    seconds = time.perf_counter() - started
    summaries = []
    for point, runs in zip(points, searches):
        summary = point_summary(store, point, runs, seconds)
        store.save_search(point, summary)
        summaries.append(summary)
    return {
        "runs_computed": sum(runs.computed for runs in searches),
        "runs_loaded": sum(runs.loaded for runs in searches),
        "searches": summaries,
    }
