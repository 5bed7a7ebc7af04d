"""Regime detection on synthetic sharpness curves whose regime boundaries are known in closed form.

The curve (eta = 1, so 2/eta = 2): lambda falls linearly by 0.05 per step from 1 + 0.05 t1 at
t = 0 to 1 at t1; flat at 1 until s; rises as 1 + (t - s)/r until it reaches 2; then oscillates
2 +- 0.1 with period 2 (edge of stability). With the default rules (flat: within 5 % over 20
steps; rise: 3 % above the minimum after the transient, here 1; edge: lambda >= 0.98 * 2/eta):

  t_a = t1 - 1                  (lambda(t1 - 1) = 1.05 is the first value within 5 % of 1)
  t_b = floor(s + 0.03 r) + 1   (first step with 1 + (t - s)/r > 1.03)
  t_c = ceil(s + 0.96 r)        (first step with 1 + (t - s)/r >= 1.96)

r = 10 k + 3 keeps both crossings off integer steps.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from earlyphase.compare.regimes import detect_regimes


def synthetic_curve(t1: int, s: int, r: int, tail: int = 200) -> tuple[np.ndarray, np.ndarray]:
    end = s + r + tail
    t = np.arange(end + 1, dtype=float)
    transient = np.maximum(1.0 + 0.05 * (t1 - t), 1.0)
    rise = 1.0 + np.clip(t - s, 0.0, None) / r
    lam = np.where(t < s, transient, rise)
    edge = t > s + r
    lam[edge] = 2.0 + 0.1 * np.where(t[edge] % 2 == 0, 1.0, -1.0)
    return t, lam


def expected(t1: int, s: int, r: int) -> tuple[int, int, int]:
    return t1 - 1, math.floor(s + 0.03 * r) + 1, math.ceil(s + 0.96 * r)


@settings(max_examples=25, deadline=None)
@given(t1=st.integers(15, 60), gap=st.integers(30, 400), k=st.integers(10, 80))
def test_boundaries_of_a_dense_curve(t1, gap, k):
    s, r = t1 + gap, 10 * k + 3
    t, lam = synthetic_curve(t1, s, r)
    t_a, t_b, t_c = expected(t1, s, r)
    regimes = detect_regimes(t, lam, eta=1.0)
    assert regimes.early_transient == (0, t_a)
    assert regimes.intermediate_saturation == (t_a, t_b)
    assert regimes.progressive_sharpening == (t_b, t_c)
    assert regimes.edge_of_stability == (t_c, int(t[-1]) + 1)


@pytest.mark.parametrize("every", [5, 10])
def test_sparse_measurements_snap_to_the_next_measured_step(every):
    t1, s, r = 31, 257, 433
    t, lam = synthetic_curve(t1, s, r)
    sparse = np.where(t % every == 0, lam, np.nan)  # NaN where not measured, as in a Trajectory
    snapped = [every * math.ceil(b / every) for b in expected(t1, s, r)]
    regimes = detect_regimes(t, sparse, eta=1.0)
    assert [span[0] for _, span in regimes.items()][1:] == snapped
    assert regimes.early_transient == (0, snapped[0])


def test_noise_moves_boundaries_by_little():
    t1, s, r = 40, 340, 603
    t, lam = synthetic_curve(t1, s, r)
    noisy = lam * (1.0 + 0.01 * np.random.default_rng(3).standard_normal(lam.size))
    starts = [span[0] for _, span in detect_regimes(t, noisy, eta=1.0).items()][1:]
    for found, true in zip(starts, expected(t1, s, r)):
        assert abs(found - true) <= 0.03 * r


def test_missing_regimes_are_none():
    t = np.arange(500, dtype=float)
    flat = np.full(t.size, 1.0)
    regimes = detect_regimes(t, flat, eta=1.0)  # flat from the start, far below 2/eta = 2
    assert regimes.early_transient is None and regimes.progressive_sharpening is None
    assert regimes.intermediate_saturation == (0, 500) and regimes.edge_of_stability is None
    falling = 10.0 * 0.9**t  # never flat
    assert detect_regimes(t, falling, eta=1.0).early_transient == (0, 500)
    # sharpness already at the edge after the transient: no saturation, no sharpening
    at_edge = np.where(t < 10, 3.0, 1.99)
    regimes = detect_regimes(t, at_edge, eta=1.0)
    assert regimes.intermediate_saturation is None and regimes.progressive_sharpening is None
    assert regimes.edge_of_stability[0] == regimes.early_transient[1]
    assert "absent" in regimes.describe()


def test_bad_input():
    with pytest.raises(ValueError, match="eta"):
        detect_regimes([0, 1, 2], [1.0, 1.0, 1.0], eta=0.0)
    with pytest.raises(ValueError, match="two or more"):
        detect_regimes([0, 1, 2], [1.0, np.nan, np.nan], eta=1.0)
