"""Train an ensemble in chunks that fit the memory budget; each member's record equals ``run_at_c``'s.

A chunk of members m = 1..M (stacked theta (M, P)) is ONE program of
``earlyphase.empirical.loop.train_runs``, the loop ``run_at_c`` runs for M = 1: per step

    theta_{m,t} = theta_{m,t-1} - eta_m v_{m,t},   v_{m,t} = momentum v_{m,t-1} + grad L_{B_{m,t}}(theta_{m,t-1})

with eta_m = c_m / lambda_H0(seed_init_m), the divergence test and the batched Lanczos solves
(Ritz analysis on the host every ``check_every`` products); a member that diverges is recorded
and dropped from the stacked state, so it can never poison another member. How many members a
chunk holds comes from ``earlyphase.empirical.ensemble.memory``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from earlyphase.core.trajectory import Trajectory
from earlyphase.empirical.ensemble.members import Ensemble, Member
from earlyphase.empirical.ensemble.memory import (
    MemoryPlan,
    activation_numel,
    member_bytes,
    memory_budget,
    plan_memory,
)
from earlyphase.empirical.loop import train_runs


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
    experiments = [ensemble.experiment(member) for member in members]
    return train_runs(experiments, [member.c for member in members], options.check_every, options.progress)
