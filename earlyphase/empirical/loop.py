"""SGD for M >= 1 runs stacked as one network, with their measurements and records (docs/PROTOCOL.md section 2).

Run m has its prepared ``Experiment`` (theta_0, lambda_H0, seeds) and its c; the runs share the
architecture, the data and the measurement batch. Stacked, theta = (theta_m)_m has shape (M, P)
(``earlyphase.empirical.stacked``), and ONE step updates every run with its own SGD batch B_t^m
(from its seed_sgd) and eta_m = c_m / lambda_H0^m:

    v_t = momentum v_{t-1} + grad L_{B_t}(theta_{t-1}),   theta_t = theta_{t-1} - eta v_t   (per member)

Row t of a record is the state after t updates: ``batch_loss`` = L_{B_t}(theta_{t-1}), ``loss``
and ``accuracy`` on the evaluation set at theta_t, and at every t with t % measure_every == 0 and
at t = steps the sharpness and, if asked, the NTK: one batched Lanczos each, started from the
member's previous eigenvector (warm_start; at t = 0 the one ``prepare`` found) or from the cold
start ``random_start(P, seed_init)``, drawn only when warm starts are off. With measure_mode = "flags"
a run is measured only until its sharpness flag is decided (docs/PROTOCOL.md section 3): each
solve also stops once its Ritz value (a lower bound on lambda_max) exceeds
(1 + epsilon) lambda_H0 (1 + FLAG_MARGIN), and once lambda_t / lambda_0 > 1 + epsilon has been
recorded the run's later steps get no solve (sharpness NaN); below that threshold every solve
is the full one, so the flag is the full trajectory's. A run whose loss
diverges (earlyphase.core.is_diverged) is recorded at that step and leaves the stack; the others
go on unchanged. After the last step the straight-line path theta_0 -> theta_T of the runs still
alive gives their barrier losses, on the evaluation set or the measurement batch (``barrier_set``;
with the loss at s = 0 as the record's ``barrier_loss0`` when that is not the evaluation set). ``run_at_c`` is the case M = 1; ensembles train chunks of members.

``StackedSGD`` is the update alone; ``sgd_updates`` and ``training_batches`` give one run's
steps and batches to code that drives its own loop (the step of every caller is this one).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from earlyphase.core.conventions import describe_loss, is_diverged
from earlyphase.core.critical import interpolation_grid, sharpness_catapult_flag
from earlyphase.core.eigen import TopEigenpair
from earlyphase.core.trajectory import Trajectory
from earlyphase.empirical.barrier import path_losses
from earlyphase.empirical.objective import Batch, evaluate_tensors, loss_and_gradient
from earlyphase.empirical.stacked import MEMBER_AXIS_OF_BATCH, StackedModel, member_losses, over_members

if TYPE_CHECKING:
    from earlyphase.empirical.training import Experiment, Probe

COLUMNS = ("loss", "batch_loss", "sharpness", "sharpness_residual", "hvp_count", "ntk_top", "accuracy")
"""The per-step columns of a record (rows t = 0 .. steps)."""

FLAG_MARGIN = 1e-9
"""Relative margin of the "flags" stopping threshold over (1 + epsilon) lambda_H0: a Ritz value
above it passes the flag's ratio test lambda_t / lambda_0 > 1 + epsilon despite rounding, and so
does the converged value of the full solve, which is never below it (interlacing)."""


def random_start(num_params: int, seed: int, device: torch.device) -> torch.Tensor:
    """The cold Lanczos start: a float64 Gaussian vector drawn on the CPU from torch.Generator().manual_seed(seed)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(num_params, generator=generator, dtype=torch.float64).to(device)


def sgd_batches(n: int, batch_size: int | None, seed: int) -> Iterator[torch.Tensor | None]:
    """Batch indices per step: None (all n examples) for full-batch GD (batch_size None or >= n);
    otherwise epochs of torch.randperm(n) (generator seeded with ``seed``) cut into floor(n / B)
    batches of B (the remainder of each epoch is skipped, so every batch has B examples)."""
    if batch_size is None or batch_size >= n:
        while True:
            yield None
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator)
        for first in range(0, n - batch_size + 1, batch_size):
            yield order[first : first + batch_size]


@dataclass
class StackedSGD:
    """Momentum SGD of K stacked runs: theta (K, P), eta (K, 1), velocity (K, P) or None (no momentum)."""

    theta: torch.Tensor
    eta: torch.Tensor
    momentum: float
    velocity: torch.Tensor | None = None

    @classmethod
    def start(cls, theta0: torch.Tensor, etas: Sequence[float], momentum: float) -> StackedSGD:
        """From theta_0 (K, P) with v_0 = 0 (theta_0 is never written to: each step makes a new theta)."""
        eta = torch.tensor(etas, dtype=theta0.dtype, device=theta0.device)[:, None]
        return cls(theta0, eta, momentum, torch.zeros_like(theta0) if momentum else None)

    def step(self, probe: Probe, batch: Batch, per_member: bool) -> torch.Tensor:
        """One update of the module docstring on ``batch`` (per run if ``per_member``); returns (L_{B_t}(theta_{t-1}))_k."""
        batch_loss, gradient = loss_and_gradient(
            StackedModel(probe.model, per_member), member_losses(probe.loss_fn, per_member), self.theta, batch
        )
        if self.velocity is not None:
            self.velocity = self.momentum * self.velocity + gradient
            gradient = self.velocity
        self.theta = self.theta - self.eta * gradient
        return batch_loss

    def keep(self, rows: torch.Tensor) -> None:
        """Keep the runs at ``rows``."""
        self.theta, self.eta = self.theta[rows], self.eta[rows]
        self.velocity = None if self.velocity is None else self.velocity[rows]


def training_batches(experiment: Experiment) -> Iterator[Batch]:
    """The SGD batch B_t of each step t = 1, 2, ... of one run of ``experiment`` (``sgd_batches``
    with its seed_sgd; the whole training set for full-batch GD), chunked like every batch of the run."""
    config = experiment.config
    for index in sgd_batches(len(experiment.train_x), config.protocol.batch_size, config.seeds.sgd):
        yield _sgd_batch(experiment, [index])[0]


def sgd_updates(experiment: Experiment, eta: float) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The SGD of one run from theta_0, endless: (L_{B_t}(theta_{t-1}), theta_t) for t = 1, 2, ...
    (``StackedSGD`` of one run on ``training_batches``; the steps ``run_at_c`` takes)."""
    sgd = StackedSGD.start(experiment.theta0[None], [eta], experiment.config.protocol.momentum)
    for batch in training_batches(experiment):
        batch_loss = sgd.step(experiment.probe, batch, per_member=False)
        yield batch_loss[0], sgd.theta[0]


@dataclass
class _Stack:
    """The runs still training: their positions, their SGD state and their Lanczos starts (rows alike)."""

    alive: list[int]
    sgd: StackedSGD
    sharpness_start: torch.Tensor
    ntk_start: torch.Tensor | None
    cold_start: torch.Tensor | None

    @property
    def theta(self) -> torch.Tensor:
        return self.sgd.theta

    @classmethod
    def start(cls, experiments: Sequence[Experiment], etas: Sequence[float]) -> _Stack:
        """theta_0 of every run, and the Lanczos starts of step 1: the eigenvectors ``prepare``
        found (warm) or, only when warm starts are off, the cold starts."""
        config = experiments[0].config
        theta0 = torch.stack([experiment.theta0 for experiment in experiments])
        return cls(
            alive=list(range(len(experiments))),
            sgd=StackedSGD.start(theta0, etas, config.protocol.momentum),
            sharpness_start=torch.stack([_solved(e.initial.sharpness).vector for e in experiments]),
            ntk_start=torch.stack([_solved(e.initial.ntk).vector for e in experiments])
            if config.measurement.ntk
            else None,
            cold_start=None if config.measurement.warm_start else _cold_starts(experiments, theta0.device),
        )

    def starts(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The Lanczos starts of the next sharpness and NTK solves (None: no NTK): the cold starts
        if they were drawn, else the previous eigenvectors."""
        if self.cold_start is None:
            return self.sharpness_start, self.ntk_start
        return self.cold_start, None if self.ntk_start is None else self.cold_start

    def keep(self, kept: np.ndarray) -> None:
        """Keep the rows where ``kept`` is True."""
        rows = torch.as_tensor(np.flatnonzero(kept), device=self.theta.device)
        self.alive = [run for run, stays in zip(self.alive, kept) if stays]
        self.sgd.keep(rows)
        self.sharpness_start = self.sharpness_start[rows]
        self.ntk_start = None if self.ntk_start is None else self.ntk_start[rows]
        self.cold_start = None if self.cold_start is None else self.cold_start[rows]


def train_runs(
    experiments: Sequence[Experiment],
    cs: Sequence[float],
    check_every: int = 1,
    progress: bool = False,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
) -> list[Trajectory]:
    """One record per run (experiments[m] at c = cs[m]), trained as one stacked program.

    ``check_every``: Lanczos products between host convergence checks (results do not depend on
    it); ``progress``: a tqdm bar over the steps; ``on_step(t, theta_t)`` after every update,
    with the stacked parameters (K, P) of the K runs that have not diverged (none left: not called).
    """
    shared = experiments[0]
    config, probe = shared.config, shared.probe
    etas = [c / experiment.lambda0 for c, experiment in zip(cs, experiments)]
    columns = [{name: np.full(config.protocol.steps + 1, np.nan) for name in COLUMNS} for _ in experiments]
    for column, experiment in zip(columns, experiments):
        initial = experiment.initial
        _store(column, 0, initial.loss, initial.accuracy, initial.sharpness, initial.ntk, probe.ntk_normalisation)
        column["hvp_count"][0] = 0  # lambda_H0's solve is the experiment's: counted once, in the record's config
    stack = _Stack.start(experiments, etas)
    thresholds = _flag_thresholds(experiments)  # None: measure_mode = "full"
    decided = [False] * len(experiments)  # the sharpness flag is set (measure_mode = "flags" only)
    seeds = sorted({experiment.config.seeds.sgd for experiment in experiments})
    streams = {seed: sgd_batches(len(shared.train_x), config.protocol.batch_size, seed) for seed in seeds}
    description = f"c={cs[0]:.4g}" if len(cs) == 1 else f"ensemble of {len(cs)}"
    for t in tqdm(range(1, config.protocol.steps + 1), desc=description, disable=not progress, leave=False):
        indices = {seed: next(stream) for seed, stream in streams.items()}
        batch, per_member = _sgd_batch(shared, [indices[experiments[run].config.seeds.sgd] for run in stack.alive])
        batch_loss = stack.sgd.step(probe, batch, per_member)
        loss, accuracy = over_members(probe.loss_tensors, stack.theta)
        host = torch.stack([batch_loss, loss, accuracy]).cpu().numpy()
        diverged = is_diverged(host[1], config.protocol.loss_max)
        for position, run in enumerate(stack.alive):
            columns[run]["batch_loss"][t] = host[0, position]
            if diverged[position]:
                _store(columns[run], t, host[1, position], host[2, position], None, None, probe.ntk_normalisation)
        if diverged.any():
            stack.keep(~diverged)
            host = host[:, ~diverged]
        if not stack.alive:
            break
        if on_step is not None:
            on_step(t, stack.theta)
        sharpness = ntk = None
        measured = [position for position, run in enumerate(stack.alive) if not decided[run]]
        if (t % config.measurement.measure_every == 0 or t == config.protocol.steps) and measured:
            stop_above = None if thresholds is None else thresholds[[stack.alive[p] for p in measured]]
            sharpness, ntk = _measure(stack, shared, check_every, measured, stop_above)
        solves = {position: number for number, position in enumerate(measured)} if sharpness is not None else {}
        for position, run in enumerate(stack.alive):
            number = solves.get(position)
            solve = None if number is None or sharpness is None else sharpness.member(number)
            gram = None if number is None or ntk is None else ntk.member(number)
            _store(columns[run], t, host[1, position], host[2, position], solve, gram, probe.ntk_normalisation)
            if thresholds is not None and solve is not None:
                decided[run] = bool(sharpness_catapult_flag(columns[run]["sharpness"][[0, t]], config.protocol.epsilon))
    barrier = _barrier_losses(stack, experiments) if config.measurement.barrier else {}
    return [
        trajectory_record(experiment, c, eta, column, *barrier.get(run, (math.nan, math.nan)))
        for run, (experiment, c, eta, column) in enumerate(zip(experiments, cs, etas, columns))
    ]


def _flag_thresholds(experiments: Sequence[Experiment]) -> torch.Tensor | None:
    """measure_mode = "flags": each run's stop_above = (1 + epsilon) lambda_H0 (1 + FLAG_MARGIN)
    (+inf where lambda_H0 is not positive: no early stop); measure_mode = "full": None."""
    config = experiments[0].config
    if config.measurement.measure_mode != "flags":
        return None
    lambda0 = torch.tensor([experiment.lambda0 for experiment in experiments], dtype=torch.float64)
    threshold = (1.0 + config.protocol.epsilon) * lambda0 * (1.0 + FLAG_MARGIN)
    return torch.where(lambda0 > 0, threshold, math.inf)


def _measure(
    stack: _Stack, shared: Experiment, check_every: int, positions: list[int], stop_above: torch.Tensor | None
) -> tuple[TopEigenpair[torch.Tensor], TopEigenpair[torch.Tensor] | None]:
    """The sharpness and NTK solves of the stacked runs at ``positions`` from their starts
    (``_Stack.starts``), the sharpness solves stopping above ``stop_above`` (None: never); their
    warm starts move to the new eigenvectors. The scalars come back on the host, the vectors stay."""
    sharpness_start, ntk_start = stack.starts()
    theta = stack.theta
    rows = None
    if len(positions) < len(stack.alive):
        rows = torch.as_tensor(positions, device=theta.device)
        theta, sharpness_start = theta[rows], sharpness_start[rows]
        ntk_start = None if ntk_start is None else ntk_start[rows]
    sharpness, ntk, _ = shared.probe.stacked_curvature(
        theta, sharpness_start, ntk_start, shared.hvp_method, check_every, stop_above
    )
    if rows is None:
        stack.sharpness_start = sharpness.vector
        stack.ntk_start = None if ntk is None else ntk.vector
    else:
        stack.sharpness_start = stack.sharpness_start.index_copy(0, rows, sharpness.vector)
        if ntk is not None and stack.ntk_start is not None:
            stack.ntk_start = stack.ntk_start.index_copy(0, rows, ntk.vector)
    return _to_host(sharpness), None if ntk is None else _to_host(ntk)


def _barrier_losses(stack: _Stack, experiments: Sequence[Experiment]) -> dict[int, tuple[float, float]]:
    """(max_s L((1 - s) theta_0 + s theta_T), L(theta_0)) of each run still alive along the
    ``interpolation_grid``, on the evaluation set or the measurement batch (``TrainConfig.measurement.barrier_set``);
    L(theta_0) NaN on the evaluation set (the reference is then the record's L_0)."""
    if not stack.alive:
        return {}
    config, probe = experiments[0].config, experiments[0].probe
    batch = probe.eval_batch if config.barrier_on_eval_set else probe.measure_batch
    loss_at = lambda theta: evaluate_tensors(probe.model, probe.loss_fn, theta, batch)[0]  # noqa: E731
    theta0 = torch.stack([experiments[run].theta0 for run in stack.alive])
    path = path_losses(lambda point: over_members(loss_at, point), theta0, stack.theta, interpolation_grid())
    peaks = torch.max(path, dim=0).values.cpu().tolist()
    starts = [math.nan] * len(peaks) if config.barrier_on_eval_set else path[0].cpu().tolist()
    return {run: (peak, start) for run, peak, start in zip(stack.alive, peaks, starts)}


def _sgd_batch(shared: Experiment, indices: list[torch.Tensor | None]) -> tuple[Batch, bool]:
    """(batch, per_member): the SGD batch of each run (index None: the full training set).

    One batch shared by all runs when their indices are the same tensor (one SGD seed), else
    one batch per run, example-major (B, M, ...).
    """
    x, y, chunk_size = shared.train_x, shared.train_y, shared.config.measurement.chunk_size
    first = indices[0]
    if all(index is first for index in indices):
        if first is None:
            return Batch.of(x, y, chunk_size), False
        index = first.to(x.device)
        return Batch.of(x[index], y[index], chunk_size), False
    index = torch.stack([index for index in indices if index is not None], dim=MEMBER_AXIS_OF_BATCH).to(x.device)
    return Batch.of(x[index], y[index], chunk_size), True


def _cold_starts(experiments: Sequence[Experiment], device: torch.device) -> torch.Tensor:
    """Each run's cold Lanczos start, ``random_start`` of its seed_init (drawn once per seed)."""
    num_params = experiments[0].num_params
    starts = {e.config.seeds.init: random_start(num_params, e.config.seeds.init, device) for e in experiments}
    return torch.stack([starts[e.config.seeds.init] for e in experiments])


def _solved(result: TopEigenpair[torch.Tensor] | None) -> TopEigenpair[torch.Tensor]:
    """The initial solve of a run (``prepare`` always measures theta_0)."""
    if result is None:
        raise ValueError("the experiment's initial measurement has no Lanczos solve")
    return result


def _to_host(result: TopEigenpair[torch.Tensor]) -> TopEigenpair[torch.Tensor]:
    """The scalars of a batched solve on the host (one read each), the vectors left on the device."""
    return TopEigenpair(
        value=result.value.cpu(),
        vector=result.vector,
        residual=result.residual.cpu(),
        matvecs=result.matvecs.cpu(),
        converged=result.converged.cpu(),
    )


def _store(
    columns: dict[str, np.ndarray],
    t: int,
    loss: float,
    accuracy: float,
    sharpness: TopEigenpair[torch.Tensor] | None,
    ntk: TopEigenpair[torch.Tensor] | None,
    ntk_normalisation: float,
) -> None:
    """Write one measured state into row t (ntk_top = lambda_max(Theta) / (B k))."""
    columns["loss"][t] = loss
    columns["accuracy"][t] = accuracy
    if sharpness is not None:
        columns["sharpness"][t] = float(sharpness.value)
        columns["sharpness_residual"][t] = float(sharpness.residual)
        columns["hvp_count"][t] = int(sharpness.matvecs)
    if ntk is not None:
        columns["ntk_top"][t] = float(ntk.value) / ntk_normalisation


def trajectory_record(
    experiment: Experiment,
    c: float,
    eta: float,
    columns: dict[str, np.ndarray],
    barrier_loss: float,
    barrier_loss0: float,
    protocol: Mapping[str, object] | None = None,
) -> Trajectory:
    """The ``Trajectory`` of one run of ``experiment`` at c (eta = c / lambda_H0) from its step columns;
    ``protocol``: keys added to the record's config by a runner measuring otherwise (its name, ...)."""
    config = experiment.config
    return Trajectory.from_arrays(
        c=c,
        eta=eta,
        loss_convention=describe_loss(config.protocol.loss),
        loss_max=config.protocol.loss_max,
        barrier_loss=barrier_loss,
        barrier_loss0=barrier_loss0,
        config={**experiment.record_config(), **(protocol or {})},
        seeds={"init": config.seeds.init, "sgd": config.seeds.sgd, "measure": config.seeds.measure},
        **columns,
    )
