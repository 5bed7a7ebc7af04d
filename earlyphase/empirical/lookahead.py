"""The look-ahead predictor: critical values from the first SGD step's ray (docs/PROTOCOL.md section 7).

Every run of a sweep takes the same first step, theta_1(c) = theta_0 - (c / lambda_H0) g_0 with
g_0 the gradient of the first SGD batch (the momentum buffer starts at 0, so v_1 = g_0). Row
t = 1 of ``run_at_c`` at c is therefore a point of one ray, and reading the flags of
``earlyphase.core.critical`` at t = 1 only gives the one-step look-ahead:

    c_loss   smallest grid c with L(theta_1(c)) / L_0 > 1 on the evaluation set (forward passes),
             or with a divergent K-step run (a diverged run counts as a loss catapult);
    c_sharp  smallest grid c with lambda_H(theta_1(c)) / lambda_H0 > 1 + epsilon (Lanczos on the
             measurement batch, warm-started from u), found by bisection over grid indices;
    c_max    largest grid c below the first c whose K steps of the protocol's own SGD (same
             batches, momentum, eta = c / lambda_H0, losses on the evaluation set, no sharpness
             solves) diverge (``earlyphase.core.is_diverged`` with the config's L_max), searched
             over the grid by an ``earlyphase.core.search`` plan (bracketing by default);
    c_barrier  not predicted (reported not found). On theta_0 -> theta_1 the straight path IS
             the ray, so a one-step barrier adds nothing beyond c_loss's losses.

As in ``earlyphase.core.critical.critical_values``, c_loss and c_sharp are read over the grid up to
the first divergent c. With K = 1 the prediction is the critical values of a sweep of one-step
runs, exactly; with K = T (``config.protocol.steps``) c_max is the sweep's own c_max (the same runs without
their sharpness solves, found by the same search).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from earlyphase.core.conventions import is_diverged
from earlyphase.core.cost import Cost
from earlyphase.core.critical import (
    CriticalValues,
    Threshold,
    divergence_flag,
    first_true,
    loss_catapult_flag,
    sharpness_catapult_flag,
)
from earlyphase.core.search import BracketPlan, CGrid, Flags, SearchPlan, run_search
from earlyphase.core.validate import require_int, require_positive
from earlyphase.empirical.initial import InitialMeasurements
from earlyphase.empirical.objective import evaluate
from earlyphase.empirical.training import Experiment, random_start, sgd_updates, training_batches

DEFAULT_LOOKAHEAD_STEPS = 3
"""K, the SGD steps behind the look-ahead's c_max."""

DEFAULT_PLAN = BracketPlan(CGrid(), start=CGrid().index_at_or_above(1.0))
"""The K-step runs' search: a bisect sweep's default (c = 2**x, x = 0, 0.1, .., 6, expanding from
x = 1 in strides of 6 grid points, then bisecting)."""


@dataclass(frozen=True)
class RayLosses:
    """The loss along the first step's ray at each c: ``loss`` = L(theta_1(c)) on the evaluation
    set (its ratio to L_0 is ``loss_ratio``), ``batch_loss_ratio`` = L_{B_1}(theta_1(c)) / L_{B_1}(theta_0)
    on the first SGD batch; ``forwards`` the passes used."""

    c: np.ndarray
    loss: np.ndarray
    loss_ratio: np.ndarray
    batch_loss_ratio: np.ndarray
    forwards: int


@dataclass(frozen=True)
class RaySharpness:
    """lambda_H(theta_1(c)) on the measurement batch: its ratio to lambda_H0, the Lanczos relative
    residual, the HVPs used and whether it converged."""

    c: float
    value: float
    ratio: float
    residual: float
    hvps: int
    converged: bool


@dataclass(frozen=True)
class LookaheadDetails:
    """The per-c arrays behind a look-ahead prediction, over the whole grid ``c`` (for figures).

    ``loss_ratio`` / ``batch_loss_ratio``: ``RayLosses`` at every grid c. ``sharpness_ratio``,
    ``sharpness_residual``, ``sharpness_hvps``: lambda_H(theta_1(c)) / lambda_H0 where solved
    (NaN elsewhere; ``sharpness_order`` lists the solved grid indices in the bisection's order).
    ``step_losses`` (grid, K + 1): L_0, L_1 .. L_K of the K-step runs on the evaluation set, NaN
    after a divergence and in the rows of grid points not run; ``diverged``: 1.0 or 0.0 per run,
    NaN where not run; ``runs_order``: the grid indices run, in the search's order.
    ``c_loss_steps``: the smallest c whose K-step run catapults (L_t / L_0 > 1 for some t <= K,
    or diverges), the K-step counterpart of c_loss, from the same search.
    """

    c: np.ndarray
    steps: int
    loss_ratio: np.ndarray
    batch_loss_ratio: np.ndarray
    sharpness_ratio: np.ndarray
    sharpness_residual: np.ndarray
    sharpness_hvps: np.ndarray
    sharpness_order: tuple[int, ...]
    step_losses: np.ndarray
    diverged: np.ndarray
    runs_order: tuple[int, ...]
    c_loss_steps: Threshold


def first_step(experiment: Experiment, first_gradient: torch.Tensor, c: float) -> torch.Tensor:
    """theta_1(c) = theta_0 - eta g_0 with eta = c / lambda_H0, in the network's dtype and with the
    same operations as ``run_at_c`` (so that it is the same vector, bit for bit)."""
    eta = c / experiment.lambda0
    return experiment.theta0.clone() - eta * first_gradient.to(experiment.theta0.dtype)


def ray_losses(
    experiment: Experiment, first_gradient: torch.Tensor, c_values: Sequence[float] | np.ndarray
) -> RayLosses:
    """L(theta_1(c)) / L_0 on the evaluation set and L_{B_1}(theta_1(c)) / L_{B_1}(theta_0) on the
    first SGD batch B_1, for each c > 0 (two forward passes per c, one more for L_{B_1}(theta_0))."""
    c = np.array([require_positive("c", value) for value in c_values], dtype=float)
    probe = experiment.probe
    batch = next(training_batches(experiment))
    batch_loss0 = evaluate(experiment.model, probe.loss_fn, experiment.theta0, batch)[0]
    loss = np.empty(len(c))
    batch_loss = np.empty(len(c))
    for i, value in enumerate(c):
        theta = first_step(experiment, first_gradient, float(value))
        loss[i] = probe.loss(theta)[0]
        batch_loss[i] = evaluate(experiment.model, probe.loss_fn, theta, batch)[0]
    with np.errstate(invalid="ignore", over="ignore"):
        return RayLosses(c, loss, loss / experiment.loss0, batch_loss / batch_loss0, 2 * len(c) + 1)


def ray_sharpness(experiment: Experiment, first_gradient: torch.Tensor, c: float) -> RaySharpness:
    """lambda_H(theta_1(c)) / lambda_H0 by Lanczos on the measurement batch, started as ``run_at_c``
    starts its step-1 solve: from u (``warm_start``, the default) or the seed_init vector."""
    config = experiment.config
    theta = first_step(experiment, first_gradient, require_positive("c", c))
    start = (
        experiment.initial_sharpness.vector
        if config.measurement.warm_start
        else random_start(experiment.num_params, config.seeds.init, theta.device)
    )
    sharpness, _, _ = experiment.probe.curvature(theta, start, None)
    value = float(sharpness.value)
    return RaySharpness(
        c=float(c),
        value=value,
        ratio=value / experiment.lambda0,
        residual=float(sharpness.residual),
        hvps=int(sharpness.matvecs),
        converged=bool(sharpness.converged),
    )


def multi_step_losses(experiment: Experiment, c: float, steps: int) -> np.ndarray:
    """(L_0, L_1, .., L_K) on the evaluation set for K = ``steps`` steps of ``run_at_c``'s SGD at
    eta = c / lambda_H0 (the same batches and momentum), without sharpness solves; the losses
    after the first divergent one are NaN."""
    losses = np.full(steps + 1, np.nan)
    losses[0] = experiment.loss0
    updates = sgd_updates(experiment, c / experiment.lambda0)
    for t in range(1, steps + 1):
        _, theta = next(updates)
        losses[t] = experiment.probe.loss(theta)[0]
        if bool(is_diverged(losses[t], experiment.config.protocol.loss_max)):
            break
    return losses


def lookahead_prediction(
    experiment: Experiment,
    measurements: InitialMeasurements,
    plan: SearchPlan = DEFAULT_PLAN,
    steps: int = DEFAULT_LOOKAHEAD_STEPS,
    epsilon: float | None = None,
) -> tuple[CriticalValues, Cost, LookaheadDetails]:
    """``ray_prediction`` along the first gradient g_0 of ``measurements``."""
    return ray_prediction(experiment, measurements.first_gradient, plan, steps, epsilon)


def ray_prediction(
    experiment: Experiment,
    first_gradient: torch.Tensor,
    plan: SearchPlan = DEFAULT_PLAN,
    steps: int = DEFAULT_LOOKAHEAD_STEPS,
    epsilon: float | None = None,
) -> tuple[CriticalValues, Cost, LookaheadDetails]:
    """c_loss, c_sharp and c_max of ``experiment`` predicted from the first step's ray
    theta_1(c) = theta_0 - (c / lambda_H0) g_0, g_0 = ``first_gradient`` (module docstring), the
    work it took (not counting g_0), and the per-c arrays.

    ``plan``: the search over the grid ``plan.grid`` for the K-step runs (``earlyphase.core.search``:
    ``BracketPlan``, the default, as a bisect sweep searches; ``GridPlan`` runs every grid point
    up to the first divergence); ``steps``: K (``experiment.config.protocol.steps`` makes c_max the sweep's
    own); ``epsilon``: the c_sharp tolerance (None: the config's).

    Work: the plan's K-step runs (K gradients and K forward passes each, fewer when one diverges);
    two forward passes along the ray at every grid c; Lanczos solves for the sharpness flag at
    about log2(grid size) + 2 grid points, a bisection over the grid indices up to the first
    divergence that assumes the flag switches once. The sharpness is not searched with the plan:
    a plan evaluates every flag of a point together, so it would pay a Lanczos solve at each point
    it visits to bracket the divergence, which the K-step runs find without one.
    """
    started = time.perf_counter()
    steps = require_int("steps", steps, 1)
    epsilon = (
        experiment.config.protocol.epsilon if epsilon is None else require_positive("epsilon", epsilon, allow_zero=True)
    )
    loss_max = experiment.config.protocol.loss_max
    grid = plan.grid
    c = grid.values
    g0 = first_gradient

    step_losses = np.full((grid.size, steps + 1), np.nan)

    def run(k: int) -> Flags:
        step_losses[k] = multi_step_losses(experiment, float(c[k]), steps)
        return multi_step_flags(step_losses[k], loss_max)

    search = run_search(plan, run)
    divergent = [k for k, flags in search.flags.items() if flags.diverged]
    scanned = min(divergent) + 1 if divergent else grid.size  # the grid up to the first divergent c
    diverged = np.full(grid.size, np.nan)
    for k, flags in search.flags.items():
        diverged[k] = float(flags.diverged)
    taken = [_steps_run(step_losses[k], loss_max) for k in search.order]

    ray = ray_losses(experiment, g0, c)
    pairs = np.stack([np.full(grid.size, experiment.loss0), ray.loss], axis=-1)
    loss_flags = loss_catapult_flag(pairs[:scanned], loss_max)
    if divergent:
        loss_flags[-1] = True  # the first divergent run counts as a loss catapult
    ray_diverged = divergence_flag(pairs, loss_max)

    sharpness: dict[int, RaySharpness] = {}

    def sharpness_flag(k: int) -> bool:
        sharpness[k] = ray_sharpness(experiment, g0, float(c[k]))
        return bool(sharpness_catapult_flag([experiment.lambda0, sharpness[k].value], epsilon))

    top = scanned - 1 if not ray_diverged[scanned - 1] else scanned - 2
    bisected = bisect_first_true(sharpness_flag, top)
    sharp_c = [c[k] for k in bisected] + [c[k] for k in range(top + 1, scanned)]  # ray diverged: no finite sharpness
    sharp_flags = list(bisected.values()) + [False] * (scanned - 1 - top)

    critical = CriticalValues(
        c_loss=first_true("c_loss", c[:scanned], loss_flags),
        c_sharp=first_true("c_sharp", sharp_c, sharp_flags),
        c_max=search.critical.c_max,
        c_barrier=Threshold("c_barrier", None, None, None),
    )
    solved = np.full(grid.size, np.nan)
    residual, hvps = solved.copy(), solved.copy()
    for k, result in sharpness.items():
        solved[k], residual[k], hvps[k] = result.ratio, result.residual, result.hvps
    details = LookaheadDetails(
        c=c,
        steps=steps,
        loss_ratio=ray.loss_ratio,
        batch_loss_ratio=ray.batch_loss_ratio,
        sharpness_ratio=solved,
        sharpness_residual=residual,
        sharpness_hvps=hvps,
        sharpness_order=tuple(sharpness),
        step_losses=step_losses,
        diverged=diverged,
        runs_order=search.order,
        c_loss_steps=search.critical.c_loss,
    )
    cost = Cost(
        hvps=int(np.nansum(hvps)),
        gradients=sum(taken),
        forwards=sum(taken) + ray.forwards,
        seconds=time.perf_counter() - started,
    )
    return critical, cost, details


def multi_step_flags(losses: np.ndarray, loss_max: float) -> Flags:
    """The ``earlyphase.core.search`` flags of a K-step run's losses (L_0 .. L_K): loss catapult
    (some L_t / L_0 > 1, or divergence) with its margin log max_t L_t / L_0, divergence; no
    sharpness catapult and no barrier (not measured by these runs)."""
    diverged = bool(divergence_flag(losses, loss_max))
    with np.errstate(divide="ignore", invalid="ignore"):
        margin = np.inf if diverged else float(np.log(np.nanmax(losses[1:]) / losses[0]))
    return Flags(
        loss_catapult=bool(loss_catapult_flag(losses, loss_max)),
        sharpness_catapult=False,
        diverged=diverged,
        barrier=False,
        loss_margin=margin,
    )


def _steps_run(losses: np.ndarray, loss_max: float) -> int:
    """Steps a K-step run took: up to its first divergent loss, else K."""
    divergent = is_diverged(losses[1:], loss_max)
    return int(np.argmax(divergent)) + 1 if divergent.any() else len(losses) - 1


def bisect_first_true(flag: Callable[[int], bool], top: int) -> dict[int, bool]:
    """The flags evaluated by a bisection for the smallest index in 0..top whose flag is True,
    assuming a single switch from False to True: ``top`` first (all False if it is False), then
    0, then midpoints of the bracket (lo False, hi True) until hi = lo + 1. Empty if top < 0."""
    evaluated: dict[int, bool] = {}
    if top < 0 or not _evaluate(evaluated, flag, top) or top == 0 or _evaluate(evaluated, flag, 0):
        return evaluated
    lo, hi = 0, top
    while hi - lo > 1:
        middle = (lo + hi) // 2
        lo, hi = (lo, middle) if _evaluate(evaluated, flag, middle) else (middle, hi)
    return evaluated


def _evaluate(evaluated: dict[int, bool], flag: Callable[[int], bool], index: int) -> bool:
    evaluated[index] = flag(index)
    return evaluated[index]
