"""Train an ensemble as ONE batched program; each member's record equals ``run_at_c``'s.

For members m = 1..M (stacked theta (M, P)) the steps of ``earlyphase.empirical.training.run_at_c``
run side by side:

    theta_{m,t} = theta_{m,t-1} - eta_m v_{m,t},   v_{m,t} = momentum v_{m,t-1} + grad L_{B_{m,t}}(theta_{m,t-1})

with eta_m = c_m / lambda_H0(seed_init_m), then the loss on the evaluation set, the divergence
test (earlyphase.core.is_diverged), and every ``measure_every`` steps one Lanczos solve batched
over the members (warm-started from each member's previous eigenvector, Ritz analysis on the
host every ``check_every`` products). The host reads the device once per step (the losses)
and once per solve; a member that diverges is recorded and dropped from the stacked state, so
it costs nothing more and can never poison another member. After T steps the straight-path
losses L((1 - s) theta_0 + s theta_T) of the surviving members give their barrier losses.

Long ensembles are cut into chunks that fit the memory budget (``earlyphase.empirical.ensemble.memory``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from earlyphase.core.conventions import is_diverged
from earlyphase.core.critical import interpolation_grid
from earlyphase.core.trajectory import Trajectory
from earlyphase.empirical.barrier import path_losses
from earlyphase.empirical.config import TrainConfig
from earlyphase.empirical.curvature.lanczos import LanczosResult, lanczos_top, padded_product
from earlyphase.empirical.curvature.operators import Operator
from earlyphase.empirical.ensemble.batched import MEMBER_AXIS_OF_BATCH, StackedModel, member_losses, summed_loss
from earlyphase.empirical.ensemble.members import Ensemble, Member
from earlyphase.empirical.ensemble.memory import (
    MemoryPlan,
    activation_numel,
    member_bytes,
    memory_budget,
    plan_memory,
)
from earlyphase.empirical.objective import Batch, hessian_operator, loss_and_gradient, ntk_gram_operator
from earlyphase.empirical.training import (
    Experiment,
    Measurement,
    Probe,
    random_start,
    sgd_batches,
    step_columns,
    store_measurement,
    trajectory_record,
)


@dataclass(frozen=True)
class EnsembleOptions:
    """``check_every``: Lanczos products between host convergence checks (results do not depend on
    it); ``memory_budget``: bytes an ensemble chunk may use (None: see ``memory.memory_budget``);
    ``max_members``: cap on members per chunk (None: as many as fit); ``progress``: tqdm over steps."""

    check_every: int = 1
    memory_budget: int | None = None
    max_members: int | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        if self.check_every < 1:
            raise ValueError(f"check_every must be >= 1, got {self.check_every}")
        if self.max_members is not None and self.max_members < 1:
            raise ValueError(f"max_members must be >= 1, got {self.max_members}")


def memory_plan(ensemble: Ensemble, options: EnsembleOptions = EnsembleOptions()) -> MemoryPlan:
    """Members per chunk for ``ensemble`` under ``options`` (estimate against the budget)."""
    shared = ensemble.shared
    probe = shared.probe
    per_member = member_bytes(
        ensemble.config,
        shared.num_params,
        activation_numel(shared.model, shared.train_x[:1]),
        shared.theta0.element_size(),
        probe.measure_batch.size,
        probe.eval_batch.size,
    )
    plan = plan_memory(per_member, memory_budget(shared.theta0.device, options.memory_budget))
    if options.max_members is not None and plan.members_per_chunk > options.max_members:
        plan = MemoryPlan(plan.bytes_per_member, plan.budget, options.max_members)
    return plan


def run_ensemble(
    ensemble: Ensemble, members: Sequence[Member], options: EnsembleOptions = EnsembleOptions()
) -> list[Trajectory]:
    """One ``Trajectory`` per member, in order: ``run_at_c(ensemble.experiment(member), member.c)``
    computed as batched programs of at most ``memory_plan(...).members_per_chunk`` members.

    A chunk that still runs out of CUDA memory (the plan is an estimate) is redone in halves.
    """
    members = list(members)
    if not members:
        return []
    for member in members:
        ensemble.experiment(member)  # every member's seeds were prepared
    chunk = memory_plan(ensemble, options).members_per_chunk
    records: list[Trajectory] = []
    while len(records) < len(members):
        try:
            records += train_chunk(ensemble, members[len(records) : len(records) + chunk], options)
        except torch.cuda.OutOfMemoryError:
            if chunk == 1:
                raise
            chunk = max(1, min(chunk, len(members) - len(records)) // 2)
            torch.cuda.empty_cache()
    return records


def train_chunk(ensemble: Ensemble, members: Sequence[Member], options: EnsembleOptions) -> list[Trajectory]:
    """The members as ONE batched program (no memory planning: see ``run_ensemble``)."""
    config = ensemble.config
    experiments = [ensemble.experiment(member) for member in members]
    shared = ensemble.shared
    probe, device, dtype = shared.probe, shared.theta0.device, shared.theta0.dtype
    etas = [member.c / experiment.lambda0 for member, experiment in zip(members, experiments)]
    columns = [step_columns(config.steps) for _ in members]
    for column, experiment in zip(columns, experiments):
        store_measurement(column, 0, experiment.initial, probe.ntk_normalisation)

    alive = list(range(len(members)))  # member positions still training, in stacked order
    theta = torch.stack([experiment.theta0 for experiment in experiments])
    eta = torch.tensor(etas, dtype=dtype, device=device)[:, None]
    velocity = torch.zeros_like(theta) if config.momentum else None
    sharpness_start = torch.stack([experiment.initial.sharpness.vector for experiment in experiments])
    ntk_start = torch.stack([e.initial.ntk.vector for e in experiments]) if config.ntk else None
    cold_start = _cold_starts(experiments, shared.num_params, device) if not config.warm_start else None
    n_train = len(shared.train_x)
    streams = {seed: sgd_batches(n_train, config.batch_size, seed) for seed in sorted({m.seed_sgd for m in members})}
    steps = tqdm(range(1, config.steps + 1), desc=f"ensemble of {len(members)}", disable=not options.progress, leave=False)
    for t in steps:
        indices = {seed: next(stream) for seed, stream in streams.items()}
        x, y, per_member = _sgd_batch(shared, [indices[members[i].seed_sgd] for i in alive])
        batch_loss, gradient = loss_and_gradient(
            StackedModel(probe.model, per_member), member_losses(probe.loss_fn, per_member), theta,
            Batch.of(x, y, config.chunk_size),
        )  # fmt: skip
        if velocity is not None:
            velocity = config.momentum * velocity + gradient
            gradient = velocity
        theta = theta - eta * gradient
        loss, accuracy = torch.func.vmap(probe.loss_tensors)(theta)
        host = torch.stack([batch_loss, loss, accuracy]).cpu().numpy()
        diverged = is_diverged(host[1], config.loss_max)
        for position, member in enumerate(alive):
            columns[member]["batch_loss"][t] = host[0, position]
            if diverged[position]:
                store_measurement(columns[member], t, Measurement(host[1, position], host[2, position]), probe.ntk_normalisation)
        if diverged.any():
            keep = torch.as_tensor(np.flatnonzero(~diverged), device=device)
            alive = [member for member, gone in zip(alive, diverged) if not gone]
            theta, eta, sharpness_start = theta[keep], eta[keep], sharpness_start[keep]
            velocity = None if velocity is None else velocity[keep]
            ntk_start = None if ntk_start is None else ntk_start[keep]
            cold_start = None if cold_start is None else cold_start[keep]
            host = host[:, ~diverged]
        if not alive:
            break
        sharpness = ntk = None
        if t % config.measure_every == 0 or t == config.steps:
            start = sharpness_start if config.warm_start else cold_start
            sharpness = _solve(hessian_products(probe, shared.hvp_method), theta, start, config, options)
            sharpness_start = sharpness.vector
            sharpness = _to_host(sharpness)
            if ntk_start is not None:
                start = ntk_start if config.warm_start else cold_start
                ntk = _solve(ntk_products(probe), theta, start, config, options)
                ntk_start = ntk.vector
                ntk = _to_host(ntk)
        for position, member in enumerate(alive):
            measurement = Measurement(
                host[1, position],
                host[2, position],
                None if sharpness is None else sharpness.member(position),
                None if ntk is None else ntk.member(position),
            )
            store_measurement(columns[member], t, measurement, probe.ntk_normalisation)

    barrier = [math.nan] * len(members)
    if config.barrier and alive:
        theta0 = torch.stack([experiments[member].theta0 for member in alive])
        path = path_losses(lambda point: torch.func.vmap(probe.loss_tensors)(point)[0], theta0, theta, interpolation_grid())
        for member, value in zip(alive, torch.max(path, dim=0).values.cpu().tolist()):
            barrier[member] = value
    return [
        trajectory_record(experiment, member.c, eta_m, column, barrier_m)
        for member, experiment, eta_m, column, barrier_m in zip(members, experiments, etas, columns, barrier)
    ]


def hessian_products(probe: Probe, method: str) -> Callable[[torch.Tensor], Operator]:
    """theta (K, P) -> [V -> (H(theta_k) v_k)_k] on the measurement batch: ``hessian_operator`` of the
    stacked model with the summed loss (block-diagonal Hessian)."""
    loss = summed_loss(probe.loss_fn)
    return lambda theta: hessian_operator(StackedModel(probe.model), loss, theta, probe.measure_batch, method)[0]


def ntk_products(probe: Probe) -> Callable[[torch.Tensor], Operator]:
    """theta (K, P) -> [U -> (J_k^T J_k u_k)_k] on the measurement batch (block-diagonal Gram operator)."""
    return lambda theta: ntk_gram_operator(StackedModel(probe.model), theta, probe.measure_batch)


def _solve(
    operator_at: Callable[[torch.Tensor], Operator],
    theta: torch.Tensor,
    start: torch.Tensor,
    config: TrainConfig,
    options: EnsembleOptions,
) -> LanczosResult:
    """Batched Lanczos multiplying only the members still iterating (their rows of theta).

    The operator of a set of members keeps its gradient graph between products; when members
    finish, the graph is rebuilt for the others only once they are at most half of it (until
    then the finished members get zero vectors): a rebuild costs a forward and backward pass.
    """
    current_members: torch.Tensor | None = None
    graph_members: torch.Tensor | None = None  # the members the operator's graph holds
    rows: torch.Tensor | None = None  # positions of current_members in graph_members (None: the same)
    operator: Operator | None = None

    def matvec(vectors: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        nonlocal current_members, graph_members, rows, operator
        if members is not current_members:
            current_members = members
            if graph_members is None or 2 * len(members) <= len(graph_members):
                operator = None  # free the previous graph first
                operator = operator_at(theta if len(members) == len(theta) else theta[members])
                graph_members, rows = members, None
            else:
                rows = torch.searchsorted(graph_members, members)
        return operator(vectors) if rows is None else padded_product(operator, vectors, rows, len(graph_members))

    return lanczos_top(matvec, start, config.lanczos_tol, config.lanczos_max_iter, options.check_every, by_member=True)


def _sgd_batch(shared: Experiment, indices: list[torch.Tensor | None]) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(x, y, per_member): the SGD batch of each member (index None: the full training set).

    One batch shared by all members when their indices are the same tensor (one SGD seed), else
    one batch per member, example-major (B, M, ...).
    """
    first = indices[0]
    if all(index is first for index in indices):
        if first is None:
            return shared.train_x, shared.train_y, False
        index = first.to(shared.train_x.device)
        return shared.train_x[index], shared.train_y[index], False
    index = torch.stack(indices, dim=MEMBER_AXIS_OF_BATCH).to(shared.train_x.device)
    return shared.train_x[index], shared.train_y[index], True


def _cold_starts(experiments: Sequence[Experiment], num_params: int, device: torch.device) -> torch.Tensor:
    """Each member's cold Lanczos start, the one ``run_at_c`` uses (``random_start`` of its seed_init)."""
    starts = {e.config.seed_init: random_start(num_params, e.config.seed_init, device) for e in experiments}
    return torch.stack([starts[e.config.seed_init] for e in experiments])


def _to_host(result: LanczosResult) -> LanczosResult:
    """The scalars of a batched solve on the host (one read each), the vectors left on the device."""
    return LanczosResult(
        value=result.value.cpu(),
        vector=result.vector,
        residual=result.residual.cpu(),
        matvecs=result.matvecs.cpu(),
        converged=result.converged.cpu(),
    )
