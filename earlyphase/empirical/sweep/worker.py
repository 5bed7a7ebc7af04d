"""One search over c for one sweep point, as run inside a worker (process, thread or Dask task).

The search is sequential (the next c depends on the flags of the previous runs); sweeps are
parallel across points. Its runs go through ``earlyphase.empirical.search_runner.run_searches``:
looked up in the store first and computed only if absent, so a search resumed after a kill
replays its stored runs and continues where it stopped. The runner's ``prepare`` (data,
theta_0, lambda_H0: shared by every c of the point) is called at most once per search, and
only when some run has to be computed. With ``[search] lookahead = true`` the search starts from
the one-step look-ahead's predictions, each checked by full runs
(``earlyphase.empirical.sweep.lookahead_search``). A sweep's tasks (``SweepTask``) are ``PointTask`` (one
point) and, with ensembles, ``earlyphase.empirical.ensemble.sweep.EnsembleTask``.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from earlyphase.core.trajectory import Trajectory
from earlyphase.empirical.search_runner import RunKey, SearchRuns, run_searches
from earlyphase.empirical.sweep import lookahead_search
from earlyphase.empirical.sweep.spec import SweepPoint, SweepSpec, search_key
from earlyphase.empirical.sweep.store import PointRuns, Store, write_atomic


class SweepTask(Protocol):
    """A picklable unit of a sweep: the points it searches, and ``search()`` giving
    {"runs_computed", "runs_loaded", ...} after storing their summaries."""

    @property
    def points(self) -> tuple[SweepPoint, ...]: ...

    def search(self) -> dict[str, Any]: ...


def search_task(task: SweepTask) -> dict[str, Any]:
    """``task.search()``: the function executors map over a sweep's tasks."""
    return task.search()


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to search one point (picklable)."""

    root: str
    spec: SweepSpec
    point: SweepPoint
    threads: int | None = None
    """torch CPU threads for this task (None: leave the worker's setting)."""

    @property
    def points(self) -> tuple[SweepPoint, ...]:
        return (self.point,)

    def search(self) -> dict[str, Any]:
        return search_point(self)


def load_runner(name: str) -> Any:
    """The object named ``module`` or ``module:attribute``; it must have ``prepare`` and ``run_at_c``."""
    module_name, _, attribute = name.partition(":")
    try:
        runner = importlib.import_module(module_name)
        for part in filter(None, attribute.split(".")):
            runner = getattr(runner, part)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"runner {name!r} cannot be imported: {error}") from None
    if not (callable(getattr(runner, "prepare", None)) and callable(getattr(runner, "run_at_c", None))):
        raise ValueError(f"runner {name!r} must provide prepare(config) and run_at_c(experiment, c)")
    return runner


def search_point(task: PointTask) -> dict[str, Any]:
    """Run (or resume) the search of ``task.point``, store its summary, and return it."""
    with torch_threads(task.threads):
        return _search_point(task)


def _search_point(task: PointTask) -> dict[str, Any]:
    store = Store(Path(task.root), task.spec)
    spec, point = task.spec, task.point
    config = spec.config(point)
    runner = load_runner(spec.runner)
    grid = spec.search.grid
    prepared: list[Any] = []  # the runner's experiment, once a run has to be computed
    started = time.perf_counter()

    def experiment() -> Any:
        if not prepared:
            prepared.append(runner.prepare(config))
        return prepared[0]

    if spec.search.lookahead:
        return _search_with_lookahead(store, point, experiment, started)

    def compute(keys: list[RunKey]) -> list[Trajectory]:
        return [runner.run_at_c(experiment(), grid.c(index)) for _, index in keys]

    (runs,) = run_searches([spec.search.plan()], PointRuns(store, (point,)), compute, config.protocol.epsilon)
    summary = point_summary(store, point, runs, time.perf_counter() - started)
    store.save_search(point, summary)
    return summary


def _search_with_lookahead(
    store: Store, point: SweepPoint, experiment: Callable[[], Any], started: float
) -> dict[str, Any]:
    """``lookahead_search.lookahead_search`` of one point: the prediction read from (or, once
    made, saved to) ``lookahead_search.prediction_path`` before any check run, the summary stored
    with each critical value's source and the look-ahead's cost."""
    spec = store.spec
    path = lookahead_search.prediction_path(store.root, store.point_name(point), search_key(spec.search))
    stored = lookahead_search.Prediction.from_dict(json.loads(path.read_text())) if path.is_file() else None
    searched = lookahead_search.lookahead_search(
        spec.search.plan(),
        PointRuns(store, (point,)),
        experiment,
        spec.config(point).protocol.epsilon,
        stored,
        keep=lambda prediction: write_atomic(path, json.dumps(prediction.as_dict(), indent=1)),
    )
    summary = {**point_summary(store, point, searched.runs, time.perf_counter() - started), **searched.summary()}
    store.save_search(point, summary)
    return summary


def point_summary(store: Store, point: SweepPoint, runs: SearchRuns, seconds: float) -> dict[str, Any]:
    """The JSON summary of one finished search (what ``Store.save_search`` keeps and the tables read)."""
    grid, result = store.spec.search.grid, runs.result
    return {
        "point": asdict(point),
        "arch": store.spec.base.model.arch,
        "point_name": store.point_name(point),
        "search": asdict(store.spec.search),
        "lambda0": runs.lambda0,
        "loss0": runs.loss0,
        "critical": result.critical.as_dict(),
        "order": list(result.order),
        "runs": [{"index": k, "x": grid.x(k), "c": grid.c(k), **asdict(result.flags[k])} for k in sorted(result.flags)],
        "runs_computed": runs.computed,
        "runs_loaded": runs.loaded,
        "hvps": runs.hvps,
        "seconds": seconds,
    }


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """torch's CPU thread count set to ``threads`` for the block (then restored)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
