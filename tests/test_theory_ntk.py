"""NTK-scale dynamics: the linearised model and the infinite-width kernel recursion."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import erf

from earlyphase.core.search import CGrid
from earlyphase.theory.ntk import (
    infinite_width_ntk,
    layer_contributions,
    linearized_critical_values,
    linearized_spectral_radius,
    linearized_trajectories,
    predicted_sharpness0,
)
from earlyphase.theory.precision import x64


@pytest.fixture(autouse=True)
def float64():
    with x64():
        yield


@pytest.fixture
def kernel():
    """A random positive-definite NTK over 3 examples x 2 outputs and an initial residual."""
    rng = np.random.default_rng(0)
    jacobian = rng.standard_normal((6, 40))
    return jacobian @ jacobian.T, rng.standard_normal(6)


def test_linearised_loss_is_the_iterated_map(kernel):
    theta, g0 = kernel
    loss, sharpness = linearized_trajectories(theta, g0, [0.7, 1.9, 2.3], steps=5)
    lam = np.linalg.eigvalsh(theta)[-1] / 6
    for row, c in enumerate([0.7, 1.9, 2.3]):
        g = g0.copy()
        for t in range(6):
            assert loss[row, t] == pytest.approx(g @ g / 12, rel=1e-10)
            g = g - (c / lam) * theta @ g / 6
    np.testing.assert_allclose(sharpness, lam)


def test_no_catapult_and_divergence_exactly_above_two(kernel):
    theta, g0 = kernel
    grid = CGrid(0.0, 3.0)
    loss, _ = linearized_trajectories(theta, g0, grid.values[grid.values <= 2], steps=200)
    assert np.all(np.diff(loss, axis=-1) <= 1e-12 * loss[:, :1])  # c <= 2: the loss never rises
    cv = linearized_critical_values(theta, g0, grid, steps=2000)
    assert cv.c_max.estimate == 2.0 and cv.c_max.high == pytest.approx(2**1.1)
    assert not cv.c_sharp.found  # the sharpness never moves
    radius = linearized_spectral_radius(theta, [1.0, 2.0, 2.0 + 1e-9, 3.0])
    assert radius[1] == pytest.approx(1.0, abs=1e-12) and radius[0] < 1 < radius[2] and radius[3] > 1


def _empirical_ntk(x, depth, width, activation, parameterization, sigma_w2, seed):
    """Theta = J J^T of a random FCN (no biases) built here, over the n inputs x (n x d_in)."""
    phi = {"relu": jax.nn.relu, "erf": erf, "linear": lambda z: z}[activation]
    fan_in = [x.shape[1]] + [width] * (depth - 1)
    fan_out = [width] * (depth - 1) + [1]
    variance = [sigma_w2] * (depth - 1) + [1.0]
    keys = jax.random.split(jax.random.PRNGKey(seed), depth)
    if parameterization == "ntk":
        params = [jax.random.normal(k, (o, i)) for k, o, i in zip(keys, fan_out, fan_in)]
        scale = [np.sqrt(v / i) for v, i in zip(variance, fan_in)]
    else:
        params = [np.sqrt(v / i) * jax.random.normal(k, (o, i)) for k, o, i, v in zip(keys, fan_out, fan_in, variance)]
        scale = [1.0] * depth

    def f(ps):
        h = jnp.asarray(x).T
        for layer, (p, s) in enumerate(zip(ps, scale)):
            h = s * p @ h
            h = phi(h) if layer < depth - 1 else h
        return h.ravel()

    jac = jax.jacrev(f)(params)
    flat = jnp.concatenate([j.reshape(x.shape[0], -1) for j in jac], axis=1)
    return np.asarray(flat @ flat.T)


@pytest.mark.parametrize(
    "activation,parameterization,sigma_w2",
    [
        ("relu", "ntk", 2.0),
        ("erf", "ntk", 1.5),
        # slow: the standard parameterisation is the ntk one plus the exact width scaling of
        # test_standard_parameterisation_grows_with_width_ntk_does_not; the linear net has the
        # closed form of test_linear_activation_has_the_closed_form
        pytest.param("relu", "standard", 2.0, marks=pytest.mark.slow),
        pytest.param("linear", "standard", 1.0, marks=pytest.mark.slow),
    ],
)
def test_recursion_matches_a_wide_random_network(activation, parameterization, sigma_w2):
    x = np.random.default_rng(3).standard_normal((4, 6))
    width, depth = 2048, 3
    empirical = np.mean(
        [_empirical_ntk(x, depth, width, activation, parameterization, sigma_w2, s) for s in range(3)], axis=0
    )
    predicted = infinite_width_ntk(x, depth, activation, parameterization, sigma_w2, width=width)
    assert np.abs(empirical - predicted).max() <= 0.04 * np.abs(predicted).max()
    assert np.linalg.eigvalsh(empirical)[-1] == pytest.approx(np.linalg.eigvalsh(predicted)[-1], rel=0.04)


def test_standard_parameterisation_grows_with_width_ntk_does_not():
    x = np.random.default_rng(1).standard_normal((3, 5))
    small, large = (infinite_width_ntk(x, 4, "relu", "standard", 2.0, width=w) for w in (100, 200))
    first = layer_contributions(x, 4, "relu", 2.0)[0] * 5 / 2.0  # the input layer's share, fan_in = d_in
    np.testing.assert_allclose(large - first, 2 * (small - first), rtol=1e-12)
    with pytest.raises(ValueError, match="width"):
        infinite_width_ntk(x, 4, "relu", "standard", 2.0)


def test_linear_activation_has_the_closed_form():
    """Linear network, ntk parameterisation: Theta^(l) = (prod_l sigma_l^2) X X^T / d_in for every layer."""
    x = np.random.default_rng(2).standard_normal((3, 4))
    theta = infinite_width_ntk(x, 5, "linear", "ntk", sigma_w2=1.3, sigma_out2=0.7)
    np.testing.assert_allclose(theta, 5 * 1.3**4 * 0.7 * x @ x.T / 4, rtol=1e-12)


def test_predicted_sharpness_matches_the_uv_model_at_large_width():
    """The uv model is the depth-2 linear network in ntk parameterisation on x = 1: its exact
    lambda_H0 (closed form) averages to lambda_max(Theta) from the recursion."""
    from earlyphase.theory.uv import uv_init, uv_ntk, uv_output, uv_sharpness

    width = 4096
    u, v = uv_init(width, list(range(64)))
    measured = uv_sharpness(uv_output(u, v), uv_ntk(u, v), 0.0, width)
    predicted = predicted_sharpness0(np.ones((1, 1)), 1, 2, "linear", "ntk", sigma_w2=1.0)
    assert predicted == 2.0
    assert np.mean(measured) == pytest.approx(predicted, rel=0.01)


def test_tanh_and_unknown_activations_are_refused():
    x = np.eye(2)
    with pytest.raises(ValueError, match="erf"):
        infinite_width_ntk(x, 2, "tanh")
    with pytest.raises(ValueError, match="activation"):
        infinite_width_ntk(x, 2, "gelu")


@pytest.mark.parametrize("activation", ["relu", "erf", "linear"])
@pytest.mark.parametrize("parameterization", ["ntk", "standard"])
@pytest.mark.parametrize("sigma_w2", [1.0, 2.0])
def test_neural_tangents_analytic_kernel(activation, parameterization, sigma_w2):
    """The recursion against neural-tangents' analytic NTK (the ``ntk`` extra); in standard
    parameterisation both are the kernel of a width-64 network to leading order in the width."""
    nt = pytest.importorskip("neural_tangents")
    stax = nt.stax
    phi = {"relu": stax.Relu(), "erf": stax.Erf(), "linear": stax.Identity()}[activation]
    x = np.random.default_rng(5).standard_normal((4, 7))
    width = 64
    layers = []
    for _ in range(3):
        layers += [stax.Dense(width, W_std=np.sqrt(sigma_w2), b_std=None, parameterization=parameterization), phi]
    _, _, kernel_fn = stax.serial(*layers, stax.Dense(1, W_std=1.0, b_std=None, parameterization=parameterization))
    expected = np.asarray(kernel_fn(x, None, "ntk"))
    got = infinite_width_ntk(
        x, 4, activation, parameterization, sigma_w2, width=width if parameterization == "standard" else None
    )
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12 * np.abs(expected).max())


def test_sigma_w2_defaults_to_the_activations():
    x = np.random.default_rng(2).standard_normal((3, 5))
    for activation, sigma_w2 in (("relu", 2.0), ("linear", 1.0), ("erf", 1.0)):
        np.testing.assert_array_equal(
            infinite_width_ntk(x, 3, activation), infinite_width_ntk(x, 3, activation, sigma_w2=sigma_w2)
        )
