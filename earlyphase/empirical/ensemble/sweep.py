"""Sweep searches through ensembles: the seeds of one (depth, width) searched in lockstep.

With ``[execution] ensemble = L`` (L >= 1) a sweep hands each worker one ``EnsembleTask``: all
points (seed pairs) of one (depth, width). Their searches advance in lockstep
(``earlyphase.empirical.ensemble.search.run_lockstep``, L indices per search per round) and the
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

from earlyphase.core.search import flags_of
from earlyphase.core.trajectory import Trajectory, is_complete_record
from earlyphase.empirical.ensemble.members import Ensemble, Member, prepare_ensemble
from earlyphase.empirical.ensemble.run import EnsembleOptions, run_ensemble
from earlyphase.empirical.ensemble.search import run_lockstep
from earlyphase.empirical.sweep.spec import SweepPoint, SweepSpec
from earlyphase.empirical.sweep.store import Store
from earlyphase.empirical.sweep.worker import point_summary, torch_threads


@dataclass(frozen=True)
class EnsembleTask:
    """The points of one (depth, width) of a sweep, searched together (picklable)."""

    root: str
    spec: SweepSpec
    points: tuple[SweepPoint, ...]
    threads: int | None = None
    """torch CPU threads for this task (None: leave the worker's setting)."""


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
    prepared: list[Ensemble] = []
    computed, loaded = [0] * len(points), [0] * len(points)
    initial: list[tuple[float | None, float | None]] = [(None, None)] * len(points)
    started = time.perf_counter()

    def stem(number: int, index: int) -> Path:
        return store.run_stem(points[number], grid.x(index))

    def evaluate(requests: list[tuple[int, int]]) -> list[tuple[Trajectory, bool]]:
        """(record, computed now) per request: stored records are read, the others trained as one ensemble."""
        runs: dict[int, tuple[Trajectory, bool]] = {}
        todo = []
        for position, (number, index) in enumerate(requests):
            path = stem(number, index)
            if is_complete_record(path):  # a foreign or missing Parquet: recomputed
                runs[position] = (Trajectory.load(path), False)
            else:
                todo.append(position)
        if todo:
            if not prepared:
                prepared.append(prepare_ensemble(config, [(p.seed_init, p.seed_sgd) for p in points]))
            members = [
                Member(grid.c(requests[p][1]), points[requests[p][0]].seed_init, points[requests[p][0]].seed_sgd)
                for p in todo
            ]
            for position, record in zip(todo, run_ensemble(prepared[0], members, EnsembleOptions())):
                runs[position] = (record, True)
        return [runs[position] for position in range(len(requests))]

    def consume(number: int, index: int, run: tuple[Trajectory, bool]) -> None:
        record, is_new = run
        if is_new:
            record.save(stem(number, index))
            computed[number] += 1
        else:
            loaded[number] += 1
        initial[number] = (record.lambda0, record.loss0)

    results = run_lockstep(
        [spec.search.plan() for _ in points], evaluate, lambda run: flags_of(run[0], config.epsilon), spec.ensemble, consume
    )
    seconds = time.perf_counter() - started
    summaries = []
    for number, (point, result) in enumerate(zip(points, results)):
        lambda0, loss0 = initial[number]
        summary = point_summary(store, point, result, lambda0, loss0, computed[number], loaded[number], seconds)
        store.save_search(point, summary)
        summaries.append(summary)
    return {"runs_computed": sum(computed), "runs_loaded": sum(loaded), "searches": summaries}
