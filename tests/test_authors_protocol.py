"""The authors' measurement protocol (earlyphase.empirical.authors_protocol).

Oracles: dense ``torch.linalg.eigh`` of the Hessian of a tiny network (P = 592) and of a matrix
with a negative dominant eigenvalue; a hand-rolled SGD loop on batches 0, 2, 4, ... of the same
stream with the loss on the whole training set; an uninterrupted sweep for the resumed one.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from earlyphase.core import CRITICAL_NAMES
from earlyphase.empirical import TrainConfig
from earlyphase.empirical import authors_protocol as authors
from earlyphase.empirical.loop import sgd_batches
from earlyphase.empirical.losses import mse
from earlyphase.empirical.sweep import run_sweep, spec_from_mapping
from earlyphase.empirical.sweep.store import Store

TINY = TrainConfig.build(
    depth=2, width=8, n_train=256, measure_size=128, batch_size=64, steps=3, dtype="float64", eval_set="measure"
)


@pytest.fixture(scope="module")
def experiment():
    return authors.prepare(TINY)


def dense_eigenvalues(experiment, theta, x, y):
    hessian = torch.func.hessian(lambda t: mse(experiment.model(t, x), y))(theta)
    return torch.linalg.eigvalsh(hessian)


def dominant(eigenvalues):
    """(the eigenvalue of largest |lambda| with its sign, |lambda_2| / |lambda_1|)."""
    magnitudes = eigenvalues.abs().sort(descending=True).values
    return float(eigenvalues[eigenvalues.abs().argmax()]), float(magnitudes[1] / magnitudes[0])


def test_power_iteration_returns_the_largest_magnitude_with_its_sign():
    generator = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(12, 12, generator=generator, dtype=torch.float64))
    eigenvalues = torch.tensor([-6.0, 3.0, 1.0, 0.5, 0.25, 0.1, 0.0, -0.1, -0.2, -0.5, -1.0, 2.0], dtype=torch.float64)
    matrix = basis @ torch.diag(eigenvalues) @ basis.T
    result = authors.power_iteration(lambda v: matrix @ v, torch.randn(12, generator=generator, dtype=torch.float64))
    assert float(torch.linalg.eigvalsh(matrix)[0]) == pytest.approx(-6.0)  # the top algebraic one is 3
    assert result.value == pytest.approx(-6.0, rel=1e-8)  # error ~ (3/6)^(2 * 19) ~ 4e-12
    assert (
        result.products == authors.POWER_STEPS and result.residual < 1e-4
    )  # ~ (3/6)^19 ~ 2e-6, times the start's tilt


def test_lambda0_is_the_dominant_eigenvalue_of_the_measurement_batch_hessian(experiment):
    x, y = experiment.probe.measure_batch.chunks[0]
    assert len(x) == TINY.data.measure_size
    value, ratio = dominant(dense_eigenvalues(experiment, experiment.theta0, x, y))
    assert ratio < 0.7  # well separated: 20 products leave a relative error ~ ratio^38 < 1e-5
    assert experiment.lambda0 == pytest.approx(value, rel=1e-5)
    assert experiment.initial_sharpness.matvecs == authors.POWER_STEPS


def hand_rolled(experiment, c, order):
    """Plain SGD at eta = c / lambda_H0 on the stream's batches in ``order``: (full-set losses
    L_1..L_T, batch losses, theta_1)."""
    stream = sgd_batches(TINY.data.n_train, TINY.protocol.batch_size, TINY.seeds.sgd)
    batches = [next(stream) for _ in range(2 * TINY.protocol.steps)]
    x, y = experiment.train_x, experiment.train_y
    theta, eta = experiment.theta0.clone(), c / experiment.lambda0
    losses, batch_losses, thetas = [], [], []
    for index in [batches[k] for k in order]:
        point = theta.detach().requires_grad_(True)
        loss = mse(experiment.model(point, x[index]), y[index])
        (gradient,) = torch.autograd.grad(loss, point)
        theta = theta - eta * gradient
        batch_losses.append(float(loss.detach()))
        losses.append(float(mse(experiment.model(theta, x), y)))
        thetas.append(theta)
    return losses, batch_losses, thetas, batches


def test_sgd_trains_on_even_batches_and_measures_on_the_next_one(experiment):
    c = 0.5
    record = authors.run_at_c(experiment, c)
    losses, batch_losses, thetas, batches = hand_rolled(experiment, c, order=[0, 2, 4])
    np.testing.assert_allclose(record.loss[1:], losses, rtol=1e-10)  # L_t on the whole training set
    np.testing.assert_allclose(record.steps["batch_loss"].to_numpy()[1:], batch_losses, rtol=1e-10)
    consecutive, _, _, _ = hand_rolled(experiment, c, order=[0, 1, 2])
    assert not np.allclose(record.loss[1:], consecutive, rtol=1e-6)  # the toolkit's order differs
    x, y = experiment.train_x, experiment.train_y
    assert record.loss[0] == pytest.approx(float(mse(experiment.model(experiment.theta0, x), y)), rel=1e-12)
    for t, theta in enumerate(thetas, start=1):  # lambda_H_t on batch 2t - 1, and on no other
        values = {}
        for number, index in enumerate(batches):
            values[number], ratio = dominant(dense_eigenvalues(experiment, theta, x[index], y[index]))
            if number == 2 * t - 1:
                assert ratio < 0.75  # well separated: 20 products leave a relative error ~ ratio^38 < 2e-5
        assert record.sharpness[t] == pytest.approx(values.pop(2 * t - 1), rel=1e-4), t
        assert all(abs(record.sharpness[t] / other - 1) > 1e-3 for other in values.values()), t
    assert record.config["protocol"] == authors.PROTOCOL and record.config["eval_set"] == "train"
    assert record.step_hvps == authors.POWER_STEPS * TINY.protocol.steps


def test_a_diverged_run_is_data(experiment):
    record = authors.run_at_c(experiment, 1e4)
    step = record.divergence_step
    assert record.diverged and step is not None and record.loss[step] > TINY.protocol.loss_max
    assert np.isfinite(record.sharpness[:step]).all() and np.isnan(record.sharpness[step:]).all()
    assert np.isnan(record.loss[step + 1 :]).all() and math.isnan(record.barrier_loss)


SPEC = {
    "runner": "earlyphase.empirical.authors_protocol",
    "model": {"depths": [4], "widths": [32]},
    "data": {"dataset": "digits", "n_train": 128, "measure_size": 64},
    "protocol": {"batch_size": 32, "steps": 4},
    "seeds": {"init": [0], "sgd": [0]},
    "search": {"x_min": 2.5, "x_max": 6.5, "x_start": 3.0, "expand_step": 6},
}


def test_a_sweep_through_the_runner_finds_critical_values_and_resumes(tmp_path):
    spec = spec_from_mapping(SPEC)
    run_sweep(spec, tmp_path, progress=False)
    first = pd.read_csv(tmp_path / "critical_values.csv")
    assert len(first) == 1 and all(first[f"{name}_found"].all() for name in CRITICAL_NAMES)
    (point,) = spec.points()
    store = Store(tmp_path, spec)
    summary = store.load_search(point)
    assert summary["runs_computed"] > 0 and summary["loss0"] == pytest.approx(authors.prepare(spec.config(point)).loss0)
    (record,) = [json.loads(path.read_text()) for path in (tmp_path / "runs").glob("*/x+3.0000.json")]
    assert record["config"]["protocol"] == authors.PROTOCOL
    store.search_path(point).unlink()  # the search resumes from its stored runs
    run_sweep(spec, tmp_path, progress=False)
    resumed = store.load_search(point)
    assert resumed["runs_computed"] == 0 and resumed["runs_loaded"] == summary["runs_computed"]
    again = pd.read_csv(tmp_path / "critical_values.csv")
    for name in CRITICAL_NAMES:
        assert again[name].equals(first[name]), name
