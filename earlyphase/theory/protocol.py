"""The early-window protocol on an ensemble of one theory model (docs/PROTOCOL.md sections 2-3).

A model runs, for a chunk of c values, every seed from its OWN fixed initialisation with
eta = c / lambda_H0 for T steps and returns per-step arrays (``Sweep``). Each seed walks the grid
with its own ``earlyphase.core.search.GridPlan`` (k = 0, 1, ... until its first divergent c) and
its thresholds are ``earlyphase.core.search.search_result`` of the runs it took in: the path, the
flags and the critical values of the experiments' searches, so no seed depends on the others.

The walk is not ``run_search``'s one run per requested index: a chunk of c is one batched program
over every seed (jitted and vmapped for the linear model), so the seeds advance together (``scan_grid``): each round runs the
indices ``GridPlan.next_chunk`` hands the unfinished seeds (the same ones for all of them: each
has taken in the same leading points), and each seed then takes in, in order, the indices its plan
asks for, so its result is ``run_search``'s. Runs past a seed's stop stay in the ``Sweep``
(computed for all seeds at once) but not in its result.

``scan_two_phase`` does this with a cheap loss-only runner (the loss alone decides c_loss and
c_max), then measures the sharpness with plans that also stop at the first sharpness catapult
(``GridPlan(until=("diverged", "sharpness_catapult"))``, divergence read from the loss scan):
c_sharp is the smallest c with the flag, so larger c need no sharpness. The answer is the
reference grid's.

The runs are not kept in a run store (has_run, load, save) as the experiments' are: a prediction
is seconds of in-memory compute, and its runs come back whole in the ``Sweep``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from earlyphase.core.conventions import DEFAULT_LOSS_MAX
from earlyphase.core.critical import (
    CriticalValues,
    barrier_flag,
    divergence_flag,
    loss_catapult_flag,
    sharpness_catapult_flag,
)
from earlyphase.core.search import CGrid, Flags, GridPlan, SearchResult, search_result
from earlyphase.core.validate import ConfigError, require_int


class Sweep(NamedTuple):
    """Runs of S seeds at C values of c: ``c`` (C,), ``barrier`` (S, C), every other field
    (S, C, T + 1).

    Row t is the state after t steps; NaN where not measured (after divergence, or a
    quantity the model does not have). ``residual``: ||Hv - lambda v|| / |lambda| of the
    sharpness solve; ``hvps``: Hessian-vector products it spent (0 for closed forms);
    ``ntk_top``: lambda_max(Theta) / (n k); ``barrier``: max over s in (0, 1] of
    L((1 - s) theta_0 + s theta_T) on the straight path (``earlyphase.core.interpolation_grid``
    without s = 0, which is L_0), NaN if diverged.
    """

    c: np.ndarray
    loss: np.ndarray
    sharpness: np.ndarray
    residual: np.ndarray
    hvps: np.ndarray
    ntk_top: np.ndarray
    barrier: np.ndarray

    @property
    def seeds(self) -> int:
        return self.loss.shape[0]


class Scan(NamedTuple):
    """The runs of a scan (columns: the grid's leading c values) and each seed's search."""

    sweep: Sweep
    searches: tuple[SearchResult, ...]

    @property
    def critical(self) -> tuple[CriticalValues, ...]:
        """c_loss, c_sharp, c_max and c_barrier of every seed."""
        return tuple(search.critical for search in self.searches)


def concatenate(sweeps: list[Sweep]) -> Sweep:
    """Chunks along the c axis, in order."""
    return Sweep(
        c=np.concatenate([s.c for s in sweeps]),
        **{name: np.concatenate([getattr(s, name) for s in sweeps], axis=1) for name in Sweep._fields[1:]},
    )


def run_flags(
    loss: np.ndarray,
    sharpness: np.ndarray,
    barrier: np.ndarray | None,
    epsilon: float = 0.0,
    loss_max: float = DEFAULT_LOSS_MAX,
) -> list[list[Flags]]:
    """Flags of runs laid out [seed][column] (``loss``, ``sharpness``: (S, C, T + 1); ``barrier``:
    (S, C), or None when not measured): ``loss_catapult_flag``, ``sharpness_catapult_flag``
    (epsilon), ``divergence_flag`` on the step axis, and ``barrier_flag`` (the path maximum above
    L_0), False for a diverged run, which c_barrier never reads (as ``earlyphase.core.search.flags_of``)."""
    loss_up = loss_catapult_flag(loss, loss_max)
    sharp_up = sharpness_catapult_flag(sharpness, epsilon)
    diverged = divergence_flag(loss, loss_max)
    above = None if barrier is None else barrier_flag(barrier[..., None], loss[..., 0]) & ~diverged
    return [
        [
            Flags(
                bool(loss_up[s, j]),
                bool(sharp_up[s, j]),
                bool(diverged[s, j]),
                None if above is None else bool(above[s, j]),
            )
            for j in range(loss_up.shape[1])
        ]
        for s in range(loss_up.shape[0])
    ]


def scan_grid(
    run: Callable[[np.ndarray], Sweep],
    plans: Sequence[GridPlan],
    chunk: int,
    epsilon: float = 0.0,
    loss_max: float = DEFAULT_LOSS_MAX,
    known: Sequence[Mapping[int, Flags]] | None = None,
    progress: tqdm | None = None,
) -> Scan:
    """Advance one plan per seed (all on one grid) in rounds of ``chunk`` c values run at once.

    Each round runs the (up to ``chunk``) smallest indices that some unfinished plan hands out
    with ``next_chunk`` and that are not run yet; then each plan takes in the runs it asks for,
    in its own order (module docstring). A run's flags are ``run_flags``; with ``known`` (per
    seed, the flags of an earlier scan), they are the known ones with the run's sharpness flag,
    and a run whose index is not known to its seed is never taken in.
    """
    chunk = require_int("chunk", chunk, 1)
    if not plans or any(plan.grid != plans[0].grid for plan in plans):
        raise ConfigError("plans must be one or more plans on one grid", "plans")
    grid = plans[0].grid
    evaluated: list[dict[int, Flags]] = [{} for _ in plans]
    orders: list[list[int]] = [[] for _ in plans]
    available: list[dict[int, Flags]] = [{} for _ in plans]
    run_already: set[int] = set()
    parts: list[Sweep] = []
    while True:
        for plan, taken, order, runs in zip(plans, evaluated, orders, available):
            while (index := plan.next_index(taken)) is not None and index in runs:
                taken[index] = runs[index]
                order.append(index)
        requested = {k for plan, taken in zip(plans, evaluated) for k in plan.next_chunk(taken, chunk)}
        indices = sorted(requested - run_already)[:chunk]
        if not indices:
            break
        run_already.update(indices)
        part = evaluate_padded(run, np.array([grid.c(k) for k in indices]), chunk, progress)
        parts.append(part)
        for seed, (runs, new) in enumerate(
            zip(available, run_flags(part.loss, part.sharpness, part.barrier, epsilon, loss_max))
        ):
            if known is None:
                runs.update(zip(indices, new))
            else:
                runs.update(
                    (k, dataclasses.replace(known[seed][k], sharpness_catapult=flags.sharpness_catapult))
                    for k, flags in zip(indices, new)
                    if k in known[seed]
                )
    searches = tuple(search_result(grid, tuple(order), taken) for order, taken in zip(orders, evaluated))
    return Scan(concatenate(parts), searches)


def scan_two_phase(
    run_loss: Callable[[np.ndarray], Sweep],
    run_full: Callable[[np.ndarray], Sweep],
    grid: CGrid,
    seeds: int,
    chunk: int,
    epsilon: float = 0.0,
    loss_max: float = DEFAULT_LOSS_MAX,
    progress: tqdm | None = None,
) -> Scan:
    """``scan_grid`` of ``seeds`` reference plans with the loss-only ``run_loss``, then of plans
    that also stop at the first sharpness catapult with ``run_full`` (module docstring).

    A seed's result holds the flags of the loss scan with the sharpness flag of the second phase
    where it was measured; above the first sharpness catapult it is not measured and reads False,
    which c_sharp (the smallest flagged c) never reads. The sweep keeps the losses of the first
    phase; the sharpness (and its residual, HVP count and NTK) is NaN where unmeasured.
    """
    losses = scan_grid(run_loss, [GridPlan(grid)] * seeds, chunk, epsilon, loss_max, progress=progress)
    known = [search.flags for search in losses.searches]
    plans = [GridPlan(grid, until=("diverged", "sharpness_catapult"))] * seeds
    full = scan_grid(run_full, plans, chunk, epsilon, loss_max, known, progress)
    searches = tuple(
        search_result(grid, first.order, {**first.flags, **second.flags})
        for first, second in zip(losses.searches, full.searches)
    )
    missing = losses.sweep.c.size - full.sweep.c.size
    pad = lambda a: np.concatenate([a, np.full((a.shape[0], missing, a.shape[2]), np.nan)], axis=1)  # noqa: E731
    measured = full.sweep
    sweep = Sweep(
        losses.sweep.c,
        losses.sweep.loss,
        pad(measured.sharpness),
        pad(measured.residual),
        pad(measured.hvps),
        pad(measured.ntk_top),
        losses.sweep.barrier,
    )
    return Scan(sweep, searches)


def every_point_critical_values(
    grid: CGrid, loss: np.ndarray, sharpness: np.ndarray, epsilon: float = 0.0, loss_max: float = DEFAULT_LOSS_MAX
) -> CriticalValues:
    """c_loss, c_sharp and c_max of one model run at EVERY point of ``grid`` (``loss``, ``sharpness``:
    (grid.size, T + 1)), for closed forms that evaluate the whole grid at once and need no walk:
    ``search_result`` of their ``run_flags``, which reads the range a ``GridPlan`` scans
    (up to the first divergence). The barrier is not measured: c_barrier is reported not found."""
    loss, sharpness = (np.asarray(a, dtype=float) for a in (loss, sharpness))
    if loss.shape[0] != grid.size or sharpness.shape != loss.shape:
        raise ConfigError(f"loss and sharpness must hold one row per grid point ({grid.size})", "loss")
    flags = run_flags(loss[None], sharpness[None], None, epsilon, loss_max)[0]
    return search_result(grid, tuple(range(grid.size)), dict(enumerate(flags))).critical


def evaluate_padded(
    run: Callable[[np.ndarray], Sweep], values: np.ndarray, chunk: int, progress: tqdm | None = None
) -> Sweep:
    """``run`` on ``values`` padded to ``chunk`` entries with the last one (one shape, one
    compilation), the padding dropped."""
    result = run(np.concatenate([values, np.full(chunk - values.size, values[-1])]))
    if progress is not None:
        progress.update(values.size)
    return Sweep(result.c[: values.size], *(getattr(result, name)[:, : values.size] for name in Sweep._fields[1:]))
