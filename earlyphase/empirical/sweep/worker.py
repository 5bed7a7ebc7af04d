"""One search over c for one sweep point, as run inside a worker (process, thread or Dask task).

The search is sequential (the next c depends on the flags of the previous runs); sweeps are
parallel across points. Each run is looked up in the store first and computed only if
absent, so a search resumed after a kill replays its stored runs and continues where it
stopped (``earlyphase.core.search`` plans are pure functions of the evaluated flags).
The runner's ``prepare`` (data, theta_0, lambda_H0: shared by every c of the point) is called
at most once per search, and only when some run has to be computed.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from earlyphase.core.search import Flags, SearchResult, flags_of, run_search
from earlyphase.core.trajectory import Trajectory, is_complete_record
from earlyphase.empirical.sweep.spec import SweepPoint, SweepSpec
from earlyphase.empirical.sweep.store import Store


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to search one point (picklable)."""

    root: str
    spec: SweepSpec
    point: SweepPoint
    threads: int | None = None
    """torch CPU threads for this task (None: leave the worker's setting)."""


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
    state = SimpleNamespace(experiment=None, computed=0, loaded=0, lambda0=None, loss0=None)
    started = time.perf_counter()

    def evaluate(index: int) -> Flags:
        stem = store.run_stem(point, grid.x(index))
        if is_complete_record(stem):  # a foreign or missing Parquet: recomputed
            trajectory = Trajectory.load(stem)
            state.loaded += 1
        else:
            if state.experiment is None:
                state.experiment = runner.prepare(config)
            trajectory = runner.run_at_c(state.experiment, grid.c(index))
            trajectory.save(stem)
            state.computed += 1
        state.lambda0, state.loss0 = trajectory.lambda0, trajectory.loss0
        return flags_of(trajectory, config.epsilon)

    result = run_search(spec.search.plan(), evaluate)
    seconds = time.perf_counter() - started
    summary = point_summary(store, point, result, state.lambda0, state.loss0, state.computed, state.loaded, seconds)
    store.save_search(point, summary)
    return summary


def point_summary(
    store: Store,
    point: SweepPoint,
    result: SearchResult,
    lambda0: float | None,
    loss0: float | None,
    computed: int,
    loaded: int,
    seconds: float,
) -> dict[str, Any]:
    """The JSON summary of one finished search (what ``Store.save_search`` keeps and the tables read)."""
    grid = store.spec.search.grid
    return {
        "point": asdict(point),
        "arch": store.spec.base.arch,
        "point_name": store.point_name(point),
        "search": asdict(store.spec.search),
        "lambda0": lambda0,
        "loss0": loss0,
        "critical": result.critical.as_dict(),
        "order": list(result.order),
        "runs": [{"index": k, "x": grid.x(k), "c": grid.c(k), **asdict(result.flags[k])} for k in sorted(result.flags)],
        "runs_computed": computed,
        "runs_loaded": loaded,
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
