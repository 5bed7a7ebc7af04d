"""summarize_seeds: brackets over the same seeds as the mean, and a censored median over all seeds."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from earlyphase.core import Threshold, summarize_seeds


def test_brackets_come_from_the_seeds_where_the_threshold_was_found():
    # the inverted case of `predict --model linear --depth 6 --width 32`: a seed not found above the
    # scanned range has low = the top of the range, which the old mean of lows included
    thresholds = [
        Threshold("c_sharp", 2.0, 1.866, 2.0),
        Threshold("c_sharp", 2.639, 2.462, 2.639),
        Threshold("c_sharp", None, 64.0, None),  # not found: above the range
    ]
    summary = summarize_seeds(thresholds)
    assert summary.mean == pytest.approx((2.0 + 2.639) / 2)
    assert summary.low == pytest.approx((1.866 + 2.462) / 2)  # by hand: 2.164
    assert summary.high == pytest.approx((2.0 + 2.639) / 2)
    assert summary.low <= summary.mean <= summary.high
    assert (summary.found, summary.seeds) == (2, 3)
    # censored median over all three: [2.0, 2.639, +inf] -> 2.639
    assert summary.median == pytest.approx(2.639) and summary.median_bound is None


def test_a_found_seed_with_an_open_low_side_leaves_the_mean_bracket_open_below():
    summary = summarize_seeds([Threshold("c_loss", 1.0, None, 1.0), Threshold("c_loss", 2.0, 1.866, 2.0)])
    assert summary.low is None and summary.high == pytest.approx(1.5) and summary.mean == pytest.approx(1.5)


def test_censored_median_above_the_range_is_reported_as_a_bound():
    thresholds = [
        Threshold("c_loss", 3.0, 2.8, 3.0),
        Threshold("c_loss", None, 48.0, None),
        Threshold("c_loss", None, 64.0, None),
    ]
    summary = summarize_seeds(thresholds)
    assert summary.mean == 3.0 and summary.found == 1
    assert summary.median == math.inf
    # with each censored seed at the top of its scanned range: median of [3, 48, 64] = 48, so median > 48
    assert summary.median_bound == 48.0
    assert summary.describe_median() == "> 48"


def test_censored_median_below_the_range_and_even_counts():
    below = [
        Threshold("c_max", None, None, 1.0),
        Threshold("c_max", None, None, 1.0),
        Threshold("c_max", 4.0, 4.0, 4.3),
    ]
    summary = summarize_seeds(below)
    assert summary.median == -math.inf and summary.median_bound == 1.0 and summary.describe_median() == "< 1"
    even = summarize_seeds([Threshold("c_max", 4.0, 4.0, 4.3), Threshold("c_max", 6.0, 6.0, 6.4)])
    assert even.median == 5.0 and even.describe_median() == "5"
    split = summarize_seeds([Threshold("c_max", None, None, 1.0), Threshold("c_max", None, 64.0, None)])
    assert split.median is None  # -inf and +inf: no median
    unmeasured = summarize_seeds([Threshold("c_barrier", None, None, None)])
    assert unmeasured.median is None and unmeasured.seeds == 1


@given(
    st.lists(
        st.one_of(
            st.floats(1.0, 60.0).map(lambda c: Threshold("c_loss", c, c / 1.07, c)),
            st.floats(1.0, 60.0).map(lambda c: Threshold("c_max", c, c, c * 1.07)),
            st.just(Threshold("c_loss", None, 64.0, None)),
            st.just(Threshold("c_loss", 1.0, None, 1.0)),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_bracket_always_holds_the_mean(thresholds):
    summary = summarize_seeds(thresholds)
    if summary.mean is None:
        return
    assert summary.low is None or summary.low <= summary.mean + 1e-12
    assert summary.high is None or summary.mean <= summary.high + 1e-12
    finite = sorted(t.estimate if t.found else math.inf for t in thresholds)
    assert summary.median == pytest.approx(float(np.median(finite))) or (
        summary.median is None and math.isnan(np.median(finite))
    )
