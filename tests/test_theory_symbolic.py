"""Sympy derivations of the uv model checked against the numeric model (docs/PROTOCOL.md section 5)."""

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from earlyphase.theory import symbolic
from earlyphase.theory.symbolic import delta, eta, f, lam, w, y
from earlyphase.theory.uv import uv_gd_step, uv_ntk, uv_output


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
