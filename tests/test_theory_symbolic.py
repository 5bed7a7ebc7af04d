"""Sympy derivations of the uv model checked against the numeric model (docs/PROTOCOL.md section 5)."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from earlyphase.theory import symbolic
from earlyphase.theory.calibrated import calibrate_uv, uv_sharpness_rate
from earlyphase.theory.symbolic import delta, eta, f, lam, w, y
from earlyphase.theory.uv import uv_gd_step, uv_ntk, uv_output, uv_sharpness


@pytest.fixture(scope="module")
def derived():
    return symbolic.derive_uv_map()


def test_derived_map_is_the_stated_closed_map(derived):
    """The map derived from the parameter update equals the formulas of docs/PROTOCOL.md section 5, symbolically."""
    g = f - y
    assert sp.simplify(derived.f_next - (f - eta * lam * g + eta**2 / w * f * g**2)) == 0
    assert sp.simplify(derived.lam_next - (lam + eta * g / w * (eta * lam * g - 4 * f))) == 0
    assert sp.simplify(derived.delta_next - (1 - eta**2 * g**2 / w) * delta) == 0


@settings(max_examples=30, deadline=None)
@given(width=st.integers(1, 40), seed=st.integers(0, 1000), step=st.floats(1e-3, 1.5), target=st.floats(-2, 2))
def test_derived_map_matches_parameter_gd(derived, width, seed, step, target):
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal((2, width))
    at = {f: uv_output(u, v), lam: uv_ntk(u, v), delta: u @ u - v @ v, eta: step, y: target, w: width}
    u_next, v_next = uv_gd_step(u, v, step, target)
    assert float(derived.f_next.subs(at)) == pytest.approx(uv_output(u_next, v_next), rel=1e-9, abs=1e-9)
    assert float(derived.lam_next.subs(at)) == pytest.approx(uv_ntk(u_next, v_next), rel=1e-9)
    assert float(derived.delta_next.subs(at)) == pytest.approx(u_next @ u_next - v_next @ v_next, rel=1e-9, abs=1e-9)


def test_thresholds_for_zero_target():
    assert symbolic.uv_thresholds_y0() == {"c_loss": 2, "c_max": 4}


def test_first_step_sharpness_change_and_its_sign():
    leading = symbolic.first_step_sharpness_change()
    assert sp.simplify(leading - (-4 * eta * f * (f - y) / w)) == 0
    assert symbolic.first_step_sharpness_sign(1.0, 0.0) == -1  # f and f - y of the same sign
    assert symbolic.first_step_sharpness_sign(0.5, 1.0) == 1  # opposite signs
    assert symbolic.first_step_sharpness_sign(0.0, 1.0) == 0


@pytest.mark.parametrize("target", [0.0, -0.5, 2.5])
def test_sign_predicts_the_measured_ntk_change(target):
    """One small GD step on the parameters moves lambda = |grad f|^2 with sign -f (f - y)."""
    rng = np.random.default_rng(1)
    width, step = 4096, 1e-3
    signs = set()
    for _ in range(6):
        u, v = rng.standard_normal((2, width))
        u2, v2 = uv_gd_step(u, v, step, target)
        sign = symbolic.first_step_sharpness_sign(float(uv_output(u, v)), target)
        assert np.sign(uv_ntk(u2, v2) - uv_ntk(u, v)) == sign
        signs.add(sign)
    assert signs == ({-1} if target == 0 else {-1, 1})  # both signs occur when y != 0


@pytest.fixture(scope="module")
def calibration():
    return symbolic.derive_uv_calibration()  # raises ArithmeticError if its own checks fail


def test_derived_calibration_is_the_stated_one(calibration):
    """The formulas of earlyphase.theory.calibrated's docstring, symbolically."""
    g, lam_h, kappa, u = f - y, symbolic.lam_h, symbolic.kappa, symbolic.inverse_width
    area = g**2 + 2 * f * g
    assert calibration.output_scale == 1 / sp.sqrt(symbolic.n)
    assert calibration.ntk == symbolic.theta_top / symbolic.n
    assert sp.cancel(calibration.width_ntk - (-4 * f * g / kappa)) == 0
    assert sp.expand(calibration.sharpness_polynomial - (lam_h**2 - lam * lam_h - area / w)) == 0
    stated_rate = -(g / w) * (4 * f * lam_h + lam * (4 * g + 2 * f)) / (2 * lam_h - lam)
    assert sp.cancel(calibration.sharpness_rate - stated_rate) == 0
    stated = (g * (4 * g + 2 * f) * area, -(kappa * area + g * (6 * f + 4 * g) * lam_h**2), -kappa * lam_h**2)
    for derived_coefficient, stated_coefficient in zip(calibration.width_hessian, stated):
        assert sp.expand(derived_coefficient - stated_coefficient) == 0
    assert sp.cancel(calibration.ntk_from_hessian - (lam_h - area * u / lam_h)) == 0


@settings(max_examples=30, deadline=None)
@given(width=st.integers(2, 200), seed=st.integers(0, 1000), target=st.floats(-2, 2))
def test_derived_calibration_gives_back_the_uv_width_numerically(calibration, width, seed, target):
    """The derived rate and quadratic at a uv initialisation: the numeric module's rate, and a
    root at u = 1 / w."""
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal((2, width))
    at = {f: uv_output(u, v), lam: uv_ntk(u, v), y: target, w: width}
    sharp = float(uv_sharpness(at[f], at[lam], target, width))
    assume(sharp > abs(at[f] - target) / np.sqrt(width))  # the block's eigenvalue
    rate = float(calibration.sharpness_rate.subs({**at, symbolic.lam_h: sharp}))
    assert rate == pytest.approx(float(uv_sharpness_rate(at[f], at[lam], target, width)), rel=1e-9, abs=1e-12)
    a, b, c = (
        float(coefficient.subs({f: at[f], y: target, symbolic.lam_h: sharp, symbolic.kappa: rate}))
        for coefficient in calibration.width_hessian
    )
    assert a / width**2 + b / width + c == pytest.approx(0.0, abs=1e-9 * (abs(a) / width**2 + abs(b) / width + abs(c)))
    own = calibrate_uv(at[f], at[f] - target, sharp, rate, ntk_lambda0=at[lam])
    assert own.width == pytest.approx(width, rel=1e-9)
