"""The uv model calibrated at theta_0 (docs/PROTOCOL.md section 7): exact reduction to the uv model,
the sharpness rate against finite differences of the dense Hessian, scale invariance, the lazy limit."""

import functools
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from earlyphase.core.search import CGrid
from earlyphase.theory.calibrated import (
    UVCalibration,
    calibrate_uv,
    calibrated_prediction,
    calibrated_trajectories,
    uv_sharpness_rate,
)
from earlyphase.theory.ntk import linearized_trajectories
from earlyphase.theory.predict import predict_critical_values
from earlyphase.theory.uv import (
    uv_gd_step,
    uv_hessian,
    uv_init,
    uv_ntk,
    uv_output,
    uv_sharpness,
    uv_trajectories,
)

STEPS = 10
GRID = CGrid()
C_VALUES = np.array([GRID.c(k) for k in range(GRID.size)])


def _own_state(width: int, seed: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    u, v = uv_init(width, [seed])
    return u[0], v[0], float(uv_output(u, v)[0]), float(uv_ntk(u, v)[0])


def _rate_along_step(u, v, y, measure, h=1e-4):
    """d measure(theta_0 - eta grad L) / d eta at eta = 0: Richardson-extrapolated central differences."""

    def central(step):
        return (measure(*uv_gd_step(u, v, step, y)) - measure(*uv_gd_step(u, v, -step, y))) / (2 * step)

    return (4 * central(h / 2) - central(h)) / 3


def _dense_top(y):
    return lambda u, v: np.linalg.eigvalsh(uv_hessian(u, v, y))[-1]


@settings(max_examples=25, deadline=None)
@given(width=st.integers(2, 12), seed=st.integers(0, 10_000), y=st.floats(-2.0, 2.0))
def test_sharpness_rate_is_the_derivative_of_the_dense_hessians_top_eigenvalue(width, seed, y):
    u, v, f, lam = _own_state(width, seed)
    eigenvalues = np.linalg.eigvalsh(uv_hessian(u, v, y))
    assume(eigenvalues[-1] - eigenvalues[-2] > 1e-2)  # a simple top eigenvalue is differentiable
    assume(uv_sharpness(f, lam, y, width) > abs(f - y) / math.sqrt(width) + 1e-6)  # the block's eigenvalue
    measured = _rate_along_step(u, v, y, _dense_top(y))
    assert float(uv_sharpness_rate(f, lam, y, width)) == pytest.approx(measured, rel=1e-6, abs=1e-8)
    ntk_rate = _rate_along_step(u, v, y, lambda a, b: float(uv_ntk(a, b)))
    assert -4 * f * (f - y) / width == pytest.approx(ntk_rate, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("width", [4, 16, 64, 256])
@pytest.mark.parametrize("y", [0.0, 0.5])
@pytest.mark.parametrize("curvature", ["hessian", "ntk"])
def test_reduces_exactly_to_the_uv_model_on_its_own_initialisation(width, y, curvature):
    """kappa from finite differences of the uv model's dense Hessian (or NTK) along its GD step gives
    back its width; with the closed-form kappa the trajectories are the uv model's to rounding and
    the critical values are theory.predict's for the same seed."""
    for seed in range(3):
        u, v, f, lam = _own_state(width, seed)
        sharp = float(uv_sharpness(f, lam, y, width))
        if curvature == "hessian":
            measured = _rate_along_step(u, v, y, _dense_top(y))
            exact = float(uv_sharpness_rate(f, lam, y, width))
            calibrate = functools.partial(calibrate_uv, f, f - y, sharp, ntk_lambda0=lam)
        else:
            measured = _rate_along_step(u, v, y, lambda a, b: float(uv_ntk(a, b)))
            exact = -4 * f * (f - y) / width
            calibrate = functools.partial(calibrate_uv, f, f - y, lam, curvature="ntk")
        assert calibrate(measured).width == pytest.approx(width, rel=1e-6)
        calibration = calibrate(exact)
        assert calibration.width == pytest.approx(width, rel=1e-12)
        assert calibration.lambda0 == pytest.approx(lam, rel=1e-12)
        assert calibration.sharpness0 == pytest.approx(sharp, rel=1e-12)

        runs = calibrated_trajectories(calibration, C_VALUES, STEPS)
        reference = uv_trajectories(u[None, :], v[None, :], C_VALUES / sharp, STEPS, y)
        np.testing.assert_array_equal(np.isnan(runs.loss), np.isnan(reference.loss))
        np.testing.assert_allclose(runs.loss, reference.loss, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(runs.sharpness, reference.sharpness, rtol=1e-9, atol=1e-12)

        critical, cost = calibrated_prediction(calibration, steps=STEPS)
        expected = predict_critical_values("uv", width=width, seeds=1, first_seed=seed, target=y, steps=STEPS).critical[
            0
        ]
        for name in ("c_loss", "c_sharp", "c_max"):
            assert getattr(critical, name) == getattr(expected, name), name
        assert not critical.c_barrier.found
        assert (cost.hvps, cost.gradients, cost.forwards) == (0, 0, 0) and cost.seconds >= 0


@settings(max_examples=40, deadline=None)
@given(
    output=st.floats(-3.0, 3.0),
    residual=st.floats(-3.0, 3.0),
    lambda0=st.floats(0.1, 10.0),
    kappa=st.floats(-5.0, 5.0),
    scale=st.floats(0.05, 20.0),
    alpha=st.floats(0.05, 20.0),
    curvature=st.sampled_from(["hessian", "ntk"]),
)
def test_only_dimensionless_scales_matter(output, residual, lambda0, kappa, scale, alpha, curvature):
    """Outputs times s, sharpness times alpha and its rate times alpha^2 (eta = c / lambda_H0 keeps c):
    the width scales as s^2 / alpha^2, lambda w as s^2 / alpha, and the loss and sharpness RATIOS and
    the critical values (no divergence bound) are unchanged."""
    assume(abs(residual) > 1e-3)  # y = f - g stored: g ~ 1e-16 |f| would be rounding
    # subnormal scales (kappa ~ 1e-308, f ~ 1e-38) underflow when scaled: a float-range artefact
    assume(kappa == 0.0 or abs(kappa) > 1e-12)
    assume(output == 0.0 or abs(output) > 1e-12)
    base = calibrate_uv(output, residual, lambda0, kappa, curvature=curvature)
    scaled = calibrate_uv(scale * output, scale * residual, alpha * lambda0, alpha**2 * kappa, curvature=curvature)
    assert scaled.lazy == base.lazy
    if not base.lazy:
        assert scaled.width == pytest.approx(base.width * scale**2 / alpha**2, rel=1e-9)
    assert scaled.lambda0 == pytest.approx(alpha * base.lambda0, rel=1e-9)
    c = np.array([0.5, 1.0, 1.9, 2.5, 3.7, 5.0])
    one, two = (calibrated_trajectories(cal, c, 6, loss_max=math.inf) for cal in (base, scaled))
    finite = np.isfinite(one.loss_ratio) & (one.loss_ratio < 1e8)
    np.testing.assert_allclose(two.loss_ratio[finite], one.loss_ratio[finite], rtol=1e-6, atol=1e-12)
    finite = np.isfinite(one.sharpness_ratio) & (np.abs(one.sharpness_ratio) < 1e8)
    np.testing.assert_allclose(two.sharpness_ratio[finite], one.sharpness_ratio[finite], rtol=1e-6, atol=1e-9)
    grid = CGrid(0.05, 4.0)  # not c = 2, where a lazy model's g_1 = -g_0 is a tie broken by rounding
    # the divergence bound scales with the loss (x s^2): a bound of inf would leave divergence to the
    # float range, where the overflow step depends on the scale (hypothesis: s = 0.5, kappa = 5)
    bound = 1e6 * base.loss0
    assert (
        calibrated_prediction(base, grid, loss_max=bound)[0]
        == calibrated_prediction(scaled, grid, loss_max=bound * scale**2)[0]
    )


def test_lazy_limit_catapults_above_two_and_never_moves_the_sharpness():
    for kappa in (0.0, 1.0):  # no rate, or a rate of the sign no uv model has (f g > 0 needs kappa < 0)
        calibration = calibrate_uv(1.3, 0.8, 2.0, kappa, curvature="ntk")
        assert calibration.lazy and calibration.sharpness0 == 2.0
        critical, _ = calibrated_prediction(calibration)
        assert critical.c_loss.low == 2.0 and critical.c_loss.estimate == GRID.c(11)
        assert not critical.c_sharp.found
        runs = calibrated_trajectories(calibration, C_VALUES, STEPS)
        assert np.all(runs.sharpness_ratio[np.isfinite(runs.sharpness_ratio)] == 1.0)
        np.testing.assert_allclose(runs.loss[:5, 1], (1 - C_VALUES[:5]) ** 2 * runs.loss[:5, 0])
    assert calibrate_uv(0.0, 0.8, 2.0, -1.0, curvature="ntk").lazy  # p q = 0
    assert calibrate_uv(0.5, 0.0, 2.0, -1.0).lazy
    assert calibrate_uv(0.5, 0.3, 2.0, 0.0).lazy


@settings(max_examples=30, deadline=None)
@given(
    f0=st.floats(-3.0, 3.0),
    y=st.floats(-3.0, 3.0),
    lambda0=st.floats(0.2, 10.0),
    width=st.floats(1e6, 1e12),
)
def test_wide_models_are_lazy_below_two(f0, y, lambda0, width):
    """As w -> inf: the loss catapults at c = 2 or the grid point next to it (at 2 itself only by
    O(1/w) terms: |g_1 / g_0| = 1 - (2 g^2 + 8 f g) / (w lambda^2) + O(1/w^2) in the first step,
    and the O(1/w) drift of lambda in later steps, so the sign at c = 2 depends on the whole
    window), never below 2, and the sharpness moves by O(1/w) below c = 2."""
    g = f0 - y
    assume(abs(g) > 1e-2 and abs(g * (g + 4 * f0)) > 1e-2)
    calibration = UVCalibration(f0, y, lambda0, width)
    critical, _ = calibrated_prediction(calibration)
    if g * (g + 4 * f0) < 0:  # the first step already grows: the catapult starts at c = 2 itself
        assert critical.c_loss.estimate == 2.0
    else:
        assert critical.c_loss.estimate in (2.0, GRID.c(11))
    below = C_VALUES <= 2.0
    runs = calibrated_trajectories(calibration, C_VALUES[below], STEPS)
    bound = 200 * (g**2 + abs(g) * (abs(y) + abs(g))) / (lambda0**2 * width)
    assert np.max(np.abs(runs.sharpness_ratio - 1)) <= bound


def test_top_mode_units_reproduce_the_linearised_network():
    """A rank-one NTK theta e e^T over n entries: the lazy calibrated model with L_rest = L_0 - L_top
    is the linearised network's loss exactly (the modes off e do not move)."""
    rng = np.random.default_rng(3)
    entries, theta_top = 12, 30.0
    e = rng.standard_normal(entries)
    e /= np.linalg.norm(e)
    outputs, targets = rng.standard_normal(entries), rng.standard_normal(entries)
    residual = outputs - targets
    kernel = theta_top * np.outer(e, e)
    loss, sharpness = linearized_trajectories(kernel, residual, C_VALUES, STEPS)
    p, q = e @ outputs, e @ residual
    calibration = calibrate_uv(p, q, theta_top / entries, 0.0, entries=entries, curvature="ntk")
    assert calibration.loss0 == pytest.approx(q**2 / (2 * entries))
    runs = calibrated_trajectories(
        calibration, C_VALUES, STEPS, rest_loss=loss[0, 0] - calibration.loss0, loss_max=math.inf
    )
    np.testing.assert_allclose(runs.loss, loss, rtol=1e-10)
    np.testing.assert_allclose(runs.sharpness, sharpness, rtol=1e-12)
    same = calibrate_uv(p / math.sqrt(entries), q / math.sqrt(entries), theta_top / entries, 0.0, curvature="ntk")
    assert same == calibration


def test_the_rest_of_the_loss_shifts_the_ratio_not_the_thresholds():
    calibration = calibrate_uv(1.0, 1.0, 2.0, -0.05)
    plain = calibrated_trajectories(calibration, C_VALUES, STEPS)
    rest = calibrated_trajectories(calibration, C_VALUES, STEPS, rest_loss=0.7)
    alive = np.isfinite(rest.loss)
    np.testing.assert_allclose(rest.loss[alive] - 0.7, plain.loss[alive], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rest.loss_ratio[:, 3], (plain.loss[:, 3] + 0.7) / (plain.loss[:, 0] + 0.7))
    with_rest, without = calibrated_prediction(calibration, rest_loss=0.7)[0], calibrated_prediction(calibration)[0]
    assert with_rest.c_loss == without.c_loss and with_rest.c_sharp == without.c_sharp


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"entries": 0}, "entries"),
        ({"curvature": "gauss"}, "curvature"),
        ({"ntk_lambda0": -1.0}, "ntk_lambda0"),
    ],
)
def test_bad_input_names_the_parameter(arguments, message):
    with pytest.raises(ValueError, match=message):
        calibrate_uv(1.0, 0.5, 2.0, -0.1, **arguments)
    with pytest.raises(ValueError, match="lambda0"):
        calibrate_uv(1.0, 0.5, 0.0, -0.1)
    with pytest.raises(ValueError, match="kappa"):
        calibrate_uv(1.0, 0.5, 1.0, math.nan)
    with pytest.raises(ValueError, match="width"):
        UVCalibration(1.0, 0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="rest_loss"):
        calibrated_trajectories(UVCalibration(1.0, 0.0, 1.0, 10.0), [1.0], 3, rest_loss=-1.0)
