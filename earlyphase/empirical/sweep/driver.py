"""Run a sweep (resuming whatever a previous invocation left) and report its status.

``run_sweep`` opens the results directory (refusing a different spec unless forced), skips
the points whose search is finished, sends the others to an executor, shows a progress bar
(searches done / total with an ETA, runs computed and reused), records failures, and writes
the tables from every finished search.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from tqdm.auto import tqdm

from earlyphase.empirical.sweep.executors import LocalExecutor
from earlyphase.empirical.sweep.lookahead_search import require_supported
from earlyphase.empirical.sweep.spec import SweepPoint, SweepSpec
from earlyphase.empirical.sweep.store import Store, open_store, stored_spec
from earlyphase.empirical.sweep.tables import write_tables
from earlyphase.empirical.sweep.worker import PointTask, SweepTask, load_runner, search_task


class Executor(Protocol):
    def threads_per_task(self) -> int | None: ...

    def describe(self, tasks: Any) -> str: ...

    def run(self, function: Any, tasks: Any) -> Any: ...


@dataclass(frozen=True)
class SweepStatus:
    """Searches of a results directory: finished, failed (with the error), pending (with runs recorded)."""

    root: Path
    done: tuple[SweepPoint, ...]
    failed: tuple[tuple[SweepPoint, str], ...]
    pending: tuple[tuple[SweepPoint, int], ...]
    runs_recorded: int

    @property
    def total(self) -> int:
        return len(self.done) + len(self.failed) + len(self.pending)

    def describe(self) -> str:
        started = sum(1 for _, runs in self.pending if runs)
        lines = [
            f"sweep {self.root}: {self.total} searches: {len(self.done)} done, "
            f"{len(self.pending)} pending ({started} partly run), {len(self.failed)} failed; "
            f"{self.runs_recorded} runs recorded"
        ]
        for point, error in self.failed:
            last = error.strip().splitlines()[-1] if error.strip() else "unknown error"
            lines.append(
                f"  failed: depth {point.depth} width {point.width} seeds {point.seed_init}/{point.seed_sgd}: {last}"
            )
        return "\n".join(lines)


def sweep_status(root: str | Path, spec: SweepSpec | None = None) -> SweepStatus:
    """Status of the results directory ``root`` (its stored spec unless ``spec`` is given)."""
    store = Store(Path(root), spec or stored_spec(root))
    done, failed, pending, runs = [], [], [], 0
    for point in store.spec.points():
        recorded = store.recorded_runs(point)
        runs += recorded
        if store.search_path(point).is_file():
            done.append(point)
        elif (error := store.load_failure(point)) is not None:
            failed.append((point, error))
        else:
            pending.append((point, recorded))
    return SweepStatus(Path(root), tuple(done), tuple(failed), tuple(pending), runs)


def run_sweep(
    spec: SweepSpec,
    root: str | Path,
    executor: Executor | None = None,
    force_spec: bool = False,
    progress: bool = True,
) -> SweepStatus:
    """Run every unfinished search of ``spec`` into ``root`` and write the tables; return the status."""
    executor = executor or LocalExecutor()
    load_runner(spec.runner)  # fail now, not in every worker
    require_supported(spec)
    store = open_store(root, spec, force_spec)
    with store.lock():
        store.remove_temporaries()
        points = spec.points()
        # largest networks first: the longest searches start early, the short ones fill in
        todo = sorted((p for p in points if not store.search_path(p).is_file()), key=lambda p: (-p.width, -p.depth))
        threads = executor.threads_per_task()
        tasks: list[SweepTask]
        if spec.ensemble:  # the seeds of each (depth, width) searched in lockstep as one ensemble
            from earlyphase.empirical.ensemble.sweep import ensemble_tasks

            tasks = list(ensemble_tasks(str(store.root), spec, todo, threads))
        else:
            tasks = [PointTask(str(store.root), spec, point, threads) for point in todo]
        bar = tqdm(
            total=len(points), initial=len(points) - len(todo), unit="search", desc="sweep", disable=not progress
        )
        if tasks and progress:
            bar.write(f"{len(todo)} of {len(points)} searches to run on {executor.describe(tasks)}")
        computed = reused = failed = 0
        with bar:
            for task, result, error in executor.run(search_task, tasks):
                if result is None:
                    for point in task.points:
                        store.save_failure(point, error or "unknown error")
                    failed += len(task.points)
                else:
                    computed += result["runs_computed"]
                    reused += result["runs_loaded"]
                bar.set_postfix(runs=computed, reused=reused, failed=failed, refresh=False)
                bar.update(len(task.points))
        rewrite_tables(store)
    return sweep_status(root, spec)


def rewrite_tables(store: Store) -> pd.DataFrame | None:
    """Write the tables of every finished search of ``store``; the per-seed table, or None if none finished."""
    summaries = [s for p in store.spec.points() if (s := store.load_search(p)) is not None]
    return write_tables(store.root, summaries) if summaries else None
