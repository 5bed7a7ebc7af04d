"""Predicted against measured trajectories (earlyphase.compare.trajectory_check) and the linearised
network's run (earlyphase.empirical.linearised), against run_at_c itself and a dense-Jacobian oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from earlyphase.compare.trajectory_check import (
    MEASURED,
    ONE_STEP,
    PREDICTORS,
    lookahead_curves,
    measured_curves,
    trajectory_check,
)
from earlyphase.core.validate import ConfigError
from earlyphase.empirical.analytic import first_step_gradient
from earlyphase.empirical.linearised import linearised_losses
from earlyphase.empirical.training import TrainConfig, prepare, run_at_c
from earlyphase.theory.ntk import linearized_trajectories

TINY = TrainConfig.build(
    depth=2, width=12, n_train=48, measure_size=48, batch_size=None, steps=3, dtype="float64", barrier=False
)
"""Full-batch GD on 48 digits: the measurement batch is the training set and the evaluation set."""


@pytest.fixture(scope="module")
def experiment():
    return prepare(TINY)


def test_measured_curves_are_run_at_c_records(experiment):
    minibatch = prepare(TINY.replace(batch_size=16))
    c = np.array([1.0, 3.0])
    curves = measured_curves(minibatch, c)
    for i, value in enumerate(c):
        record = run_at_c(minibatch, float(value)).steps
        np.testing.assert_array_equal(curves.loss_ratio[i], record["loss"].to_numpy() / minibatch.loss0)
        np.testing.assert_array_equal(curves.sharpness_ratio[i], record["sharpness"].to_numpy() / minibatch.lambda0)
    assert curves.loss_ratio[:, 0] == pytest.approx(1.0) and curves.sharpness_ratio[:, 0] == pytest.approx(1.0)


def test_measured_curves_need_every_step_solved():
    flags_only = prepare(TINY.replace(measure_mode="flags"))
    with pytest.raises(ConfigError, match="measure_mode"):
        measured_curves(flags_only, np.array([1.0]))


def dense_linearised_gd(experiment, c: float, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Oracle: the dense Jacobian J (n k x P) at theta_0 and explicit GD on f_lin = f_0 + J (theta - theta_0)
    for the MSE |f - y|^2 / (2 n k): theta <- theta - eta J^T (f_lin - y) / (n k). Returns the
    losses, J J^T and the residual at theta_0."""
    x, y = experiment.probe.measure_batch.chunks[0]
    theta0 = experiment.theta0
    jacobian = torch.autograd.functional.jacobian(lambda p: experiment.model(p, x).reshape(-1), theta0)
    f0 = experiment.model(theta0, x).reshape(-1).detach()
    target = y.reshape(-1)
    entries = f0.numel()
    eta = c / experiment.lambda0
    delta = torch.zeros_like(theta0)
    losses = []
    for _ in range(steps + 1):
        residual = f0 + jacobian @ delta - target
        losses.append(float(residual @ residual) / (2 * entries))
        delta = delta - eta * jacobian.T @ residual / entries
    return np.array(losses), (jacobian @ jacobian.T).numpy(), (f0 - target).numpy()


@pytest.mark.parametrize("c", [0.7, 1.9, 2.6])
def test_lazy_losses_match_dense_linearised_gd(experiment, c):
    steps = 6
    expected, ntk, residual = dense_linearised_gd(experiment, c, steps)
    np.testing.assert_allclose(linearised_losses(experiment, c, steps), expected, rtol=1e-9)
    # the same losses mode by mode: theory.ntk's linearised dynamics at its own c' = eta mu_max / (n k)
    c_modes = c / experiment.lambda0 * np.linalg.eigvalsh(ntk)[-1] / residual.size
    modes, _ = linearized_trajectories(ntk, residual, [c_modes], steps)
    np.testing.assert_allclose(linearised_losses(experiment, c, steps), modes[0], rtol=1e-7)


def test_lookahead_point_is_the_first_step_of_a_full_batch_run(experiment):
    one_step = prepare(TINY.replace(steps=1))
    g0, _ = first_step_gradient(one_step)
    c = np.array([0.5, 2.0, 5.0])
    predicted = lookahead_curves(one_step, g0, c, steps=1)
    measured = measured_curves(one_step, c)
    np.testing.assert_allclose(predicted.loss_ratio[:, 1], measured.loss_ratio[:, 1], rtol=1e-12)
    np.testing.assert_allclose(predicted.sharpness_ratio[:, 1], measured.sharpness_ratio[:, 1], rtol=1e-6)


def test_trajectory_check_tables(experiment):
    check = trajectory_check(experiment, (1.0, 4.0))
    assert set(check.predicted) == set(PREDICTORS) and not check.not_available
    table = check.table()
    assert set(table["source"]) == {MEASURED, *PREDICTORS}
    one_step = table[table["source"].isin(ONE_STEP)]
    assert one_step["step"].max() == 1
    lazy = check.predicted["lazy"]
    assert np.all(lazy.sharpness_ratio[np.isfinite(lazy.loss_ratio)] == 1.0)
    summary = check.summary().set_index(["source", "c"])
    assert summary.loc[("lookahead", 1.0), "loss_1"] == pytest.approx(summary.loc[(MEASURED, 1.0), "loss_1"])
    assert np.isnan(summary.loc[("lookahead", 1.0), "loss_T"]) and not summary.loc[("lookahead", 1.0), "diverged"]
    assert summary.loc[(MEASURED, 1.0), "loss_T"] == pytest.approx(check.measured.loss_ratio[0, -1])
