"""The saturation step and the clock spread on curve families built to follow a known clock.

r_c(t) = f(c t) with f(x) = a + (1 - a) exp(-x / s) falls monotonically to a, so the window
[t, 2t] is flat within a tolerance q exactly when h(ct) = 1 - f(2ct) / f(ct) <= q. h rises from 0
above q and then falls through q once, at K* (the root beyond s, found by bisection independently
of the code): the windows before the rise are flat but come before any moving window, so
tau_c = ceil(K* / c), i.e. K* <= c tau_c < K* + c.
"""

import math

import numpy as np
import pandas as pd
import pytest

from earlyphase.compare.saturation_clock import (
    EXPONENTS,
    curve_spread,
    exponent_spread,
    log_time_median,
    saturation_clock,
    saturation_step,
)
from earlyphase.compare.saturation_clock_figure import saturation_clock_figure
from earlyphase.compare.style import save_figure

A, S, Q = 0.3, 20.0, 0.05


def f(x):
    return A + (1.0 - A) * np.exp(-np.asarray(x, dtype=float) / S)


def k_star():
    def h(x):
        return 1.0 - f(2 * x) / f(x) - Q

    low, high = 1e-6, 1e4
    assert h(low) < 0 < h(S) and h(high) < 0  # h - q rises through 0, then falls through 0 once
    low = S
    for _ in range(200):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if h(middle) > 0 else (low, middle)
    return high


@pytest.mark.parametrize("c", [0.5, 1.0, 2.0, 4.0, 8.0])
def test_saturation_step_of_a_function_of_ct(c):
    t = np.arange(0, math.ceil(2000 / c) + 1, dtype=float)
    tau = saturation_step(t, f(c * t), tolerance=Q)
    assert k_star() <= c * tau < k_star() + c


def test_saturation_step_is_none_while_still_moving():
    t = np.arange(0, 101, dtype=float)
    assert saturation_step(t, np.exp(-t / 5.0), tolerance=Q) is None


def test_saturation_step_is_none_when_the_sharpness_never_moves():
    t = np.arange(0, 101, dtype=float)
    assert saturation_step(t, 1.0 - 0.01 * (1.0 - np.exp(-t / 5.0)), tolerance=Q) is None


def test_a_transient_before_the_first_measurement_counts_as_moved():
    t = np.array([0.0, 4.0, 8.0, 12.0, 16.0, 20.0, 24.0])
    ratio = np.array([1.0, 0.42, 0.40, 0.39, 0.385, 0.38, 0.38])  # fell within the first 4 steps, then flat
    assert saturation_step(t, ratio, tolerance=0.1) == 4
    assert saturation_step(t[1:], ratio[1:], tolerance=0.1) is None  # without t = 0 nothing is seen to move


def test_saturation_step_reads_only_measured_steps():
    t = np.arange(0, 401, dtype=float)
    sparse = np.where(t % 4 == 0, f(t), np.nan)
    tau = saturation_step(t, sparse, tolerance=Q)
    assert tau % 4 == 0 and k_star() <= tau < k_star() + 4


def test_spread_is_zero_on_the_collapsing_clock_and_positive_on_the_other():
    k_max = 400.0
    curves = {c: np.arange(0.0, k_max / c + 1) for c in (1.0, 2.0, 4.0, 8.0)}
    in_ct = [(c * t, np.exp(-c * t / 50.0)) for c, t in curves.items()]  # log r linear in ct: exact interpolation
    in_t = [(t, np.exp(-c * t / 50.0)) for c, t in curves.items()]
    assert curve_spread(in_ct) == pytest.approx(0.0, abs=1e-12)
    assert curve_spread(in_t) > 0.1


@pytest.mark.parametrize(("true_exponent", "others"), [(1.0, (0.0, 0.5, 1.5, 2.0)), (0.0, (0.5, 1.0, 2.0))])
def test_exponent_scan_finds_the_clock_of_the_family(true_exponent, others):
    curves = []
    for c in (1.0, 2.0, 4.0, 8.0):
        t = np.arange(0.0, math.ceil(400 / c) + 1)
        curves.append((c, t, f(c**true_exponent * t)))
    scan = exponent_spread(curves, (true_exponent, *others)).set_index("exponent")["spread"]
    assert scan[true_exponent] < 0.01 < scan.drop(true_exponent).min()


def test_log_time_median_removes_an_outlier_and_keeps_a_monotone_curve():
    t = np.arange(0.0, 201.0)
    smooth = f(t)
    assert np.array_equal(log_time_median(t, smooth, 1.0), smooth)
    assert np.allclose(log_time_median(t, smooth, 1.2)[1:], smooth[1:], rtol=0.05)
    spiked = smooth.copy()
    spiked[100] *= 3.0
    assert log_time_median(t, spiked, 1.2)[100] == pytest.approx(smooth[100], rel=0.02)
    with pytest.raises(ValueError, match="smooth_factor must be >= 1"):
        log_time_median(t, smooth, 0.5)


def test_smoothed_saturation_step_keeps_c_tau_constant_within_the_spacing():
    c_tau = []
    for c in (0.5, 1.0, 2.0, 4.0):
        t = np.arange(0, math.ceil(2000 / c) + 1, dtype=float)
        c_tau.append(c * saturation_step(t, f(c * t), tolerance=Q, smooth_factor=2**0.25))
    assert max(c_tau) - min(c_tau) <= 4.0  # the widest spacing of measured c t
    assert abs(c_tau[0] - k_star()) <= 0.25 * k_star()  # the median in log time moves tau only a little


def test_spread_of_two_constant_curves_is_half_their_log_gap():
    u = np.arange(1.0, 11.0)
    assert curve_spread([(u, np.ones_like(u)), (u, np.full_like(u, math.e**2))]) == pytest.approx(1.0)


def test_spread_needs_a_common_range():
    with pytest.raises(ValueError, match="no common range"):
        curve_spread([(np.array([1.0, 2.0]), np.ones(2)), (np.array([3.0, 4.0]), np.ones(2))])


def family_table(c_values, catapult_c=()):
    """A trajectory table with sharpness lambda_0 f(c t), lambda_0 = 7, run to c t = 2000."""
    frames = []
    for c in c_values:
        t = np.arange(0, math.ceil(2000 / c) + 1)
        loss = np.linspace(1.0, 0.5, t.size)
        if c in catapult_c:
            loss[1] = 2.0
        frames.append(
            pd.DataFrame(
                {
                    "depth": 8,
                    "width": 32,
                    "d_over_w": 0.25,
                    "c": c,
                    "eta": c / 7.0,
                    "seed_init": 0,
                    "seed_sgd": 0,
                    "step": t,
                    "loss": loss,
                    "sharpness": 7.0 * f(c * t),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_table_of_a_ct_family_gives_constant_c_tau(tmp_path):
    table = family_table((1.0, 2.0, 4.0, 8.0, 16.0), catapult_c=(16.0,))
    per_run, per_network, scans = saturation_clock(table, tolerance=Q)
    assert per_run["catapult"].tolist() == [False, False, False, False, True]
    calm = per_run[~per_run["catapult"]]
    assert ((calm["c_tau"] >= k_star()) & (calm["c_tau"] < k_star() + calm["c"])).all()
    network = per_network.iloc[0]
    assert network["runs"] == 4
    assert network["spread_ct"] < 0.01 < network["spread_t"]
    assert network["c_tau_cv"] < 0.05 < network["tau_cv"]
    assert network["best_exponent"] == 1.0 and len(scans) == len(EXPONENTS)
    path = save_figure(saturation_clock_figure(table, per_run, per_network, scans, Q), tmp_path / "clock.png")
    assert path.stat().st_size > 10_000
