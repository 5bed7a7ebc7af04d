"""The ensemble protocol: the two-phase scan gives the reference grid's thresholds.

Oracles: ``critical_values`` on each seed's range read by hand (every grid point up to its first
divergence), and ``run_search(GridPlan(grid), ...)`` fed the same per-c flags one run at a time.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from earlyphase.core import critical_values
from earlyphase.core.search import CGrid, Flags, GridPlan, run_search
from earlyphase.core.validate import ConfigError
from earlyphase.theory.protocol import Sweep, every_point_critical_values, scan_grid, scan_two_phase

GRID = CGrid(0.0, 4.0)  # 41 values
C = GRID.values


def _synthetic(loss_up: np.ndarray, sharp_up: np.ndarray, diverged: np.ndarray, barrier_up: np.ndarray | None = None):
    """A fake model whose run at grid index k has the given flags (seeds x 41), and a log of calls."""
    calls: list[tuple[bool, tuple[float, ...]]] = []

    def runner(measure_sharpness: bool):
        def run(c: np.ndarray) -> Sweep:
            calls.append((measure_sharpness, tuple(c)))
            index = np.searchsorted(C, c)
            seeds = loss_up.shape[0]
            loss = np.ones((seeds, c.size, 4))
            loss[..., 1] = np.where(loss_up[:, index], 1.5, 0.5)
            loss[..., 2] = np.where(diverged[:, index], np.inf, 0.3)
            sharpness = np.full((seeds, c.size, 4), 2.0)
            if measure_sharpness:
                sharpness[..., 3] = np.where(sharp_up[:, index], 2.5, 1.0)
            else:
                sharpness[..., 1:] = np.nan
            nan = np.full(loss.shape, np.nan)
            up = loss_up if barrier_up is None else barrier_up
            barrier = np.where(diverged[:, index], np.nan, np.where(up[:, index], 1.2, 0.8))  # L_0 = 1
            return Sweep(np.asarray(c), loss, sharpness, nan, nan, nan, barrier)

        return run

    return runner, calls


flags = st.integers(1, 4).flatmap(
    lambda seeds: st.tuples(
        *(st.lists(st.lists(st.booleans(), min_size=41, max_size=41), min_size=seeds, max_size=seeds) for _ in range(4))
    )
)


@settings(max_examples=60, deadline=None)
@given(flags=flags, sparse=st.floats(0.0, 0.95), chunk=st.sampled_from([1, 5, 16]))
def test_two_phase_scan_equals_the_reference_grid(flags, sparse, chunk):
    """Arbitrary (non-monotone) flags: the same per-seed thresholds as evaluating every grid point."""
    loss_up, sharp_up, diverged, barrier_up = (np.array(f) for f in flags)
    sharp_up &= np.random.default_rng(0).random(sharp_up.shape) > sparse  # often no sharpness catapult
    diverged &= np.random.default_rng(1).random(diverged.shape) > 0.8
    runner, calls = _synthetic(loss_up, sharp_up, diverged, barrier_up)
    seeds = loss_up.shape[0]
    fast = scan_two_phase(runner(False), runner(True), GRID, seeds, chunk).critical
    for seed, cv in enumerate(fast):  # core's definition on each seed's range
        end = int(np.argmax(diverged[seed])) + 1 if diverged[seed].any() else GRID.size
        expected = critical_values(
            C[:end],
            loss_up[seed, :end] | diverged[seed, :end],
            sharp_up[seed, :end],
            diverged[seed, :end],
            barrier_up[seed, :end],
        )
        assert cv == expected


@settings(max_examples=25, deadline=None)
@given(flags=flags, chunk=st.sampled_from([1, 3, 16, 64]))
def test_each_seed_gets_run_search_on_the_reference_plan(flags, chunk):
    """The batched walk against ``run_search(GridPlan(grid))`` fed the same flags one index at a
    time: the same evaluated indices, in the same order, and the same critical values."""
    loss_up, sharp_up, diverged, barrier_up = (np.array(f) for f in flags)
    diverged &= np.random.default_rng(2).random(diverged.shape) > 0.85
    runner, _ = _synthetic(loss_up, sharp_up, diverged, barrier_up)
    scan = scan_two_phase(runner(False), runner(True), GRID, loss_up.shape[0], chunk)
    for seed, search in enumerate(scan.searches):

        def evaluate(k: int, seed: int = seed) -> Flags:
            down = bool(diverged[seed, k])
            return Flags(
                bool(loss_up[seed, k]) or down, bool(sharp_up[seed, k]), down, bool(barrier_up[seed, k]) and not down
            )

        reference = run_search(GridPlan(GRID), evaluate)
        assert search.order == reference.order
        assert search.critical == reference.critical


def test_sharpness_is_measured_only_where_c_sharp_needs_it():
    seeds = 2
    loss_up = np.zeros((seeds, 41), bool)
    diverged = np.zeros((seeds, 41), bool)
    diverged[:, 30:] = True
    sharp_up = np.zeros((seeds, 41), bool)
    sharp_up[:, 7:] = True
    runner, calls = _synthetic(loss_up, sharp_up, diverged)
    sweep, searches = scan_two_phase(runner(False), runner(True), GRID, seeds, chunk=8)
    measured = [c for full, values in calls if full for c in values]
    assert len(measured) == 8  # one chunk holds both seeds' first sharpness catapult (index 7)
    assert sweep.c.size == 32  # the loss scan stops after the chunk with every seed's divergence
    assert np.isnan(sweep.sharpness[:, 8:, 1:]).all() and np.isfinite(sweep.sharpness[:, :8]).all()
    assert [search.critical.c_sharp.estimate for search in searches] == [GRID.c(7)] * 2


def test_scan_stops_once_every_seed_diverged():
    diverged = np.zeros((3, 41), bool)
    diverged[0, 5:] = diverged[1, 12:] = diverged[2, 9:] = True
    runner, calls = _synthetic(np.zeros((3, 41), bool), np.zeros((3, 41), bool), diverged)
    sweep, searches = scan_grid(runner(False), [GridPlan(GRID)] * 3, chunk=4)
    assert sweep.c.size == 16 and len(calls) == 4
    np.testing.assert_array_equal(sweep.c, C[:16])
    assert [search.order[-1] for search in searches] == [5, 12, 9]  # each seed stops at its first divergence
    assert [search.critical.c_max.high for search in searches] == [GRID.c(5), GRID.c(12), GRID.c(9)]


def test_plans_on_different_grids_are_refused():
    runner, _ = _synthetic(*(np.zeros((1, 41), bool),) * 3)
    with pytest.raises(ConfigError, match="plans"):
        scan_grid(runner(False), [GridPlan(GRID), GridPlan(CGrid(0.0, 3.0))], chunk=4)


@settings(max_examples=40, deadline=None)
@given(flags=flags, seed=st.integers(0, 3))
def test_every_point_thresholds_are_core_critical_values_on_the_whole_grid(flags, seed):
    """A closed form's runs at every grid point: ``critical_values`` of their flags (barrier not measured)."""
    loss_up, sharp_up, diverged, _ = (np.array(f) for f in flags)
    diverged &= np.random.default_rng(3).random(diverged.shape) > 0.8
    runs = _synthetic(loss_up, sharp_up, diverged)[0](True)(C)
    row = seed % loss_up.shape[0]
    expected = critical_values(C, loss_up[row] | diverged[row], sharp_up[row], diverged[row])
    assert every_point_critical_values(GRID, runs.loss[row], runs.sharpness[row]) == expected


def test_every_point_thresholds_need_one_run_per_grid_point():
    with pytest.raises(ConfigError, match="one row per grid point"):
        every_point_critical_values(GRID, np.ones((GRID.size - 1, 3)), np.ones((GRID.size - 1, 3)))
