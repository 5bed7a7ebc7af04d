"""Hessian-vector products, sharpness and NTK of tiny networks against dense oracles (float64)."""

import pytest
import torch
from torch import nn

from earlyphase.empirical import TrainConfig, prepare
from earlyphase.empirical.curvature import (
    HessianVectorProduct,
    hvp_double_backward,
    hvp_forward_over_reverse,
    lanczos_top,
    ntk_operator,
)
from earlyphase.empirical.curvature import hvp as hvp_module
from earlyphase.empirical.data import load_dataset
from earlyphase.empirical.functional import flatten_module
from earlyphase.empirical.losses import LOSSES
from earlyphase.empirical.models import build_model
from earlyphase.empirical.objective import hessian_operator
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)

TINY = dict(dataset="digits", n_train=48, measure_size=24, dtype="float64", lanczos_tol=1e-10, steps=1)


def digits_batch(n=24):
    data = load_dataset("digits", n_train=n, n_measure=n, seed=0)
    return torch.tensor(data.x_measure, dtype=torch.float64), torch.tensor(data.y_measure, dtype=torch.float64)


def tiny_network(arch="fcn", depth=3, width=5, activation="tanh", **options):
    module = build_model(arch, (1, 8, 8), 10, depth, width, activation, seed=1, **options)
    return flatten_module(module, dtype=torch.float64)


def dense_hessian_of(experiment):
    """torch.func.hessian of the loss on the measurement batch at theta_0."""
    ((x, y),) = experiment.probe.measure_batch.chunks
    loss_fn = LOSSES[experiment.config.protocol.loss]
    return torch.func.hessian(lambda theta: loss_fn(experiment.model(theta, x), y))(experiment.theta0)


@pytest.mark.parametrize(
    "options",
    [
        dict(arch="fcn", depth=3, width=6, activation="relu"),
        dict(arch="fcn", depth=3, width=5, activation="tanh", loss="cross_entropy"),
        dict(arch="fcn", depth=2, width=6, activation="relu", parameterization="ntk", readout="mup"),
        dict(arch="cnn", depth=4, width=3, activation="relu"),
    ],
    ids=["fcn-relu-mse", "fcn-tanh-ce", "fcn-ntk-mup", "cnn-relu"],
)
def test_sharpness_matches_dense_hessian(options):
    experiment = prepare(TrainConfig.build(**TINY, **options))
    eigenvalues = torch.linalg.eigvalsh(dense_hessian_of(experiment))
    assert experiment.lambda0 == pytest.approx(float(eigenvalues[-1]), rel=1e-6)
    assert float(experiment.initial.sharpness.residual) <= 1e-10


@pytest.mark.parametrize("product", [hvp_forward_over_reverse, hvp_double_backward])
@pytest.mark.parametrize("arch", ["fcn", "cnn"])
def test_hvp_matches_finite_differences_of_the_gradient(product, arch):
    model, theta = tiny_network(arch, depth=4 if arch == "cnn" else 3, width=3)
    x, y = digits_batch()

    def loss(t):
        return LOSSES["mse"](model(t, x), y)

    vector = torch.randn(theta.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    step = 1e-5
    gradient = torch.func.grad(loss)
    finite_difference = (gradient(theta + step * vector) - gradient(theta - step * vector)) / (2 * step)
    exact = product(loss, theta, vector)
    assert torch.allclose(exact, finite_difference, rtol=1e-6, atol=1e-9 * float(finite_difference.abs().max()))


class SquareWithoutForwardMode(torch.autograd.Function):
    """x^2 with a reverse-mode rule only (old-style Function: torch.func cannot transform it)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return 2 * x * grad_output


class TwoLayerNet(nn.Module):
    def __init__(self, nonlinearity):
        super().__init__()
        self.first = nn.Linear(64, 4, bias=False)
        self.second = nn.Linear(4, 10, bias=False)
        self.nonlinearity = nonlinearity

    def forward(self, x):
        return self.second(self.nonlinearity.apply(self.first(x.flatten(1))))


def finite_difference_hvp(loss, theta, vector, step=1e-5):
    """(grad L(theta + h v) - grad L(theta - h v)) / 2h, gradients by plain reverse mode."""

    def gradient(point):
        point = point.detach().requires_grad_(True)
        return torch.autograd.grad(loss(point), point)[0]

    return (gradient(theta + step * vector) - gradient(theta - step * vector)) / (2 * step)


def square_net_loss():
    torch.manual_seed(0)
    model, theta = flatten_module(TwoLayerNet(SquareWithoutForwardMode), dtype=torch.float64)
    x, y = digits_batch()
    vector = torch.randn(theta.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return (lambda t: LOSSES["mse"](model(t, x), y)), theta, vector


def assert_close_to_finite_differences(product, loss, theta, vector):
    reference = finite_difference_hvp(loss, theta, vector)
    assert torch.allclose(product, reference, rtol=1e-6, atol=1e-6 * float(reference.abs().max()))


def test_modules_without_forward_mode_use_double_backward():
    loss, theta, vector = square_net_loss()
    with pytest.raises(RuntimeError):
        HessianVectorProduct(loss, theta, "forward_over_reverse")(vector)
    operator = HessianVectorProduct(loss, theta, "auto")
    assert_close_to_finite_differences(operator(vector), loss, theta, vector)
    assert operator.method == "double_backward"


def test_auto_falls_back_to_forward_over_reverse_when_double_backward_raises(monkeypatch):
    model, theta = tiny_network()
    x, y = digits_batch()
    loss = lambda t: LOSSES["mse"](model(t, x), y)  # noqa: E731
    vector = torch.ones_like(theta)

    def refuse(*args):
        raise RuntimeError("derivative for aten::something_backward is not implemented")

    monkeypatch.setattr(hvp_module, "hvp_double_backward", refuse)
    with pytest.raises(RuntimeError):
        HessianVectorProduct(loss, theta, "double_backward")(vector)
    operator = HessianVectorProduct(loss, theta, "auto")
    assert_close_to_finite_differences(operator(vector), loss, theta, vector)
    assert operator.method == "forward_over_reverse"


def test_auto_prefers_double_backward():
    model, theta = tiny_network()
    x, y = digits_batch()
    operator = HessianVectorProduct(lambda t: LOSSES["mse"](model(t, x), y), theta, "auto")
    operator(torch.ones_like(theta))
    assert operator.method == "double_backward"


def test_ntk_top_eigenvalue_matches_dense_jacobian():
    model, theta = tiny_network(width=4)
    x, _ = digits_batch(12)
    jacobian = torch.func.jacrev(lambda t: model(t, x).reshape(-1))(theta)  # (B k) x P
    kernel = jacobian @ jacobian.T  # Theta = J J^T
    start = torch.ones_like(theta)
    result = lanczos_top(ntk_operator(lambda t: model(t, x), theta), start, tol=1e-10)
    assert float(result.value) == pytest.approx(float(torch.linalg.eigvalsh(kernel)[-1]), rel=1e-8)


def test_gauss_newton_identity_at_zero_residual():
    """With targets y = f(theta_0) the MSE Hessian IS J^T J / (B k): lambda_H = lambda_max(Theta) / (B k)."""
    model, theta = tiny_network(activation="relu", width=6)
    x, _ = digits_batch()
    targets = model(theta, x).detach()
    loss = lambda t: LOSSES["mse"](model(t, x), targets)  # noqa: E731
    start = torch.ones_like(theta)
    sharpness = lanczos_top(HessianVectorProduct(loss, theta), start, tol=1e-10)
    ntk = lanczos_top(ntk_operator(lambda t: model(t, x), theta), start, tol=1e-10)
    normalisation = targets.numel()  # B k
    assert float(sharpness.value) == pytest.approx(float(ntk.value) / normalisation, rel=1e-8)


def test_gauss_newton_identity_for_a_linear_network_through_prepare():
    """One linear layer: grad^2 f = 0, so the MSE Hessian equals J^T J / (B k) for any targets."""
    experiment = prepare(TrainConfig.build(**TINY, arch="fcn", depth=1, width=1, activation="linear", ntk=True))
    assert experiment.lambda0 == pytest.approx(
        float(experiment.initial.ntk.value) / experiment.probe.ntk_normalisation, rel=1e-8
    )


def test_chunked_measurement_equals_whole_batch():
    whole = prepare(TrainConfig.build(**TINY, arch="fcn", depth=3, width=5, ntk=True))
    chunked = prepare(TrainConfig.build(**TINY, arch="fcn", depth=3, width=5, ntk=True, chunk_size=7))
    assert chunked.lambda0 == pytest.approx(whole.lambda0, rel=1e-9)
    assert chunked.loss0 == pytest.approx(whole.loss0, rel=1e-12)
    assert float(chunked.initial.ntk.value) == pytest.approx(float(whole.initial.ntk.value), rel=1e-9)


@pytest.mark.parametrize("c", [2.5, 20.0])
def test_warm_started_sharpness_follows_the_dense_top_eigenvalue_through_a_catapult(c):
    """Lanczos warm-started from the previous step's vector at the default tolerance (1e-3), as
    training runs it, against eigvalsh of the dense Hessian after every GD step. c = 2.5: the
    sharpness falls 18 -> 4 in 8 steps; c = 20: the loss catapults (0.52 -> 0.96 -> 0.05) and the
    sharpness collapses 18 -> 0.34, so the top eigenvector changes under the warm start."""
    config = TrainConfig.build(
        dataset="digits", n_train=48, measure_size=48, dtype="float64", depth=3, width=8, steps=1
    )
    experiment = prepare(config)
    ((x, y),) = experiment.probe.measure_batch.chunks
    loss_fn = LOSSES[config.protocol.loss]

    def loss(t):
        return loss_fn(experiment.model(t, x), y)

    theta, vector, eta = experiment.theta0, experiment.initial.sharpness.vector, c / experiment.lambda0
    for _ in range(8):
        theta = theta - eta * torch.func.grad(loss)(theta)
        result = lanczos_top(
            hessian_operator(experiment.model, loss_fn, theta, experiment.probe.measure_batch)[0], vector, tol=1e-3
        )
        vector = result.vector
        top = float(torch.linalg.eigvalsh(torch.func.hessian(loss)(theta))[-1])
        assert float(result.value) == pytest.approx(top, rel=1e-4)
