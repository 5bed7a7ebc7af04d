"""Where the searches of a sweep run: this process, local worker processes, or a Dask cluster.

Every executor maps a task function (``earlyphase.empirical.sweep.worker.search_task``, which
calls the task's ``search``) over picklable tasks with a ``spec`` and yields (task, result or error) as
tasks finish; the results do not depend on the executor (each search is sequential and
deterministic, and runs are written by the worker into the shared results directory, which
must therefore be on a file system every worker sees).

CUDA: a device is shared by at most ``runs_per_device`` concurrent runs (a memory rule the
user sets from the device's memory and one run's footprint). Local processes are capped at
runs_per_device x (number of devices used); with ``device = "cuda"`` and several GPUs each
process is pinned to one GPU (CUDA_VISIBLE_DEVICES), round robin. On Dask, give each worker
one GPU (dask-cuda, or CUDA_VISIBLE_DEVICES per worker) and runs_per_device threads.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

POOL_RESTARTS = 2
"""Times LocalExecutor replaces a pool whose worker process died; the tasks it held are rerun
(a task that kills its worker every time is then reported failed, with the pool's error)."""
DEFAULT_THREADS = 1
"""torch CPU threads per search unless told otherwise: one, next to one worker per core."""

Outcome = tuple[Any, dict[str, Any] | None, str | None]
"""(task, result, None) for a finished task, (task, None, error text) for a failed one."""


def cpu_count() -> int:
    """CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cuda_slots(device: str, runs_per_device: int) -> tuple[int | None, ...]:
    """One entry per allowed concurrent CUDA run: the GPU index to pin to (None: do not pin).

    "cuda" spreads over every visible GPU; "cuda:N" uses that one; other devices: no slots.
    """
    if not device.startswith("cuda"):
        return ()
    if ":" in device:
        return (None,) * runs_per_device
    import torch

    count = max(torch.cuda.device_count(), 1)
    if count == 1:
        return (None,) * runs_per_device
    return tuple(gpu for gpu in range(count) for _ in range(runs_per_device))


def _pin_gpu(slots: Any) -> None:
    """Worker initialiser: take one GPU slot and make it the only visible device."""
    gpu = slots.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)


def _describe(error: BaseException) -> str:
    """The error with its traceback (a worker's remote traceback included)."""
    return "".join(traceback.format_exception(error)).strip()


@dataclass(frozen=True)
class LocalExecutor:
    """``jobs`` worker processes (spawned; jobs = 1 runs the searches in this process). A worker
    that dies (killed, out of memory) breaks the pool: the unfinished tasks go to a fresh pool,
    at most ``POOL_RESTARTS`` times.

    ``threads``: torch CPU threads per search (None: ``DEFAULT_THREADS`` = 1, so that the
    default ``jobs`` = cores never oversubscribes them: with cores / jobs threads a run on a
    busy 2-core machine took 4-5x longer than with 1, its threads spinning instead of working).
    More threads per run pay only on an idle machine with fewer searches than cores.
    """

    jobs: int = 1
    threads: int | None = None

    def threads_per_task(self) -> int:
        return self.threads or DEFAULT_THREADS

    def processes(self, tasks: Sequence[Any]) -> int:
        """Worker processes for ``tasks``: jobs, capped by the tasks and the CUDA slots."""
        if not tasks:
            return 0
        slots = cuda_slots(tasks[0].spec.base.execution.device, tasks[0].spec.runs_per_device)
        return min(self.jobs, len(tasks), len(slots) or self.jobs)

    def describe(self, tasks: Sequence[Any]) -> str:
        jobs = self.processes(tasks)
        where = "this process" if jobs <= 1 else f"{jobs} local worker processes"
        return f"{where}, {self.threads_per_task()} torch thread(s) each"

    def run(self, function: Callable[[Any], dict[str, Any]], tasks: Sequence[Any]) -> Iterator[Outcome]:
        if not tasks:
            return
        slots = cuda_slots(tasks[0].spec.base.execution.device, tasks[0].spec.runs_per_device)
        jobs = self.processes(tasks)
        if jobs == 1:
            for task in tasks:
                try:
                    yield task, function(task), None
                except Exception as error:  # a failed search is reported, the sweep goes on
                    yield task, None, _describe(error)
            return
        context = multiprocessing.get_context("spawn")
        remaining = list(tasks)
        for restart in range(POOL_RESTARTS + 1):
            initializer: Callable[..., None] | None = None
            initargs: tuple[Any, ...] = ()
            if any(slot is not None for slot in slots):
                queue = context.Manager().Queue()
                for slot in slots[:jobs]:
                    queue.put(slot)
                initializer, initargs = _pin_gpu, (queue,)
            orphaned = []  # tasks lost with a worker process that died (killed, out of memory)
            with ProcessPoolExecutor(jobs, mp_context=context, initializer=initializer, initargs=initargs) as pool:
                futures: dict[Future, Any] = {pool.submit(function, task): task for task in remaining}
                pending = set(futures)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        failure = future.exception()
                        if failure is None:
                            yield futures[future], future.result(), None
                        elif isinstance(failure, BrokenProcessPool) and restart < POOL_RESTARTS:
                            orphaned.append(futures[future])
                        else:
                            yield futures[future], None, _describe(failure)
            if not orphaned:
                return
            remaining = orphaned  # a fresh pool; their searches resume from the runs recorded


@dataclass(frozen=True)
class DaskExecutor:
    """A Dask cluster: an existing one at ``scheduler``, else a LocalCluster of ``workers`` processes.

    ``processes=False`` makes the LocalCluster use threads in this process (cheap, for tests).
    """

    scheduler: str | None = None
    workers: int = 1
    threads_per_worker: int = 1
    processes: bool = True
    threads: int | None = None
    """torch CPU threads per search (None: ``DEFAULT_THREADS`` for a LocalCluster, the cluster's setting otherwise)."""

    def threads_per_task(self) -> int | None:
        if self.threads is not None or self.scheduler is not None:
            return self.threads
        return DEFAULT_THREADS

    def describe(self, tasks: Sequence[Any]) -> str:
        if self.scheduler is not None:
            return f"the Dask cluster at {self.scheduler}"
        kind = "processes" if self.processes else "threads"
        return f"a Dask LocalCluster of {self.workers} worker {kind} x {self.threads_per_worker} thread(s)"

    def run(self, function: Callable[[Any], dict[str, Any]], tasks: Sequence[Any]) -> Iterator[Outcome]:
        from distributed import Client, LocalCluster, as_completed

        if not tasks:
            return
        if self.scheduler is not None:
            cluster, client = None, Client(self.scheduler)
        else:
            cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=self.threads_per_worker,
                processes=self.processes,
                dashboard_address=None,
            )
            client = Client(cluster)
        try:
            futures = {client.submit(function, task, pure=False): task for task in tasks}
            for future in as_completed(futures):
                if future.status == "finished":
                    yield futures[future], future.result(), None
                else:
                    yield futures[future], None, _describe(future.exception())
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
