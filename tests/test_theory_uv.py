"""The uv model: closed map, |u|^2 - |v|^2 law, exact Hessian, and its phases (docs/PROTOCOL.md section 5)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from earlyphase.core import critical_values, divergence_flag, loss_catapult_flag, sharpness_catapult_flag
from earlyphase.theory.predict import predict_critical_values
from earlyphase.theory.uv import (
    uv_gd_step,
    uv_hessian,
    uv_init,
    uv_map_step,
    uv_ntk,
    uv_output,
    uv_sharpness,
    uv_trajectories,
)

GRID_STEP = 2**0.1


@settings(max_examples=60, deadline=None)
@given(
    width=st.integers(1, 64),
    seed=st.integers(0, 10_000),
    eta=st.floats(1e-3, 2.0),
    y=st.floats(-3.0, 3.0),
    scale=st.floats(0.1, 3.0),
)
def test_closed_map_equals_parameter_gd(width, seed, eta, y, scale):
    """(f, lambda, Delta) after one parameter-space GD step == the closed map, to 1e-10."""
    rng = np.random.default_rng(seed)
    u, v = scale * rng.standard_normal((2, width))
    f, lam, delta = uv_output(u, v), uv_ntk(u, v), u @ u - v @ v
    u_next, v_next = uv_gd_step(u, v, eta, y)
    f_map, lam_map, delta_map = uv_map_step(f, lam, delta, eta, y, width)
    scale_f = max(abs(f_map), abs(f), 1.0)
    assert abs(uv_output(u_next, v_next) - f_map) <= 1e-10 * scale_f
    assert uv_ntk(u_next, v_next) == pytest.approx(lam_map, rel=1e-10)
    assert abs((u_next @ u_next - v_next @ v_next) - delta_map) <= 1e-10 * max(abs(delta), u @ u + v @ v)


def test_difference_law_over_many_steps():
    """|u|^2 - |v|^2 is multiplied by (1 - eta^2 g^2 / w) at every step (so it is conserved as w -> inf)."""
    u, v = uv_init(32, [5])
    u, v = u[0], v[0]
    eta, y = 0.4, 0.7
    for _ in range(20):
        g = uv_output(u, v) - y
        expected = (1 - eta**2 * g**2 / 32) * (u @ u - v @ v)
        u, v = uv_gd_step(u, v, eta, y)
        assert u @ u - v @ v == pytest.approx(expected, rel=1e-10, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(width=st.integers(1, 24), seed=st.integers(0, 10_000), y=st.floats(-4.0, 4.0), scale=st.floats(0.05, 4.0))
def test_hessian_top_eigenvalue_matches_dense_eigh(width, seed, y, scale):
    rng = np.random.default_rng(seed)
    u, v = scale * rng.standard_normal((2, width))
    dense = np.linalg.eigvalsh(uv_hessian(u, v, y))[-1]
    closed = uv_sharpness(uv_output(u, v), uv_ntk(u, v), y, width)
    assert closed == pytest.approx(dense, rel=1e-10, abs=1e-12)


def test_hessian_is_the_second_derivative():
    """uv_hessian against central finite differences of the loss."""
    u, v = uv_init(5, [2])
    theta = np.concatenate([u[0], v[0]])
    y, h = 0.3, 1e-4

    def loss(t):
        return (uv_output(t[:5], t[5:]) - y) ** 2 / 2

    hessian = uv_hessian(u[0], v[0], y)
    basis = np.eye(10)
    for i in range(10):
        for j in range(10):
            fd = (
                loss(theta + h * basis[i] + h * basis[j])
                - loss(theta + h * basis[i] - h * basis[j])
                - loss(theta - h * basis[i] + h * basis[j])
                + loss(theta - h * basis[i] - h * basis[j])
            ) / (4 * h * h)
            assert hessian[i, j] == pytest.approx(fd, abs=1e-6)


@pytest.fixture(scope="module")
def wide_runs():
    """w = 512, 8 seeds, eta = c / lambda_H0 for c in (1.0, 1.5, 1.9, 2.5, 3.0, 3.7, 4.5, 6.0), 300 steps."""
    width, c = 512, np.array([1.0, 1.5, 1.9, 2.5, 3.0, 3.7, 4.5, 6.0])
    u, v = uv_init(width, list(range(8)))
    lambda0 = uv_sharpness(uv_output(u, v), uv_ntk(u, v), 0.0, width)
    eta = c[None, :] / lambda0[:, None]
    return c, eta, uv_trajectories(u[:, None], v[:, None], eta, steps=300)


def test_below_two_the_loss_never_rises(wide_runs):
    c, _, runs = wide_runs
    loss = runs.loss[:, c < 2]
    assert np.all(np.diff(loss, axis=-1) <= 1e-12 * loss[..., :1])


def test_between_two_and_four_catapult_then_converge_below_two_over_eta(wide_runs):
    c, eta, runs = wide_runs
    window = (c > 2) & (c < 4)
    loss, ntk = runs.loss[:, window], runs.ntk[:, window]
    assert np.all(loss_catapult_flag(loss[..., :11]))  # rises within the early window
    assert not np.any(divergence_flag(loss))
    assert np.all(loss[..., -1] < 1e-6 * loss[..., 0])  # then converges
    assert np.all(eta[:, window] * ntk[..., -1] < 2)  # in a flatter region: eta * lambda_final < 2
    assert np.all(ntk[..., -1] < ntk[..., 0])


def test_above_four_diverges(wide_runs):
    c, _, runs = wide_runs
    assert np.all(divergence_flag(runs.loss[:, c > 4]))


def test_predicted_thresholds_within_one_grid_step_of_two_and_four():
    prediction = predict_critical_values("uv", width=1024, seeds=16)
    for cv in prediction.critical:
        assert 2 / GRID_STEP <= cv.c_loss.estimate <= 2 * GRID_STEP
        assert 4 / GRID_STEP <= cv.c_max.estimate <= 4 * GRID_STEP
        assert cv.c_max.estimate >= cv.c_loss.estimate
    # the brackets straddle the exact thresholds
    assert prediction.summaries["c_loss"].low <= 2 <= prediction.summaries["c_loss"].high
    assert prediction.summaries["c_max"].low <= 4 <= prediction.summaries["c_max"].high


def test_prediction_uses_core_thresholds_of_the_same_runs():
    """The per-seed thresholds are core's critical_values on the recorded runs, up to the first divergence."""
    prediction = predict_critical_values("uv", width=64, seeds=3, first_seed=7)
    sweep = prediction.sweep
    for seed, cv in enumerate(prediction.critical):
        diverged = divergence_flag(sweep.loss[seed])
        end = int(np.argmax(diverged)) + 1 if diverged.any() else sweep.c.size
        expected = critical_values(
            sweep.c[:end],
            loss_catapult_flag(sweep.loss[seed, :end]),
            sharpness_catapult_flag(sweep.sharpness[seed, :end]),
            diverged[:end],
            sweep.barrier[seed, :end] > sweep.loss[seed, :end, 0],
        )
        assert cv == expected


def test_barrier_is_the_largest_loss_on_the_straight_path():
    u, v = uv_init(32, [5])
    eta = np.array([[0.5, 1.5, 5.0]])  # lazy, catapult, diverged
    runs = uv_trajectories(u[:, None], v[:, None], eta, steps=10)
    for k in range(2):
        u_t, v_t = u[0], v[0]
        for _ in range(10):
            u_t, v_t = uv_gd_step(u_t, v_t, eta[0, k])
        path = [
            uv_output(u[0] + s * (u_t - u[0]), v[0] + s * (v_t - v[0])) ** 2 / 2 for s in np.linspace(0, 1, 101)[1:]
        ]
        assert runs.barrier[0, k] == pytest.approx(max(path), rel=1e-12)
    assert np.isnan(runs.barrier[0, 2]) and np.isnan(runs.loss[0, 2, -1])


def test_identical_seeds_identical_results():
    a = predict_critical_values("uv", width=128, seeds=4, first_seed=3)
    b = predict_critical_values("uv", width=128, seeds=4, first_seed=3)
    assert a.critical == b.critical
    np.testing.assert_array_equal(a.sweep.loss, b.sweep.loss)
    c = predict_critical_values("uv", width=128, seeds=2, first_seed=4)
    assert c.critical == a.critical[1:3]  # a seed's result does not depend on its neighbours


def test_trajectory_record_round_trip(tmp_path):
    prediction = predict_critical_values("uv", width=64, seeds=2)
    record = prediction.trajectory(1, 12)
    assert record.c == pytest.approx(prediction.sweep.c[12])
    assert record.eta == pytest.approx(record.c / prediction.lambda0[1])
    np.testing.assert_array_equal(record.loss, prediction.sweep.loss[1, 12])
    loaded = type(record).load(record.save(tmp_path / "uv"))
    np.testing.assert_array_equal(loaded.sharpness, record.sharpness)
    assert "1/(2 B k)" in loaded.loss_convention  # the record names its loss normalisation
    assert loaded.barrier_loss == pytest.approx(prediction.sweep.barrier[1, 12])
