"""Invariants of the uv model and of its critical values (docs/PROTOCOL.md sections 3 and 5).

- Delta = |u|^2 - |v|^2 obeys Delta_{t+1} = (1 - eta^2 g_t^2 / w) Delta_t at every step of
  parameter-space GD (oracle: the closed law, checked step by step over many steps).
- Scale invariance: multiplying the loss by alpha > 0 leaves every critical value unchanged
  (eta = c / lambda_H0: the GD path theta_t is the same, L_t / L_0 and lambda_t / lambda_0 too).
  The loss is scaled inside the uv model itself: u and v padded with (m - 1) w zeros have width
  W = m w and f_W = v.u / sqrt(W) = f / sqrt(m); with the target y / sqrt(m) the loss is
  L_W = (f - y)^2 / (2 m) = alpha L, alpha = 1/m, as a function of the unpadded entries, and the
  padded entries stay exactly zero (their gradient is g v_pad / sqrt(W) = 0). The Hessian gains
  +-alpha g / sqrt(w) on the padding, eigenvalues alpha H already has for w >= 2, so
  lambda_H0 -> alpha lambda_H0 exactly. L_max is a loss too: it scales with alpha.
- c_loss <= the first divergent c whenever a divergence is found (a divergent run is a loss
  catapult), and c_loss <= c_max, a catapult window below the divergence, at widths >= 32. At
  small widths the uv model can diverge without a window (T = 20, 40 seeds, y in {0, 0.5, -1}:
  c_loss > c_max for 30/120 runs at w = 2, 2/120 at w = 8, 1/120 at w = 16, none at w >= 24).
- A finer grid (x_step 0.1, holding every point of the x_step 0.2 grid) puts each threshold
  inside the coarse grid's bracket. Assumption: the flags are monotone in c. It is read off the
  fine grid's flags (``non_monotone``): a seed whose runs train again above a divergence (seen at
  small widths) is left out, and so is a threshold whose flag switches back.
"""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from earlyphase.core import CRITICAL_NAMES, DEFAULT_LOSS_MAX, non_monotone
from earlyphase.core.critical import divergence_flag, loss_catapult_flag, sharpness_catapult_flag
from earlyphase.core.search import CGrid, GridPlan
from earlyphase.theory.predict import predict_critical_values
from earlyphase.theory.protocol import Sweep, scan_grid
from earlyphase.theory.uv import uv_gd_step, uv_init, uv_ntk, uv_output, uv_sharpness, uv_trajectories

GRID = CGrid(0.0, 3.0)
"""c = 1 .. 8: holds c_loss (about 2) and c_max (about 4) of the uv model."""


@settings(max_examples=25, deadline=None)
@given(
    width=st.integers(1, 200),
    seed=st.integers(0, 2**16),
    c=st.floats(0.1, 3.9),
    y=st.floats(-2.0, 2.0),
)
def test_delta_law_holds_at_every_step(width, seed, c, y):
    u, v = uv_init(width, [seed])
    u, v = u[0], v[0]
    eta = c / float(uv_sharpness(uv_output(u, v), uv_ntk(u, v), y, width))
    steps = 0
    for _ in range(200):
        g = float(uv_output(u, v)) - y
        delta = u @ u - v @ v
        scale = u @ u + v @ v
        if not np.isfinite(scale) or scale > 1e12:
            break
        u, v = uv_gd_step(u, v, eta, y)
        expected = (1 - eta**2 * g**2 / width) * delta
        # each side is a difference of sums of w squares of size ~ scale: rounding ~ 1e-15 scale
        assert abs((u @ u - v @ v) - expected) <= 1e-12 * max(scale, u @ u + v @ v), steps
        steps += 1
    assert steps >= 1  # up to 200 steps; a run that diverges is checked until |u|^2 + |v|^2 > 1e12


def uv_sweep(u: np.ndarray, v: np.ndarray, y: float, steps: int, loss_max: float) -> Sweep:
    """Every seed (rows of u, v) at every c of GRID, eta = c / lambda_H0 of that seed."""
    width = u.shape[-1]
    lambda0 = uv_sharpness(uv_output(u, v), uv_ntk(u, v), y, width)
    runs = uv_trajectories(u[:, None, :], v[:, None, :], GRID.values[None, :] / lambda0[:, None], steps, y, loss_max)
    unmeasured = np.full(runs.loss.shape, np.nan)
    return Sweep(GRID.values, runs.loss, runs.sharpness, unmeasured, unmeasured, runs.ntk, runs.barrier)


def thresholds(sweep: Sweep, loss_max: float) -> tuple:
    """Each seed's critical values: its reference walk over the runs of ``sweep`` (every c of GRID)."""
    return scan_grid(lambda c: sweep, [GridPlan(GRID)] * sweep.seeds, GRID.size, loss_max=loss_max).critical


def padded(a: np.ndarray, factor: int) -> np.ndarray:
    return np.concatenate([a, np.zeros((*a.shape[:-1], (factor - 1) * a.shape[-1]))], axis=-1)


@settings(max_examples=15, deadline=None)
@given(
    width=st.integers(2, 64),
    first_seed=st.integers(0, 2**16),
    factor=st.integers(2, 9),
    y=st.floats(-1.0, 1.0),
)
def test_scaling_the_loss_leaves_every_critical_value_unchanged(width, first_seed, factor, y):
    u, v = uv_init(width, list(range(first_seed, first_seed + 4)))
    alpha = 1.0 / factor
    base = uv_sweep(u, v, y, 12, DEFAULT_LOSS_MAX)
    scaled = uv_sweep(padded(u, factor), padded(v, factor), y * np.sqrt(alpha), 12, alpha * DEFAULT_LOSS_MAX)
    np.testing.assert_allclose(scaled.loss[:, :, 0], alpha * base.loss[:, :, 0], rtol=1e-12)
    np.testing.assert_allclose(scaled.sharpness[:, :, 0], alpha * base.sharpness[:, :, 0], rtol=1e-12)
    assert thresholds(scaled, alpha * DEFAULT_LOSS_MAX) == thresholds(base, DEFAULT_LOSS_MAX)
    # the flags themselves, not only the thresholds they give
    for flag in (loss_catapult_flag, divergence_flag):
        np.testing.assert_array_equal(flag(scaled.loss, alpha * DEFAULT_LOSS_MAX), flag(base.loss))
    np.testing.assert_array_equal(sharpness_catapult_flag(scaled.sharpness), sharpness_catapult_flag(base.sharpness))


@settings(max_examples=15, deadline=None)
@given(width=st.integers(1, 256), first_seed=st.integers(0, 2**16), y=st.floats(-1.0, 1.0))
def test_c_loss_at_most_the_first_divergence_and_c_max_above_a_catapult_window(width, first_seed, y):
    u, v = uv_init(width, list(range(first_seed, first_seed + 4)))
    critical = thresholds(uv_sweep(u, v, y, 20, DEFAULT_LOSS_MAX), DEFAULT_LOSS_MAX)
    for cv in critical:
        if cv.c_max.high is not None:  # a divergence was found: it is a loss catapult
            assert cv.c_loss.found and cv.c_loss.estimate <= cv.c_max.high, cv
        if cv.c_max.found and width >= 32:  # wide enough for a catapult window below the divergence
            assert cv.c_loss.estimate <= cv.c_max.estimate, cv


def _bracket_holds(name: str, fine, coarse) -> bool:
    """The fine grid's threshold lies in the coarse bracket: (low, high] for the first flagged c,
    [low, high) for c_max (the last c below the first divergence); an open side is unbounded."""
    if fine.estimate is None:
        return coarse.estimate is None
    low = -np.inf if coarse.low is None else coarse.low
    high = np.inf if coarse.high is None else coarse.high
    return low <= fine.estimate < high if name == "c_max" else low < fine.estimate <= high


@settings(max_examples=10, deadline=None)
@given(width=st.integers(8, 256), first_seed=st.integers(0, 2**16), steps=st.integers(5, 30))
def test_a_finer_grid_puts_each_threshold_inside_the_coarse_bracket(width, first_seed, steps):
    options = dict(seeds=4, first_seed=first_seed, steps=steps, x_max=4.0)
    fine = predict_critical_values("uv", 2, width, x_step=0.1, **options)
    coarse = predict_critical_values("uv", 2, width, x_step=0.2, **options)
    # nested grids, 2**(0.2 k) = 2**(0.1 (2k)) exactly, each scanned up to its own first divergence
    top = min(max(fine.sweep.c), max(coarse.sweep.c))
    assert {c for c in coarse.sweep.c if c <= top} <= set(fine.sweep.c)
    loss_up = loss_catapult_flag(fine.sweep.loss)
    sharp_up = sharpness_catapult_flag(fine.sweep.sharpness)
    diverged = divergence_flag(fine.sweep.loss)
    checked = 0
    for s in range(fine.sweep.seeds):
        switching_back = non_monotone(fine.sweep.c, loss_up[s], sharp_up[s], diverged[s])
        if "c_max" in switching_back:  # trains again above a divergence: the scanned ranges may differ
            continue
        for name in CRITICAL_NAMES[:3]:
            if name not in switching_back:
                assert _bracket_holds(name, getattr(fine.critical[s], name), getattr(coarse.critical[s], name)), name
                checked += 1
    assert checked >= 2  # at least one seed with monotone divergence and loss flags
