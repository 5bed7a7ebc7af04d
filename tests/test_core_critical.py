"""Critical-value extraction on hand-made trajectories (docs/PROTOCOL.md section 3)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from earlyphase.core import (
    Phase,
    Threshold,
    barrier_flag,
    c_grid,
    classify,
    critical_values,
    divergence_flag,
    loss_catapult_flag,
    non_monotone,
    sharpness_catapult_flag,
    summarize_seeds,
)

C = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])


def test_flags_follow_definitions():
    losses = np.array(
        [
            [1.0, 0.9, 0.8],  # monotone
            [1.0, 1.2, 0.5],  # catapult
            [1.0, 1e6, np.inf],  # diverged
            [1.0, np.nan, np.nan],  # diverged (non-finite)
        ]
    )
    assert loss_catapult_flag(losses).tolist() == [False, True, True, True]
    assert divergence_flag(losses).tolist() == [False, False, True, True]
    assert divergence_flag(losses, loss_max=1e7).tolist() == [False, False, True, True]
    sharp = np.array([[2.0, 2.0, 1.9], [2.0, 2.1, 1.0], [2.0, np.nan, np.nan]])
    assert sharpness_catapult_flag(sharp).tolist() == [False, True, False]
    assert sharpness_catapult_flag(sharp, epsilon=0.1).tolist() == [False, False, False]
    assert barrier_flag(np.array([[1.0, 0.5, 0.2], [1.0, 1.5, 0.2]]), [1.0, 1.0]).tolist() == [False, True]


def test_ordered_thresholds_and_brackets():
    result = critical_values(
        C,
        loss_catapult=[False, False, True, True, True, True],
        sharpness_catapult=[False, False, False, True, True, True],
        diverged=[False, False, False, False, False, True],
        barrier=[False, False, False, False, True, True],
    )
    assert result.c_loss == Threshold("c_loss", 3.0, 2.0, 3.0)
    assert result.c_sharp == Threshold("c_sharp", 4.0, 3.0, 4.0)
    assert result.c_max == Threshold("c_max", 5.0, 5.0, 6.0)
    assert result.c_barrier == Threshold("c_barrier", 5.0, 4.0, 5.0)


def test_non_monotone_flags_use_the_smallest_c():
    # A rise then a fall in c: the threshold is the first c where the condition holds.
    result = critical_values(
        C,
        loss_catapult=[False, True, False, False, True, True],
        sharpness_catapult=[False, False, True, False, False, True],
        diverged=[False, False, False, True, False, True],
    )
    assert result.c_loss.estimate == 2.0 and result.c_loss.low == 1.0
    assert result.c_sharp.estimate == 3.0
    # c_max: the last c before the FIRST divergence, even if a larger c trains again.
    assert result.c_max == Threshold("c_max", 3.0, 3.0, 4.0)


def test_runs_above_the_first_divergence_do_not_count():
    # c = 5 trains again above the divergence at c = 4, with a sharpness rise and a barrier:
    # the scan ends at c = 4, so c_sharp and c_barrier stay unfound with the bracket's top at 4.
    result = critical_values(
        C,
        loss_catapult=[False, True, True, True, True, True],
        sharpness_catapult=[False, False, False, False, True, True],
        diverged=[False, False, False, True, False, True],
        barrier=[False, False, False, False, True, True],
    )
    assert result.c_max == Threshold("c_max", 3.0, 3.0, 4.0)
    assert result.c_sharp == Threshold("c_sharp", None, 4.0, None)
    assert result.c_barrier == Threshold("c_barrier", 3.0, 3.0, 4.0)  # none trainable had one: c_max


def test_the_initial_loss_never_counts_as_divergence():
    # L_0 above L_max (a lowered bound) is the start, not a divergence (the window is t = 1..T).
    assert divergence_flag(np.array([[2e5, 1e3, 10.0], [2e5, 3e5, 10.0]])).tolist() == [False, True]


def test_thresholds_outside_the_range_are_not_invented():
    result = critical_values(
        C,
        loss_catapult=[True] * 6,
        sharpness_catapult=[False] * 6,
        diverged=[False] * 6,
        barrier=[False] * 6,
    )
    assert result.c_loss.found and result.c_loss.low is None  # open bracket below
    assert not result.c_sharp.found and result.c_sharp.low == 6.0 and result.c_sharp.high is None
    assert not result.c_max.found and result.c_max.low == 6.0
    assert not result.c_barrier.found
    assert "above the scanned range" in result.c_sharp.describe()


def test_barrier_defaults_to_c_max_when_no_trainable_run_has_one():
    result = critical_values(
        C,
        loss_catapult=[False, True, True, True, True, True],
        sharpness_catapult=[False] * 6,
        diverged=[False, False, False, True, True, True],
        barrier=[False, False, False, True, True, True],  # only divergent runs have barriers
    )
    assert result.c_barrier == result.c_max.__class__("c_barrier", 3.0, 3.0, 4.0)


def test_first_c_divergent_gives_open_bracket():
    result = critical_values(C, [True] * 6, [True] * 6, [True] * 6, [True] * 6)
    assert not result.c_max.found and result.c_max.high == 1.0 and result.c_max.low is None
    assert not result.c_barrier.found


def test_bad_shapes_rejected():
    with pytest.raises(ValueError, match="equal length"):
        critical_values(C, [True], [True] * 6, [True] * 6)
    with pytest.raises(ValueError, match="distinct"):
        critical_values([1.0, 1.0], [True, True], [True, True], [False, False])


def reference_thresholds(c, loss, sharp, diverged, barrier):
    """The definitions of docs/PROTOCOL.md section 3 as plain loops over runs sorted by c:
    {name: (estimate, low, high)}. The scan ends at the first divergent c: included for c_loss and
    c_sharp, excluded for c_barrier (the smallest TRAINABLE c with a barrier, else c_max)."""
    runs = sorted(zip(c, loss, sharp, diverged, barrier))
    first_divergent = next((k for k, run in enumerate(runs) if run[3]), None)
    scan = runs if first_divergent is None else runs[: first_divergent + 1]

    def first_flagged(points, flag):
        for k, run in enumerate(points):
            if run[flag]:
                return (run[0], points[k - 1][0] if k else None, run[0])
        return (None, points[-1][0] if points else None, None)

    if first_divergent is None:
        c_max = (None, runs[-1][0], None)
    elif first_divergent == 0:
        c_max = (None, None, runs[0][0])
    else:
        c_max = (runs[first_divergent - 1][0], runs[first_divergent - 1][0], runs[first_divergent][0])
    trainable = runs if first_divergent is None else runs[:first_divergent]
    if not trainable:
        c_barrier = (None, None, runs[0][0])
    else:
        c_barrier = first_flagged(trainable, 4)
        if c_barrier[0] is None and c_max[0] is not None:
            c_barrier = c_max
    return {"c_loss": first_flagged(scan, 1), "c_sharp": first_flagged(scan, 2), "c_max": c_max, "c_barrier": c_barrier}


def run_flags(size):
    """Per-run flags of ``size`` runs: loss catapult, sharpness catapult, divergence, barrier (independent)."""
    return st.lists(st.tuples(*[st.booleans()] * 4), min_size=size, max_size=size)


@given(st.integers(1, 30).flatmap(run_flags))
def test_thresholds_equal_the_definitions_with_adjacent_brackets(flags):
    loss, sharp, diverged, barrier = (list(column) for column in zip(*flags))
    c = c_grid(0.0, 0.1 * (len(flags) - 1))
    assert c.size == len(flags)
    result = critical_values(c, loss, sharp, diverged, barrier)
    expected = reference_thresholds(c, loss, sharp, diverged, barrier)
    for name, (estimate, low, high) in expected.items():
        assert getattr(result, name) == Threshold(name, estimate, low, high), name
        if low is not None and high is not None:  # a closed bracket is two ADJACENT grid points
            assert np.log2(high) - np.log2(low) == pytest.approx(0.1, abs=1e-12)


@given(st.integers(1, 30).flatmap(run_flags), st.randoms(use_true_random=False))
def test_thresholds_do_not_depend_on_the_order_of_the_runs(flags, random):
    loss, sharp, diverged, barrier = (np.array(column) for column in zip(*flags))
    c = c_grid(0.0, 0.1 * (len(flags) - 1))
    order = np.array(random.sample(range(len(c)), len(c)))
    shuffled = critical_values(c[order], loss[order], sharp[order], diverged[order], barrier[order])
    expected = reference_thresholds(c, loss, sharp, diverged, barrier)
    assert shuffled == critical_values(c, loss, sharp, diverged, barrier)
    assert {
        name: (t.estimate, t.low, t.high)
        for name, t in zip(expected, (shuffled.c_loss, shuffled.c_sharp, shuffled.c_max, shuffled.c_barrier))
    } == expected


@given(
    st.lists(
        st.lists(st.one_of(st.floats(0.0, 10.0), st.sampled_from([np.nan, np.inf, 2e5])), min_size=3, max_size=6),
        min_size=1,
        max_size=12,
    )
)
def test_c_loss_never_above_the_first_divergence(tails):
    """On any loss trajectories (L_0 = 1; non-finite or > L_max values included): a divergent run is
    a loss catapult, so c_loss <= the first divergent c, and c_max < it."""
    steps = max(len(tail) for tail in tails)
    loss = np.array([[1.0, *tail, *[tail[-1]] * (steps - len(tail))] for tail in tails])
    c = c_grid(0.0, 0.1 * (len(tails) - 1))
    diverged = divergence_flag(loss)
    result = critical_values(c, loss_catapult_flag(loss), np.zeros(len(c), dtype=bool), diverged)
    if diverged.any():
        first = c[np.argmax(diverged)]
        assert result.c_loss.found and result.c_loss.estimate <= first and result.c_max.high == first
        assert result.c_max.estimate is None or result.c_max.estimate < first


def test_seed_summary():
    seeds = [
        Threshold("c_loss", 2.0, 1.9, 2.0),
        Threshold("c_loss", 4.0, 3.8, 4.0),
        Threshold("c_loss", None, 5.0, None),
    ]
    summary = summarize_seeds(seeds)
    assert summary.mean == 3.0 and summary.std == 1.0 and summary.found == 2 and summary.seeds == 3
    # the bracket over the same (found) seeds as the mean; the censored median over all: [2, 4, inf]
    assert summary.high == 3.0 and np.isclose(summary.low, (1.9 + 3.8) / 2) and summary.low <= summary.mean
    assert summary.median == 4.0


def test_c_grid():
    grid = c_grid(0.0, 1.0)
    assert grid.size == 11 and grid[0] == 1.0 and grid[-1] == 2.0
    assert np.allclose(np.diff(np.log2(grid)), 0.1)
    with pytest.raises(ValueError, match="x_max"):
        c_grid(1.0, 0.0)


@pytest.mark.parametrize(
    "loss, sharpness, phase",
    [
        ([1.0, 0.5, 0.2], [2.0, 2.0, 1.98], Phase.LAZY),
        ([1.0, 0.5, 0.2], [2.0, 1.5, 1.0], Phase.SHARPNESS_REDUCTION),
        ([1.0, 3.0, 0.2], [2.0, 1.5, 1.0], Phase.LOSS_CATAPULT),
        ([1.0, 3.0, 0.2], [2.0, 4.0, 1.0], Phase.LOSS_AND_SHARPNESS_CATAPULT),
        ([1.0, 0.9, 0.2], [2.0, 4.0, 1.0], Phase.SHARPNESS_CATAPULT),
        ([1.0, 3.0, np.inf], [2.0, 4.0, np.nan], Phase.DIVERGENT),
    ],
)
def test_phase_labels(loss, sharpness, phase):
    assert classify(loss, sharpness) is phase


def test_non_monotone_names_the_flags_that_switch_back():
    # monotone; the divergent run's sharpness flag (False: not finite) is no switch back
    assert (
        non_monotone(
            C,
            [False, True, True, True, True, True],
            [False, False, True, True, True, False],
            [False] * 5 + [True],
            [False, False, False, True, True, True],
        )
        == ()
    )
    names = non_monotone(
        C,
        loss_catapult=[False, True, False, True, True, True],  # rises at 2, not at 3
        sharpness_catapult=[False, False, True, False, True, False],  # rises at 3, not at 4
        diverged=[False, False, False, False, False, True],
        barrier=[False, True, None, False, False, True],  # True at 2, False at 4 (3 unmeasured)
    )
    assert names == ("c_loss", "c_sharp", "c_barrier")
    # c_max: a run trains above a divergent one; flags above the first divergence do not count
    names = non_monotone(
        C, [False, True, True, True, False, True], [False] * 6, [False, False, True, False, False, True]
    )
    assert names == ("c_max",)
