"""Grid and bracketing searches over c (earlyphase.core.search).

Oracle: the reference protocol written out independently here (every grid point from the
bottom until the first divergence, thresholds read off by direct scans), and
``critical_values`` on the full grid.
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from earlyphase.core import Trajectory, c_grid
from earlyphase.core.search import BracketPlan, CGrid, Flags, GridPlan, flags_of, run_search, search_result

GRID = CGrid(x_min=0.0, x_max=5.0, x_step=0.1)  # 51 points


def monotone_runner(k_loss, k_sharp, k_barrier, k_div, barrier_measured=True, margin_power=None):
    """Flags that switch on at fixed grid indices (None: never); a diverged run is a loss catapult.

    With ``margin_power`` p the catapult flags carry margins sign(k - k0 + 1/2) |k - k0 + 1/2|^p
    (p = 1: exact regula falsi; p far from 1: a poor guide the search must survive).
    """

    def on(k, threshold):
        return threshold is not None and k >= threshold

    def margin(k, threshold):
        if margin_power is None:
            return None
        offset = k - (threshold if threshold is not None else 10**6) + 0.5
        return math.copysign(abs(offset) ** margin_power, offset)

    calls = []

    def evaluate(k):
        calls.append(k)
        diverged = on(k, k_div)
        return Flags(
            loss_catapult=on(k, k_loss) or diverged,
            sharpness_catapult=on(k, k_sharp),
            diverged=diverged,
            barrier=(on(k, k_barrier) and not diverged) if barrier_measured else None,
            loss_margin=math.inf if diverged and margin_power else margin(k, k_loss),
            sharpness_margin=margin(k, k_sharp),
        )

    return evaluate, calls


def reference_thresholds(k_loss, k_sharp, k_barrier, k_div, size, barrier_measured=True):
    """The full grid read by hand: (estimate, low, high) as grid indices, None where open."""
    top = size - 1 if k_div is None or k_div >= size else k_div  # scan 0 .. first divergence

    def first(flag_index, upper):
        # smallest k <= upper with the flag set
        if flag_index is None or flag_index > upper:
            return (None, upper if upper >= 0 else None, None)
        k = max(flag_index, 0)
        return (k, k - 1 if k > 0 else None, k)

    k_loss_eff = min(x for x in (k_loss, k_div) if x is not None) if (k_loss, k_div) != (None, None) else None
    c_loss = first(k_loss_eff, top)
    c_sharp = first(k_sharp, top)
    if k_div is None or k_div >= size:
        c_max = (None, size - 1, None)
    elif k_div == 0:
        c_max = (None, None, 0)
    else:
        c_max = (k_div - 1, k_div - 1, k_div)
    if not barrier_measured:
        c_barrier = (None, None, None)
    elif c_max[0] is None and c_max[2] == 0:
        c_barrier = (None, None, 0)
    else:
        trainable_top = top if c_max[2] is None else top - 1
        c_barrier = first(k_barrier, trainable_top)
        if c_barrier[0] is None and c_max[0] is not None:
            c_barrier = c_max
    return {"c_loss": c_loss, "c_sharp": c_sharp, "c_max": c_max, "c_barrier": c_barrier}


def as_indices(threshold, grid):
    c = c_grid(grid.x_min, grid.x_max, grid.x_step)

    def index(value):
        if value is None:
            return None
        (hits,) = np.nonzero(np.isclose(c, value, rtol=1e-12))
        return int(hits[0])

    return (index(threshold.estimate), index(threshold.low), index(threshold.high))


threshold_index = st.one_of(st.none(), st.integers(0, 60))


@settings(max_examples=200, deadline=None)
@given(
    k_loss=threshold_index,
    k_sharp=threshold_index,
    k_barrier=threshold_index,
    k_div=threshold_index,
    start=st.integers(0, 50),
    expand_step=st.integers(1, 20),
    confirm=st.integers(1, 3),
    barrier_measured=st.booleans(),
    margin_power=st.one_of(st.none(), st.sampled_from([0.3, 1.0, 3.0])),
)
def test_bracket_and_grid_equal_the_reference_on_monotone_flags(
    k_loss, k_sharp, k_barrier, k_div, start, expand_step, confirm, barrier_measured, margin_power
):
    evaluate, _ = monotone_runner(k_loss, k_sharp, k_barrier, k_div, barrier_measured, margin_power)
    expected = reference_thresholds(k_loss, k_sharp, k_barrier, k_div, GRID.size, barrier_measured)
    grid_result = run_search(GridPlan(GRID), evaluate)
    bracket_result = run_search(BracketPlan(GRID, start, expand_step, confirm), evaluate)
    for name, want in expected.items():
        assert as_indices(getattr(grid_result.critical, name), GRID) == want, name
        assert as_indices(getattr(bracket_result.critical, name), GRID) == want, name
    assert bracket_result.critical == grid_result.critical
    # every found threshold is bracketed by adjacent grid points
    for name in ("c_loss", "c_sharp", "c_barrier"):
        estimate, low, high = as_indices(getattr(bracket_result.critical, name), GRID)
        if estimate is not None and low is not None:
            assert high - low == 1


def test_grid_plan_scans_from_the_bottom_to_the_first_divergence():
    evaluate, calls = monotone_runner(5, 8, 9, 12)
    result = run_search(GridPlan(GRID), evaluate)
    assert calls == list(range(13))
    assert result.scanned == tuple(range(13))


def test_bracket_plan_evaluates_each_point_once_and_fewer_than_the_grid():
    evaluate, calls = monotone_runner(14, 20, 27, 38)
    result = run_search(BracketPlan(GRID, start=10, expand_step=8), evaluate)
    assert len(calls) == len(set(calls)) == len(result.order)
    assert len(calls) < 39 / 2
    assert result.critical.c_loss.estimate == pytest.approx(2**1.4)
    assert result.critical.c_max.low == pytest.approx(2**3.7)


def test_bracket_plan_is_a_function_of_the_evaluated_points():
    # resuming from any prefix of a search gives the same next request
    evaluate, calls = monotone_runner(14, 20, 27, 38)
    plan = BracketPlan(GRID, start=10, expand_step=8)
    run_search(plan, evaluate)
    order = list(calls)
    flags = {}
    for k in order:
        assert plan.next_index(dict(flags)) == k
        flags[k] = evaluate(k)
    assert plan.next_index(flags) is None


def test_points_above_the_first_divergence_do_not_count():
    # a sharpness catapult seen only in an overshoot point beyond the first divergence is ignored
    flags = {
        0: Flags(False, False, False, False),
        1: Flags(True, False, True, False),
        2: Flags(True, True, True, False),
    }
    result = search_result(GRID, (0, 2, 1), flags)
    assert result.critical.c_sharp.estimate is None
    assert result.critical.c_sharp.low == pytest.approx(GRID.c(1))
    assert result.scanned == (0, 1)


def test_flags_of_a_trajectory_use_the_core_definitions():
    loss = [1.0, 1.3, 0.4]
    sharp = [2.0, 1.9, 2.3]
    run = Trajectory.from_arrays(3.0, 1.5, loss, "mse", sharpness=sharp, barrier_loss=0.9)

    def core(flags):
        return (flags.loss_catapult, flags.sharpness_catapult, flags.diverged, flags.barrier)

    assert core(flags_of(run)) == (True, True, False, False)
    assert core(flags_of(run, epsilon=0.2)) == (True, False, False, False)
    no_barrier = Trajectory.from_arrays(3.0, 1.5, loss, "mse", sharpness=sharp)
    assert flags_of(no_barrier).barrier is None
    diverged = Trajectory.from_arrays(9.0, 4.5, [1.0, 1e9, math.nan], "mse", sharpness=[2.0, 5.0, math.nan])
    assert core(flags_of(diverged)) == (True, True, True, False)
    assert flags_of(diverged).loss_margin == math.inf


def test_grid_definition_matches_c_grid():
    grid = CGrid(-1.0, 2.05, 0.1)
    np.testing.assert_array_equal([grid.c(k) for k in range(grid.size)], c_grid(-1.0, 2.05, 0.1))
    assert grid.index_at_or_above(1.0) == 20
    assert grid.index_at_or_above(-5.0) == 0
    with pytest.raises(ValueError, match="x_max"):
        CGrid(2.0, 1.0)


def test_confirmation_catches_a_flag_that_flickers_off_just_above_its_threshold():
    # barrier on at 20, 21, off at 22, on from 23: the grid's c_barrier is at index 20
    def evaluate(k):
        return Flags(k >= 15, k >= 18, k >= 40, k in (20, 21) or 23 <= k < 40)

    grid = run_search(GridPlan(GRID), evaluate).critical.c_barrier
    plain = run_search(BracketPlan(GRID, start=10, expand_step=6, confirm=1), evaluate).critical.c_barrier
    confirmed = run_search(BracketPlan(GRID, start=10, expand_step=6, confirm=3), evaluate).critical.c_barrier
    assert grid.estimate == pytest.approx(GRID.c(20))
    assert plain.estimate == pytest.approx(GRID.c(23))  # plain bisection lands on the later switch
    assert confirmed == grid


def test_margins_guide_the_search_to_the_threshold_in_fewer_runs():
    plan = BracketPlan(GRID, start=10, expand_step=8)
    plain, plain_calls = monotone_runner(23, 27, None, 45)
    guided, guided_calls = monotone_runner(23, 27, None, 45, margin_power=1.0)
    assert run_search(plan, plain).critical == run_search(plan, guided).critical
    assert len(guided_calls) < len(plain_calls)


def test_flag_margins_follow_the_flags():
    run = Trajectory.from_arrays(3.0, 1.5, [1.0, 1.3, 0.4], "mse", sharpness=[2.0, 1.9, 2.3], barrier_loss=0.9)
    flags = flags_of(run, epsilon=0.1)
    assert flags.loss_margin == pytest.approx(math.log(1.3))
    assert flags.sharpness_margin == pytest.approx(math.log(2.3 / 2.0) - math.log(1.1))
    assert (flags.loss_margin > 0) == flags.loss_catapult and (flags.sharpness_margin > 0) == flags.sharpness_catapult


def test_flag_margins_of_a_peak_at_zero_or_below_come_without_a_warning():
    to_zero = Trajectory.from_arrays(3.0, 1.5, [1.0, 0.0, 0.0], "mse", sharpness=[2.0, 0.0, -0.5])
    negative = Trajectory.from_arrays(3.0, 1.5, [1.0, 0.5, 0.2], "mse", sharpness=[2.0, -0.1, -0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zero_flags, negative_flags = flags_of(to_zero), flags_of(negative)
    assert zero_flags.loss_margin == -math.inf and zero_flags.sharpness_margin == -math.inf
    assert math.isnan(negative_flags.sharpness_margin)
