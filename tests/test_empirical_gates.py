"""Frozen ReLU gates, the polynomial ray and the analytic predictor, against independent oracles:
the true forward pass where no gate flips, forward-mode JVPs, finite differences, exact rays."""

import numpy as np
import pytest
import torch
from torch import nn

from earlyphase.core.critical import first_true
from earlyphase.core.grid import c_grid
from earlyphase.core.search import CGrid
from earlyphase.empirical import TrainConfig, prepare
from earlyphase.empirical.analytic import analytic_prediction, first_step_gradient
from earlyphase.empirical.functional import flatten_module
from earlyphase.empirical.gates import FrozenGatesUnavailable, GateFreezer, record_gates, replay_gates
from earlyphase.empirical.models import build_model
from earlyphase.empirical.ray_polynomial import degree_bound, frozen_ray

pytest_plugins = ["tests.empirical_helpers"]


def tiny(activation="relu", depth=3, seed=0):
    """A float64 bias-free FCN on 6 inputs, a batch x and a random direction g."""
    flat, theta0 = flatten_module(build_model("fcn", (5,), 3, depth, 8, activation, seed=seed), dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(7, 5, generator=generator, dtype=torch.float64)
    g = torch.randn(theta0.shape, generator=generator, dtype=torch.float64)
    return flat, theta0, x, g


def frozen_output(flat, theta0, g, x, eta):
    freezer, _ = record_gates(lambda: flat(theta0, x))
    with torch.no_grad():
        return replay_gates(freezer, lambda: flat(theta0 - eta * g, x))


def same_gates(flat, theta_a, theta_b, x):
    a, b = record_gates(lambda: flat(theta_a, x))[0], record_gates(lambda: flat(theta_b, x))[0]
    return all(torch.equal(p, q) for p, q in zip(a.gates, b.gates))


def test_polynomial_equals_the_forward_pass_where_no_gate_flips():
    flat, theta0, x, g = tiny()
    ray = frozen_ray(flat, theta0, g, x, eta_top=2.0, degree=degree_bound(flat))
    etas = [eta for eta in np.geomspace(1e-4, 2.0, 40) if same_gates(flat, theta0, theta0 - eta * g, x)]
    assert len(etas) >= 5 and max(etas) > 1e-2
    expected = np.stack([flat(theta0 - eta * g, x).detach().numpy() for eta in etas])
    np.testing.assert_allclose(ray.evaluate(np.array(etas)), expected, rtol=1e-10, atol=1e-12)
    flipped = [eta for eta in np.geomspace(1e-4, 2.0, 40) if eta not in etas]
    assert flipped, "the test must reach gate flips, where the frozen polynomial and the network part"
    assert not np.allclose(ray.evaluate(np.array(flipped[-1:]))[0], flat(theta0 - flipped[-1] * g, x).detach().numpy())


def test_linear_network_polynomial_is_exact_at_every_eta():
    flat, theta0, x, g = tiny("linear", depth=4)
    ray = frozen_ray(flat, theta0, g, x, eta_top=50.0, degree=4)
    assert ray.gate_calls == 0
    etas = np.linspace(0.0, 50.0, 11)
    expected = np.stack([flat(theta0 - eta * g, x).detach().numpy() for eta in etas])
    scale = np.abs(expected).max()  # rounding is relative to the largest value on [0, eta_top]
    np.testing.assert_allclose(ray.evaluate(etas) / scale, expected / scale, atol=1e-13)


def test_taylor_coefficients_are_the_jvp_and_the_second_difference():
    flat, theta0, x, g = tiny(depth=4)
    ray = frozen_ray(flat, theta0, g, x, eta_top=1.0, degree=4)
    taylor = ray.taylor()
    _, jvp = torch.func.jvp(lambda theta: flat(theta, x), (theta0,), (-g,))
    np.testing.assert_allclose(taylor[0], flat(theta0, x).detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(taylor[1], jvp.detach().numpy(), rtol=1e-9, atol=1e-10)
    h = 1e-4
    second = (
        frozen_output(flat, theta0, g, x, h)
        - 2 * frozen_output(flat, theta0, g, x, 0.0)
        + frozen_output(flat, theta0, g, x, -h)
    ) / (2 * h * h)
    np.testing.assert_allclose(taylor[2], second.numpy(), rtol=1e-6, atol=1e-6)
    assert np.abs(taylor[2]).max() > 1e-3  # a non-trivial second coefficient


def test_leaky_and_in_place_relu_are_frozen_too():
    torch.manual_seed(0)
    module = nn.Sequential(
        nn.Linear(5, 6, bias=False),
        nn.ReLU(inplace=True),
        nn.Linear(6, 6, bias=False),
        nn.LeakyReLU(0.2),
        nn.Linear(6, 2, bias=False),
    )
    flat, theta0 = flatten_module(module, dtype=torch.float64)
    x = torch.randn(9, 5, dtype=torch.float64)
    g = torch.randn_like(theta0)
    freezer, output = record_gates(lambda: flat(theta0, x))
    assert freezer.calls == 2 and freezer.slopes == [0.0, 0.2]
    torch.testing.assert_close(replay_gates(freezer, lambda: flat(theta0, x)), output)
    eta = 1e-6
    assert same_gates(flat, theta0, theta0 - eta * g, x)
    ray = frozen_ray(flat, theta0, g, x, eta_top=1e-5, degree=3)
    np.testing.assert_allclose(ray.evaluate(np.array([eta]))[0], flat(theta0 - eta * g, x).detach().numpy(), rtol=1e-10)


def test_other_nonlinearities_are_refused_with_their_name():
    flat, theta0, x, g = tiny("tanh")
    with pytest.raises(FrozenGatesUnavailable, match="tanh"):
        frozen_ray(flat, theta0, g, x, eta_top=1.0, degree=3)
    gelu = nn.Sequential(nn.Linear(5, 4), nn.GELU(), nn.Linear(4, 2))
    with pytest.raises(FrozenGatesUnavailable, match="gelu"):
        record_gates(lambda: gelu(x.float()))


def test_a_parameter_used_twice_fails_the_degree_check():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(5, 5))

        def forward(self, x):
            return torch.relu(x @ self.weight) @ self.weight

    flat, theta0 = flatten_module(Twice(), dtype=torch.float64)
    x = torch.randn(4, 5, dtype=torch.float64)
    g = torch.randn_like(theta0)
    with pytest.raises(FrozenGatesUnavailable, match="degree 1"):
        frozen_ray(flat, theta0, g, x, eta_top=1.0, degree=degree_bound(flat))
    assert frozen_ray(flat, theta0, g, x, eta_top=1.0, degree=2).check_error < 1e-10


def test_replay_refuses_a_different_sequence_of_gated_calls():
    x = torch.randn(3, 4)
    freezer = GateFreezer()
    with freezer.recording():
        torch.relu(x)
    with pytest.raises(ValueError, match="shape"), freezer.replaying():
        torch.relu(x[:2])
    with pytest.raises(ValueError, match="1 were recorded"), freezer.replaying():
        pass
    with pytest.raises(ValueError, match="more gated calls"), freezer.replaying():
        torch.relu(x)
        torch.relu(x)


def digits_experiment(activation, depth=3, width=16):
    config = TrainConfig.build(
        depth=depth,
        width=width,
        activation=activation,
        n_train=256,
        measure_size=256,
        batch_size=64,
        dtype="float64",
        barrier=False,
    )
    return prepare(config)


def exact_ratio(experiment, g0, c):
    return (
        np.array([experiment.probe.loss(experiment.theta0 - (ci / experiment.lambda0) * g0)[0] for ci in c])
        / experiment.loss0
    )


def test_predictor_reproduces_the_exact_ray_of_a_deep_linear_net():
    experiment = digits_experiment("linear", depth=4)
    grid = CGrid(0.0, 6.0, 0.1)
    g0, gradient_cost = first_step_gradient(experiment)
    values, cost, details = analytic_prediction(experiment, g0, grid, refreeze=0)
    c = c_grid(grid.x_min, grid.x_max, grid.x_step)
    exact = exact_ratio(experiment, g0, c)
    np.testing.assert_allclose(details.loss_ratio_at_init, exact, rtol=1e-9)
    assert values.c_loss == first_true("c_loss", c, exact > 1.0) and values.c_loss.found
    assert not values.c_max.found and "c_max" in details.not_predicted
    assert cost.forwards == 4 + 3 and gradient_cost.gradients == 1


def test_refrozen_polynomial_is_exact_at_its_anchor():
    experiment = digits_experiment("relu", depth=4, width=8)
    g0, _ = first_step_gradient(experiment)
    values, _, details = analytic_prediction(experiment, g0)
    assert len(details.anchors) >= 2
    anchor = details.anchors[-1]
    index = int(np.argmin(np.abs(details.c - anchor)))
    exact = exact_ratio(experiment, g0, details.c[index : index + 1])[0]
    assert details.loss_ratio[index] == pytest.approx(exact, rel=1e-9)
    assert values.c_loss.found and details.degree == 4 and details.taylor_rms.shape == (5,)
