"""measure_initial against independent oracles: dense Hessians, Jacobians and third derivatives of
tiny float64 networks, central finite differences, and the uv model's closed forms."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from earlyphase.empirical import TrainConfig, prepare, run_at_c
from earlyphase.empirical.data import Dataset
from earlyphase.empirical.initial import measure_initial
from earlyphase.empirical.losses import LOSSES
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)

EXACT = dict(dtype="float64", lanczos_tol=1e-12, lanczos_max_iter=200)


def toy_dataset(n=16, dim=4, classes=3, name="toy"):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    y = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, n)]
    return Dataset(name, x, y, np.arange(n), None, None, "test")


def toy_net(activation=nn.Tanh, zero_readout=False):
    """4 -> 5 -> 5 -> 3 without biases: 60 parameters."""
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Linear(4, 5, bias=False),
        activation(),
        nn.Linear(5, 5, bias=False),
        activation(),
        nn.Linear(5, 3, bias=False),
    )
    with torch.no_grad():
        for layer in net[::2]:
            layer.weight.mul_(1.7)
        if zero_readout:
            net[4].weight.zero_()
    return net


def toy_experiment(activation=nn.Tanh, zero_readout=False, **options):
    config = TrainConfig.build(arch="custom", dataset="toy", batch_size=8, **{**EXACT, **options})
    return prepare(config, dataset=toy_dataset(), model=toy_net(activation, zero_readout))


def loss_on_measure_batch(experiment):
    ((x, y),) = experiment.probe.measure_batch.chunks
    loss_fn = LOSSES[experiment.config.protocol.loss]
    return lambda theta: loss_fn(experiment.model(theta, x), y)


def dense_sharpness(experiment, theta):
    return float(torch.linalg.eigvalsh(torch.func.hessian(loss_on_measure_batch(experiment))(theta))[-1])


@pytest.fixture(scope="module", params=[nn.Tanh, nn.ReLU], ids=["tanh", "relu"])
def toy(request):
    experiment = toy_experiment(request.param)
    return experiment, measure_initial(experiment)


def test_sharpness_gradient_is_the_dense_third_derivative_contracted_with_u(toy):
    experiment, measured = toy
    third = torch.func.jacfwd(torch.func.hessian(loss_on_measure_batch(experiment)))(experiment.theta0)
    u = measured.sharpness_vector
    expected = torch.einsum("jki,j,k->i", third, u, u)
    torch.testing.assert_close(
        measured.sharpness_gradient, expected, rtol=1e-9, atol=1e-9 * float(expected.abs().max())
    )
    assert measured.sharpness_gradient_norm2 == pytest.approx(float(expected @ expected), rel=1e-9)


def test_sharpness_rates_match_central_finite_differences_of_the_dense_eigenvalue(toy):
    experiment, measured = toy
    theta, h = experiment.theta0, 1e-5

    def slope(direction):
        return (
            dense_sharpness(experiment, theta + h * direction) - dense_sharpness(experiment, theta - h * direction)
        ) / (2 * h)

    direction = torch.randn(theta.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert float(measured.sharpness_gradient @ direction) == pytest.approx(slope(direction), rel=1e-5)
    # kappa = d/d eta lambda_H(theta_0 - eta grad L): the slope along -grad L
    assert measured.kappa == pytest.approx(slope(-measured.gradient), rel=1e-5)
    assert measured.kappa_batch == pytest.approx(slope(-measured.first_gradient), rel=1e-5)
    assert measured.lambda0 == pytest.approx(dense_sharpness(experiment, theta), rel=1e-10)


def test_ntk_top_mode_and_loss_split_against_the_dense_jacobian(toy):
    experiment, measured = toy
    ((x, y),) = experiment.probe.measure_batch.chunks
    jacobian = torch.func.jacrev(lambda theta: experiment.model(theta, x).reshape(-1))(experiment.theta0)
    values, vectors = torch.linalg.eigh(jacobian @ jacobian.T)
    residual = (experiment.model(experiment.theta0, x) - y).detach().reshape(-1)
    e = vectors[:, -1] * torch.sign(vectors[:, -1] @ residual)
    assert measured.ntk_top == pytest.approx(float(values[-1]), rel=1e-10)
    torch.testing.assert_close(measured.ntk_vector.reshape(-1), e, rtol=0, atol=1e-8)
    torch.testing.assert_close(measured.residual.reshape(-1), residual)
    size = residual.numel()
    assert measured.ntk_sharpness == pytest.approx(float(values[-1]) / size, rel=1e-10)
    assert measured.top_residual == pytest.approx(float(e @ residual) / math.sqrt(size), rel=1e-8)
    assert measured.top_residual >= 0
    f0 = experiment.model(experiment.theta0, x).detach().reshape(-1)
    assert measured.top_output == pytest.approx(float(e @ f0) / math.sqrt(size), rel=1e-8, abs=1e-12)
    assert measured.loss_top == pytest.approx(measured.top_residual**2 / 2, rel=1e-12)
    rest = residual - (e @ residual) * e
    assert measured.loss_rest == pytest.approx(float(rest @ rest) / (2 * size), rel=1e-8)
    assert measured.loss_top + measured.loss_rest == pytest.approx(measured.loss0, rel=1e-12)
    assert measured.loss0 == pytest.approx(experiment.loss0, rel=1e-12)  # eval set = measurement batch


def test_first_step_gradient_is_the_one_run_at_c_takes(toy):
    experiment, measured = toy
    hessian = torch.func.hessian(loss_on_measure_batch(experiment))(experiment.theta0)
    g0 = measured.first_gradient
    assert measured.first_gradient_rayleigh == pytest.approx(float(g0 @ hessian @ g0 / (g0 @ g0)), rel=1e-10)
    trajectory = run_at_c(experiment, 1.0)
    assert measured.first_batch_loss == trajectory.steps["batch_loss"].iloc[1]
    theta1 = experiment.theta0 - (1.0 / experiment.lambda0) * g0
    assert experiment.probe.loss(theta1)[0] == trajectory.loss[1]
    gradient = torch.func.grad(loss_on_measure_batch(experiment))(experiment.theta0)
    torch.testing.assert_close(measured.gradient, gradient)


def test_chunked_measurement_batch_gives_the_same_measurements(toy):
    experiment, measured = toy
    config = experiment.config.replace(chunk_size=5)  # 4 chunks of the 16 examples
    chunked = measure_initial(prepare(config, dataset=experiment.dataset, model=experiment.model.module))
    for name in (
        "kappa",
        "kappa_batch",
        "ntk_top",
        "top_residual",
        "top_output",
        "loss_top",
        "first_gradient_rayleigh",
    ):
        assert getattr(chunked, name) == pytest.approx(getattr(measured, name), rel=1e-8), name


def test_zero_readout_has_zero_output_and_residual_minus_y():
    experiment = toy_experiment(nn.Tanh, zero_readout=True)
    measured = measure_initial(experiment)
    ((_, y),) = experiment.probe.measure_batch.chunks
    torch.testing.assert_close(measured.residual, -y, rtol=0, atol=0)
    assert measured.top_output == 0.0
    assert measured.loss0 == pytest.approx(float((y**2).sum()) / (2 * y.numel()), rel=1e-12)
    assert measured.top_residual == pytest.approx(
        float(measured.ntk_vector.reshape(-1) @ -y.reshape(-1)) / math.sqrt(y.numel())
    )


def test_cross_entropy_has_no_loss_split_but_every_other_measurement():
    measured = measure_initial(toy_experiment(nn.Tanh, loss="cross_entropy"))
    assert measured.loss_top is None and measured.loss_rest is None
    assert math.isfinite(measured.kappa) and math.isfinite(measured.top_residual)


# --- the uv model: f = v . u / sqrt(w) on one example x = 1, L = (f - y)^2 / 2 -----------------
class UV(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.width = width
        self.u = nn.Parameter(torch.randn(width))
        self.v = nn.Parameter(torch.randn(width))

    def forward(self, x):
        return x * (self.v @ self.u) / math.sqrt(self.width)


def uv_experiment(width, target):
    data = Dataset(
        "uv", np.ones((1, 1), np.float32), np.full((1, 1), target, np.float32), np.array([0]), None, None, "uv"
    )
    config = TrainConfig.build(
        arch="custom", dataset="uv", batch_size=None, measure_size=1, **{**EXACT, "lanczos_max_iter": 2 * width}
    )
    return prepare(config, dataset=data, model=lambda: UV(width))


@pytest.mark.parametrize("target", [0.0, 0.7])
def test_uv_model_closed_forms(target):
    width = 40
    experiment = uv_experiment(width, target)
    measured = measure_initial(experiment)
    u, v = (experiment.model.unflatten(experiment.theta0)[name].double() for name in ("u", "v"))
    f = float(v @ u) / math.sqrt(width)
    g = f - float(np.float32(target))
    # gradient of f, Hessian of f (S / sqrt(w), S = [[0, I], [I, 0]]) and of L = (f - y)^2 / 2
    a = torch.cat([v, u]) / math.sqrt(width)
    swap = torch.zeros(2 * width, 2 * width, dtype=torch.float64)
    swap[:width, width:] = swap[width:, :width] = torch.eye(width, dtype=torch.float64)
    values, vectors = torch.linalg.eigh(torch.outer(a, a) + g * swap / math.sqrt(width))
    top = vectors[:, -1]
    assert measured.lambda0 == pytest.approx(float(values[-1]), rel=1e-10)
    # NTK: the scalar (|u|^2 + |v|^2) / w; one output, so e = sign(g), p = |f| sign(f g), q = |g|
    assert measured.ntk_top == pytest.approx(float(u @ u + v @ v) / width, rel=1e-10)
    assert measured.top_residual == pytest.approx(abs(g), rel=1e-10)
    assert measured.top_output == pytest.approx(math.copysign(f, f * g) if g else f, rel=1e-10)
    assert measured.loss_top == pytest.approx(g**2 / 2, rel=1e-10) and measured.loss_rest == pytest.approx(0, abs=1e-15)
    # grad lambda = grad (t^T H t) = 2 (t . a) S t / sqrt(w) + a (t^T S t) / sqrt(w) for the top eigenvector t
    expected = (2 * (top @ a) * (swap @ top) + a * (top @ swap @ top)) / math.sqrt(width)
    torch.testing.assert_close(measured.sharpness_gradient, expected, rtol=1e-8, atol=1e-10)
    assert measured.kappa == pytest.approx(-g * float(expected @ a), rel=1e-8, abs=1e-14)


def test_uv_sharpness_rate_at_large_width_is_the_perturbative_value():
    """lambda_H = |a|^2 + 2 f g / (w |a|^2) + g^2 (1 - rho^2) / (w |a|^2) + O(w^(-3/2)) with
    rho = a^T S a / |a|^2 -> 0, and d/d eta of f and g along -grad L is -|a|^2 g, so
    kappa = -(4 f g + 2 g (f + g) + 2 g^2) / w + O(w^(-3/2)) = -(6 f g + 4 g^2) / w: the NTK's
    -4 f g / w (the uv map) plus the residual term of the Hessian."""
    width = 1600
    experiment = uv_experiment(width, 0.5)
    measured = measure_initial(experiment)
    u, v = (experiment.model.unflatten(experiment.theta0)[name].double() for name in ("u", "v"))
    f = float(v @ u) / math.sqrt(width)
    g = f - 0.5
    assert measured.kappa * width == pytest.approx(-(6 * f * g + 4 * g**2), abs=5 / math.sqrt(width))
