"""run_searches over a RunStore: the oracle is earlyphase.core.search.run_search on the same flags.

Synthetic records whose loss catapults from c = 2, sharpness from c = 3 and diverge from c = 8
(thresholds the record's flags give exactly), searched by the full grid and by bracketing.
"""

import math

import numpy as np
import pytest

from earlyphase.core.search import BracketPlan, CGrid, GridPlan, flags_of, run_search
from earlyphase.core.trajectory import Trajectory
from earlyphase.empirical.search_runner import MemoryStore, run_searches

GRID = CGrid(x_min=0.0, x_max=4.0, x_step=0.25)  # c = 1 .. 16


def record(c: float) -> Trajectory:
    """A 2-step record: loss 1 -> 1.5 (catapult) from c = 2, -> inf from c = 8; sharpness 1 -> 1.2 from c = 3."""
    peak = math.inf if c >= 8 else (1.5 if c >= 2 else 0.5)
    return Trajectory.from_arrays(
        c=c,
        eta=c,
        loss=[1.0, peak, 0.4],
        loss_convention="mse",
        sharpness=[1.0, 1.2 if c >= 3 else 0.9, np.nan],
        barrier_loss=math.nan if c >= 8 else 1.1,
    )


@pytest.mark.parametrize("lookahead", [1, 3])
def test_searches_equal_run_search_and_resume_from_the_store(lookahead):
    plans = [GridPlan(GRID), BracketPlan(GRID, start=4, expand_step=3)]
    alone = [run_search(plan, lambda k: flags_of(record(GRID.c(k)))) for plan in plans]
    computed_keys = []

    def compute(keys):
        computed_keys.extend(keys)
        return [record(GRID.c(index)) for _, index in keys]

    store = MemoryStore()
    first = run_searches(plans, store, compute, epsilon=0.0, lookahead=lookahead)
    for runs, single in zip(first, alone):
        assert runs.result.order == single.order and runs.result.critical == single.critical
        assert (runs.computed, runs.loaded) == (len(single.order), 0)
        assert (runs.lambda0, runs.loss0) == (1.0, 1.0)
    # only the runs a search used were kept; speculative ones beyond them were dropped
    used = sorted((n, k) for n, single in enumerate(alone) for k in single.order)
    assert sorted(store.records) == used and len(computed_keys) >= len(used)

    computed_keys.clear()
    again = run_searches(plans, store, compute, epsilon=0.0, lookahead=lookahead)
    assert [(runs.computed, runs.loaded) for runs in again] == [(0, len(single.order)) for single in alone]
    assert [runs.result.critical for runs in again] == [single.critical for single in alone]
    assert sorted(store.records) == used
    if lookahead == 1:  # nothing speculative: a resumed search computes nothing
        assert computed_keys == []
