"""The early-window protocol on an ensemble of one theory model (docs/PROTOCOL.md sections 2-3).

A model runs, for a chunk of c values, every seed from its OWN fixed initialisation with
eta = c / lambda_H0 for T steps and returns per-step arrays (``Sweep``). ``seed_critical_values``
gives each seed's thresholds with ``earlyphase.core.critical`` over the grid up to that seed's
first divergent c: the range the reference protocol scans (k = 0, 1, ... until the first
divergence), so no seed depends on the others.

``scan_grid`` walks the grid c = 2**x in ascending chunks until every seed has met a divergent
c (or the grid ends): the rule of ``earlyphase.core.search.GridPlan`` (k = 0, 1, ... until the
first divergence) applied to all seeds at once, because each chunk is one jitted program
vmapped over seeds and c rather than one run per requested grid index. ``scan_two_phase`` does the same with a cheap loss-only runner (the loss
alone decides c_loss and c_max), then measures the sharpness in ascending chunks only until
every seed has its first sharpness catapult or has reached its first divergent c: c_sharp is
the smallest c with the flag, so larger c need no sharpness. The answer is the reference grid's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from tqdm import tqdm

from earlyphase.core.conventions import DEFAULT_LOSS_MAX
from earlyphase.core.critical import (
    CriticalValues,
    barrier_flag,
    critical_values,
    divergence_flag,
    loss_catapult_flag,
    sharpness_catapult_flag,
)
from earlyphase.core.validate import require_int


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

    def first_divergent(self, loss_max: float = DEFAULT_LOSS_MAX) -> np.ndarray:
        """Per seed, the index of the first divergent c, or -1 if none diverged."""
        diverged = divergence_flag(self.loss, loss_max)
        return np.where(diverged.any(axis=1), np.argmax(diverged, axis=1), -1)


def concatenate(sweeps: list[Sweep]) -> Sweep:
    """Chunks along the c axis, in order."""
    return Sweep(
        c=np.concatenate([s.c for s in sweeps]),
        **{name: np.concatenate([getattr(s, name) for s in sweeps], axis=1) for name in Sweep._fields[1:]},
    )


def scan_grid(
    run_chunk: Callable[[np.ndarray], Sweep],
    grid: np.ndarray,
    chunk: int,
    loss_max: float = DEFAULT_LOSS_MAX,
    progress: tqdm | None = None,
) -> Sweep:
    """Evaluate ``grid`` (ascending) in chunks of ``chunk`` values until every seed diverged."""
    chunk = require_int("chunk", chunk, 1)
    grid = np.asarray(grid, dtype=float)
    sweeps: list[Sweep] = []
    for start in range(0, grid.size, chunk):
        sweeps.append(evaluate_padded(run_chunk, grid[start : start + chunk], chunk, progress))
        if (concatenate(sweeps).first_divergent(loss_max) >= 0).all():
            break
    return concatenate(sweeps)


def scan_two_phase(
    run_loss: Callable[[np.ndarray], Sweep],
    run_full: Callable[[np.ndarray], Sweep],
    grid: np.ndarray,
    chunk: int,
    epsilon: float = 0.0,
    loss_max: float = DEFAULT_LOSS_MAX,
    progress: tqdm | None = None,
) -> Sweep:
    """``scan_grid`` with the loss-only ``run_loss``, then ``run_full`` over the leading chunks
    that the c_sharp of some seed still needs (module docstring). The result keeps the losses of
    the first phase; the sharpness (and its residual, HVP count and NTK) is NaN where unmeasured."""
    losses = scan_grid(run_loss, grid, chunk, loss_max, progress)
    first = losses.first_divergent(loss_max)
    last = np.where(first < 0, losses.c.size - 1, first)
    measured: list[Sweep] = []
    for start in range(0, losses.c.size, chunk):
        measured.append(evaluate_padded(run_full, losses.c[start : start + chunk], chunk, progress))
        full = concatenate(measured)
        in_range = np.arange(full.c.size)[None, :] <= last[:, None]
        found = (sharpness_catapult_flag(full.sharpness, epsilon) & in_range).any(axis=1)
        if (found | (full.c.size > last)).all():
            break
    missing = losses.c.size - full.c.size
    pad = lambda a: np.concatenate([a, np.full((a.shape[0], missing, a.shape[2]), np.nan)], axis=1)  # noqa: E731
    return Sweep(
        losses.c,
        losses.loss,
        pad(full.sharpness),
        pad(full.residual),
        pad(full.hvps),
        pad(full.ntk_top),
        losses.barrier,
    )


def evaluate_padded(
    run: Callable[[np.ndarray], Sweep], values: np.ndarray, chunk: int, progress: tqdm | None = None
) -> Sweep:
    """``run`` on ``values`` padded to ``chunk`` entries with the last one (one shape, one
    compilation), the padding dropped."""
    result = run(np.concatenate([values, np.full(chunk - values.size, values[-1])]))
    if progress is not None:
        progress.update(values.size)
    return Sweep(result.c[: values.size], *(getattr(result, name)[:, : values.size] for name in Sweep._fields[1:]))


def seed_critical_values(
    sweep: Sweep, epsilon: float = 0.0, loss_max: float = DEFAULT_LOSS_MAX
) -> list[CriticalValues]:
    """c_loss, c_sharp, c_max and c_barrier of every seed.

    Flags: ``loss_catapult_flag``, ``sharpness_catapult_flag`` (epsilon), ``divergence_flag``
    on the step axis, ``barrier_flag`` (the path maximum above L_0; NaN for diverged runs, which
    c_barrier never reads); thresholds: ``critical_values``, which reads each seed's runs up to
    its first divergent c.
    """
    loss_up = loss_catapult_flag(sweep.loss, loss_max)
    sharp_up = sharpness_catapult_flag(sweep.sharpness, epsilon)
    diverged = divergence_flag(sweep.loss, loss_max)
    barrier = barrier_flag(sweep.barrier[..., None], sweep.loss[..., 0])
    return [critical_values(sweep.c, loss_up[s], sharp_up[s], diverged[s], barrier[s]) for s in range(sweep.seeds)]
