"""Ensembles: many runs of one architecture (c values and/or seeds) trained as ONE batched program.

    from earlyphase.empirical.ensemble import Member, prepare_ensemble, run_ensemble
    ensemble = prepare_ensemble(config, seeds=[(0, 0), (1, 0)])        # theta_0, lambda_H0 per seed_init
    records = run_ensemble(ensemble, [Member(c, 0, 0) for c in (1.0, 2.0, 4.0)])

Each record equals ``run_at_c(prepare(config with those seeds), c)`` (float64: to round-off;
float32: see docs/RESULTS.md). Modules: ``members`` (Member, Ensemble, prepare_ensemble),
``run`` (run_ensemble: chunks of members, each trained as one stacked program by
``earlyphase.empirical.loop``, the loop of ``run_at_c``), ``memory`` (the per-member estimate,
budgets, peak memory), ``search`` (many searches over c advanced in lockstep, each round one
ensemble) and ``sweep`` (the sweep worker for ``[execution] ensemble = L``).
"""

from earlyphase.empirical.ensemble.members import Ensemble, Member, prepare_ensemble
from earlyphase.empirical.ensemble.memory import MemoryPlan, peak_memory, reset_peak_memory
from earlyphase.empirical.ensemble.run import EnsembleOptions, memory_plan, run_ensemble

__all__ = [
    "Ensemble",
    "EnsembleOptions",
    "Member",
    "MemoryPlan",
    "memory_plan",
    "peak_memory",
    "prepare_ensemble",
    "reset_peak_memory",
    "run_ensemble",
]
