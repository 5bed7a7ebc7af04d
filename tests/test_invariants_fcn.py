"""Invariants of the empirical engine on tiny real networks (digits; docs/PROTOCOL.md sections 2-3).

- Scale invariance: multiplying the loss by alpha leaves every critical value unchanged. The loss
  is scaled by a module that multiplies a tiny FCN's output by sqrt(alpha), with the targets
  multiplied by sqrt(alpha) too: L = |sqrt(alpha) f - sqrt(alpha) y|^2 / (2 B k) = alpha L_FCN as a
  function of theta, so the gradient and Hessian scale by alpha, lambda_H0 by alpha, and
  eta = c / lambda_H0 by 1/alpha: the same theta_t. L_max scales with alpha (it is a loss).
- Permutation invariance: permuting the hidden units of a layer (the rows of W_l, the columns of
  W_{l+1}) is the same function, so lambda_H0, L_0 and every per-step loss and sharpness agree.
- float32 (the default dtype) against the float64 oracle (module ``FLOAT32_RTOL``), and flags
  equal away from their thresholds.
- ``ntk_top`` (config.measurement.ntk) against the dense J J^T / (B k) on the measurement batch after EVERY step.
- Standardisation: every training and test input has mean 0 and std 1 over its own features
  (``earlyphase.empirical.data.dataset``: per-sample, population std), checked on the arrays.
"""

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from earlyphase.core import DEFAULT_LOSS_MAX, critical_values
from earlyphase.core.search import flags_of
from earlyphase.empirical import TrainConfig, prepare, run_at_c
from earlyphase.empirical.data import load_dataset
from earlyphase.empirical.models import build_model
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)

DATA = dict(dataset="digits", n_train=48, measure_size=48, batch_size=None)
GRID = tuple(2.0 ** (0.25 * k) for k in range(13))
"""c = 1 .. 8 in steps of 2**0.25: a depth-3, width-8 linear FCN on 48 digits (full batch, 6 steps) goes
from lazy training (c < 2.8) through both catapults to divergence (c >= 5.7) in it."""


class ScaledOutput(nn.Module):
    """f(x) = scale * net(x): with targets times ``scale`` the MSE is scale^2 times the net's."""

    def __init__(self, net: nn.Module, scale: float) -> None:
        super().__init__()
        self.net = net
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.net(x)


def fcn(seed: int, depth: int = 3, width: int = 8, activation: str = "linear") -> nn.Module:
    return build_model("fcn", (64,), 10, depth, width, activation, seed=seed)


def sweep(experiment) -> tuple[list, object]:
    """Records at every c of GRID, and their critical values."""
    records = [run_at_c(experiment, c) for c in GRID]
    flags = [flags_of(record) for record in records]
    critical = critical_values(
        GRID,
        [f.loss_catapult for f in flags],
        [f.sharpness_catapult for f in flags],
        [f.diverged for f in flags],
        [f.barrier for f in flags],
    )
    return records, critical


@settings(max_examples=2, deadline=None)
@given(alpha=st.floats(1e-2, 1e2), seed=st.integers(0, 1000))
def test_scaling_the_loss_leaves_every_critical_value_unchanged(alpha, seed):
    config = TrainConfig.build(**DATA, arch="custom", steps=6, dtype="float64")
    digits = load_dataset("digits", n_train=48, n_measure=None)
    base = prepare(config, digits, ScaledOutput(fcn(seed), 1.0))
    scaled_data = replace(digits, y_train=(math.sqrt(alpha) * digits.y_train.astype(np.float64)))
    scaled = prepare(
        config.replace(loss_max=alpha * DEFAULT_LOSS_MAX), scaled_data, ScaledOutput(fcn(seed), math.sqrt(alpha))
    )
    assert scaled.lambda0 == pytest.approx(alpha * base.lambda0, rel=1e-10)
    assert scaled.loss0 == pytest.approx(alpha * base.loss0, rel=1e-12)
    base_records, base_critical = sweep(base)
    scaled_records, scaled_critical = sweep(scaled)
    assert scaled_critical == base_critical
    assert base_critical.c_loss.found  # the grid reaches the catapult phase (c_max may lie above c = 8)
    for a, b in zip(base_records, scaled_records):
        fa, fb = flags_of(a), flags_of(b)
        assert (fa.loss_catapult, fa.sharpness_catapult, fa.diverged, fa.barrier) == (
            fb.loss_catapult,
            fb.sharpness_catapult,
            fb.diverged,
            fb.barrier,
        )
        finite = np.isfinite(a.loss) & np.isfinite(b.loss)
        np.testing.assert_allclose(b.loss[finite], alpha * a.loss[finite], rtol=1e-8)


def permuted_copy(net: nn.Module, generator: torch.Generator) -> nn.Module:
    """The same FCN with the units of every hidden layer permuted: W_l rows by pi_l, W_{l+1} columns by pi_l."""
    copy = build_model("fcn", (64,), 10, len(net.hidden) + 1, net.hidden[0].weight.shape[0], "relu", seed=0)
    layers = [*net.hidden, net.readout]
    targets = [*copy.hidden, copy.readout]
    previous = torch.arange(layers[0].weight.shape[1])
    with torch.no_grad():
        for index, (layer, target) in enumerate(zip(layers, targets)):
            rows = (
                torch.randperm(layer.weight.shape[0], generator=generator)
                if index < len(layers) - 1
                else torch.arange(layer.weight.shape[0])
            )
            target.weight.copy_(layer.weight[rows][:, previous])
            previous = rows
    return copy


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 1000), permutation_seed=st.integers(0, 1000))
def test_permuting_hidden_units_changes_nothing(seed, permutation_seed):
    config = TrainConfig.build(**DATA, arch="custom", depth=4, width=8, steps=5, dtype="float64", lanczos_tol=1e-10)
    original = fcn(seed, depth=4, activation="relu")
    permuted = permuted_copy(original, torch.Generator().manual_seed(permutation_seed))
    digits = load_dataset("digits", n_train=48, n_measure=None)
    a, b = prepare(config, digits, original), prepare(config, digits, permuted)
    assert not torch.equal(a.theta0, b.theta0)  # a different parameter vector ...
    assert b.loss0 == pytest.approx(a.loss0, rel=1e-13)  # ... of the same function
    assert b.lambda0 == pytest.approx(a.lambda0, rel=1e-10)
    for c in (0.7, 2.5, 6.0):
        ra, rb = run_at_c(a, c), run_at_c(b, c)
        np.testing.assert_allclose(rb.loss, ra.loss, rtol=1e-9)
        np.testing.assert_allclose(rb.sharpness, ra.sharpness, rtol=1e-8)
        assert rb.barrier_loss == pytest.approx(ra.barrier_loss, rel=1e-9)


FLOAT32_RTOL = 1e-4
"""float32 against float64, relative, for L_0, lambda_H0 and a short trajectory below the
catapult. Derivation: float32 unit roundoff u = 2**-24 = 6e-8; a dot product of length n errs
by at most n u relative (worst case, no cancellation); the loss passes through 3 layers of
fan-in <= 64, a Hessian-vector product through about 4 such passes (forward, backward, their
tangents): 4 x 3 x 64 u = 4.6e-5 < 1e-4. The Lanczos tolerance is set to 1e-4 for both runs, so
the eigenvalue's own error (about residual^2 lambda / gap, 1e-8 relative) stays far below it.
Measured (depth 3, width 8, linear / tanh / relu, seeds 0 and 1): at most 4e-8 (L_0), 1.2e-7
(lambda_H0) and 2e-7 (the trajectories): the bound is a worst case, 500 times the typical error."""


@settings(max_examples=2, deadline=None)
@given(seed=st.integers(0, 1000), activation=st.sampled_from(["linear", "tanh", "relu"]))
def test_float32_agrees_with_the_float64_oracle(seed, activation):
    config = TrainConfig.build(
        **DATA, depth=3, width=8, activation=activation, seed_init=seed, steps=6, lanczos_tol=1e-4
    )
    digits = load_dataset("digits", n_train=48, n_measure=None)
    single, double = prepare(config, digits), prepare(config.replace(dtype="float64"), digits)
    assert single.theta0.dtype == torch.float32 and double.theta0.dtype == torch.float64
    torch.testing.assert_close(single.theta0.double(), double.theta0, rtol=0, atol=0)  # the same network
    assert single.loss0 == pytest.approx(double.loss0, rel=FLOAT32_RTOL)
    assert single.lambda0 == pytest.approx(double.lambda0, rel=FLOAT32_RTOL)
    for c in (0.5, 1.5):  # below the catapult: GD contracts, rounding does not grow
        a, b = run_at_c(single, c), run_at_c(double, c)
        np.testing.assert_allclose(a.loss, b.loss, rtol=FLOAT32_RTOL)
        np.testing.assert_allclose(a.sharpness, b.sharpness, rtol=FLOAT32_RTOL)
    # flags away from their thresholds: a margin (log of the peak ratio) beyond 1e-3
    for c in GRID[::3]:  # linear: every flag switches in this range
        fa, fb = flags_of(run_at_c(single, c)), flags_of(run_at_c(double, c))
        assert fa.diverged == fb.diverged
        if not fb.diverged and abs(fb.loss_margin) > 1e-3:
            assert fa.loss_catapult == fb.loss_catapult, c
        if not fb.diverged and abs(fb.sharpness_margin) > 1e-3:
            assert fa.sharpness_catapult == fb.sharpness_catapult, c


def test_recorded_ntk_top_is_the_dense_kernel_after_every_step():
    config = TrainConfig.build(**DATA, depth=3, width=6, steps=5, ntk=True, dtype="float64", lanczos_tol=1e-10)
    experiment = prepare(config)
    ((x, _),) = experiment.probe.measure_batch.chunks
    thetas = {0: experiment.theta0}
    record = run_at_c(experiment, 3.0, on_step=lambda t, theta: thetas.__setitem__(t, theta.clone()))
    assert sorted(thetas) == list(range(config.protocol.steps + 1))
    for t, theta in thetas.items():
        jacobian = torch.func.jacrev(lambda p: experiment.model(p, x).reshape(-1))(theta)  # (B k) x P
        dense = float(torch.linalg.eigvalsh(jacobian @ jacobian.T)[-1]) / jacobian.shape[0]
        assert record.steps["ntk_top"].iloc[t] == pytest.approx(dense, rel=1e-8), t
    assert np.ptp(record.steps["ntk_top"]) > 1e-3 * record.steps["ntk_top"].iloc[0]  # the kernel moved


FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.parametrize(
    "name, options",
    [
        ("digits", {}),  # no test split
        ("synthetic", {"n_test": 50}),
        pytest.param(
            "fashion_mnist",
            {"n_test": 100, "download": False},
            marks=pytest.mark.skipif(
                not FASHION_MNIST.is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
            ),
        ),
    ],
)
def test_every_input_is_standardised_over_its_own_features(name, options):
    data = load_dataset(name, n_train=200, n_measure=None, **options)
    for x in (data.x_train, data.x_test):
        if x is None:
            continue
        flat = x.reshape(len(x), -1).astype(np.float64)
        assert x.dtype == np.float32
        np.testing.assert_allclose(flat.mean(axis=1), 0.0, atol=1e-6)  # float32 rounding of O(1) values
        np.testing.assert_allclose(flat.std(axis=1), 1.0, rtol=1e-6)
    assert (data.x_test is not None) == (name != "digits")
