"""The ensemble protocol: the two-phase scan gives the reference grid's thresholds."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from earlyphase.core import c_grid, critical_values
from earlyphase.theory.protocol import Sweep, scan_grid, scan_two_phase, seed_critical_values

GRID = c_grid(0.0, 4.0)  # 41 values


def _synthetic(loss_up: np.ndarray, sharp_up: np.ndarray, diverged: np.ndarray, barrier_up: np.ndarray | None = None):
    """A fake model whose run at grid index k has the given flags (seeds x 41), and a log of calls."""
    calls: list[tuple[bool, tuple[float, ...]]] = []

    def runner(measure_sharpness: bool):
        def run(c: np.ndarray) -> Sweep:
            calls.append((measure_sharpness, tuple(c)))
            index = np.searchsorted(GRID, c)
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
    fast = seed_critical_values(scan_two_phase(runner(False), runner(True), GRID, chunk))
    reference = seed_critical_values(runner(True)(GRID))
    assert fast == reference
    for seed, cv in enumerate(reference):  # and the reference is core's definition on each seed's range
        end = int(np.argmax(diverged[seed])) + 1 if diverged[seed].any() else GRID.size
        expected = critical_values(
            GRID[:end],
            loss_up[seed, :end] | diverged[seed, :end],
            sharp_up[seed, :end],
            diverged[seed, :end],
            barrier_up[seed, :end],
        )
        assert cv == expected


def test_sharpness_is_measured_only_where_c_sharp_needs_it():
    seeds = 2
    loss_up = np.zeros((seeds, 41), bool)
    diverged = np.zeros((seeds, 41), bool)
    diverged[:, 30:] = True
    sharp_up = np.zeros((seeds, 41), bool)
    sharp_up[:, 7:] = True
    runner, calls = _synthetic(loss_up, sharp_up, diverged)
    sweep = scan_two_phase(runner(False), runner(True), GRID, chunk=8)
    measured = [c for full, values in calls if full for c in values]
    assert len(measured) == 8  # one chunk holds both seeds' first sharpness catapult (index 7)
    assert sweep.c.size == 32  # the loss scan stops after the chunk with every seed's divergence
    assert np.isnan(sweep.sharpness[:, 8:, 1:]).all() and np.isfinite(sweep.sharpness[:, :8]).all()
    assert [cv.c_sharp.estimate for cv in seed_critical_values(sweep)] == [GRID[7]] * 2


def test_scan_stops_once_every_seed_diverged():
    diverged = np.zeros((3, 41), bool)
    diverged[0, 5:] = diverged[1, 12:] = diverged[2, 9:] = True
    runner, calls = _synthetic(np.zeros((3, 41), bool), np.zeros((3, 41), bool), diverged)
    sweep = scan_grid(runner(False), GRID, chunk=4)
    assert sweep.c.size == 16 and len(calls) == 4
    np.testing.assert_array_equal(sweep.first_divergent(), [5, 12, 9])
