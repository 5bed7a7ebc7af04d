"""Depth-d linear networks: factored model, subspace HVPs and sharpness against dense autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from earlyphase.theory.lanczos import LanczosSettings, lanczos_top
from earlyphase.theory.linear import (
    Layers,
    LinearNet,
    LowRank,
    dense_loss,
    effective_weights,
    empty_factors,
    init_weights,
    inputs,
    loss_gradient,
    mse,
    ntk_top,
    targets,
)
from earlyphase.theory.linear_hessian import constrain, point_at, subspace_hessian
from earlyphase.theory.precision import x64
from earlyphase.theory.predict import predict_critical_values, predict_grid, sharpness_ratio
from earlyphase.theory.uv import uv_init

TIGHT = LanczosSettings(iterations=40, max_cycles=10, tol=1e-11)

CASES = [
    # (net, unused hidden slots): padded depth, n and k > 1, ntk, y != 0 / no hidden layer, standard
    (LinearNet(4, 5, examples=2, outputs=3, input_dim=3, parameterization="ntk", sigma_w2=2.0, target=0.4), 2),
    (LinearNet(2, 6, target=-0.3), 1),
]


@pytest.fixture(autouse=True)
def float64():
    with x64():
        yield


def _padded(net: LinearNet, pad: int) -> LinearNet:
    return LinearNet(
        net.depth + pad,
        net.width,
        net.examples,
        net.outputs,
        net.input_dim,
        net.parameterization,
        net.sigma_w2,
        net.target,
    )


def _perturbed(net: LinearNet, pad: int):
    """W0 of ``net`` stored with ``pad`` unused hidden slots, and random rank-4 factors U V^T."""
    weights = Layers(*(jnp.asarray(w[0]) for w in init_weights(net, [3], net.hidden + pad)))
    keys = iter(jax.random.split(jax.random.PRNGKey(1), 6))
    factors = Layers(
        *(
            LowRank(0.3 * jax.random.normal(next(keys), f.u.shape), 0.3 * jax.random.normal(next(keys), f.v.shape))
            for f in empty_factors(_padded(net, pad), 4)
        )
    )
    return weights, factors._replace(hidden=LowRank(*(a.at[net.hidden :].set(0.0) for a in factors.hidden)))


def _as_dense(layers: Layers, hidden: int) -> jnp.ndarray:
    return ravel_pytree(layers._replace(hidden=layers.hidden[:hidden]))[0]


def _dense_direction(coords, bases, hidden: int) -> jnp.ndarray:
    """The layer matrices B P^T + Q C^T of subspace coordinates, flattened (used hidden layers only)."""
    t = lambda m: jnp.swapaxes(m, -1, -2)  # noqa: E731
    return _as_dense(Layers(*(b.left @ t(c.p) + c.q @ t(b.right) for c, b in zip(coords, bases))), hidden)


def _outputs(net: LinearNet, weights: Layers) -> jnp.ndarray:
    scale = net.multipliers
    h = scale.first * weights.first @ inputs(net)
    for weight in weights.hidden:
        h = scale.hidden * weight @ h
    return (scale.readout * weights.readout @ h).ravel()


@pytest.mark.parametrize("net,pad", CASES)
def test_loss_gradient_hvp_and_top_eigenvalue_against_dense_autodiff(net, pad):
    padded = _padded(net, pad)
    weights, factors = _perturbed(net, pad)
    x, y = inputs(net), targets(net)

    @jax.jit
    def factored(weights, factors):
        point, output = point_at(padded, weights, factors, x, y, net.hidden)
        operator = subspace_hessian(padded, point)
        gradient = effective_weights(
            jax.tree.map(jnp.zeros_like, weights), loss_gradient(padded, point.layer_inputs, point.jacobians, output, y)
        )
        directions = jax.random.normal(jax.random.PRNGKey(7), (3, operator.gradient.size))
        as_dense = jax.vmap(lambda v: _dense_direction(operator.unravel(v), point.bases, net.hidden))
        constrained = jax.vmap(lambda v: ravel_pytree(constrain(operator.unravel(v), point.bases))[0])(directions)
        products = (as_dense(constrained), as_dense(jax.vmap(operator.matvec)(directions)))
        pair = lanczos_top(operator.matvec, operator.gradient, TIGHT)
        return (
            mse(output, y),
            _as_dense(gradient, net.hidden),
            _dense_direction(operator.unravel(operator.gradient), point.bases, net.hidden),
            products,
            pair,
            ntk_top(padded, point.layer_inputs, point.jacobians),
        )

    flat, unravel = ravel_pytree(
        effective_weights(weights, factors)._replace(hidden=effective_weights(weights, factors).hidden[: net.hidden])
    )

    @jax.jit
    def dense(flat):
        loss = lambda theta: dense_loss(net, unravel(theta), x, y)  # noqa: E731
        jacobian = jax.jacfwd(lambda theta: _outputs(net, unravel(theta)))(flat)
        return loss(flat), jax.grad(loss)(flat), jax.hessian(loss)(flat), jacobian @ jacobian.T

    loss, gradient, gradient_coords, products, pair, ntk = factored(weights, factors)
    dense_value, dense_gradient, hessian, theta = dense(flat)
    hessian = np.asarray(hessian)
    assert float(loss) == pytest.approx(float(dense_value), rel=1e-12)
    np.testing.assert_allclose(gradient, dense_gradient, atol=1e-12)
    np.testing.assert_allclose(gradient_coords, dense_gradient, atol=1e-12)  # the gradient lies in S
    directions, images = products  # Pi H Pi v mapped back to layers == dense H (Pi v)
    np.testing.assert_allclose(images, np.asarray(directions) @ hessian, atol=1e-11 * np.abs(hessian).max())
    assert float(pair.value) == pytest.approx(np.linalg.eigvalsh(hessian)[-1], rel=1e-10)
    assert float(pair.residual) <= 1e-9
    assert float(ntk) == pytest.approx(
        np.linalg.eigvalsh(np.asarray(theta))[-1] / (net.examples * net.outputs), rel=1e-10
    )


def _dense_replay(net: LinearNet, seed: int, c: float, steps: int):
    """GD on the dense weights with autodiff, the top Hessian eigenvalue by eigh at every step,
    and the largest loss on the straight path from the initial to the final weights."""
    weights = Layers(*(jnp.asarray(w[0]) for w in init_weights(net, [seed])))
    flat, unravel = ravel_pytree(weights)
    x, y = inputs(net), targets(net)
    loss = jax.jit(lambda theta: dense_loss(net, unravel(theta), x, y))
    grad, hess = jax.jit(jax.grad(loss)), jax.jit(jax.hessian(loss))
    losses, tops = [], []
    eta, start = None, flat
    for step in range(steps + 1):
        losses.append(float(loss(flat)))
        tops.append(np.linalg.eigvalsh(np.asarray(hess(flat)))[-1])
        eta = c / tops[0] if eta is None else eta
        if step < steps:
            flat = flat - eta * grad(flat)
    barrier = max(float(loss((1 - s) * start + s * flat)) for s in np.linspace(0.0, 1.0, 101)[1:])
    return np.array(losses), np.array(tops), barrier


TINY = {
    "seeds": 3,
    "examples": 2,
    "outputs": 2,
    "parameterization": "ntk",
    "target": 0.5,
    "steps": 6,
    "lanczos": LanczosSettings(tol=1e-9),
}
"""Depth 3, width 5: every ensemble test below shares this one compilation."""


@pytest.fixture(scope="module")
def tiny():
    with x64():
        return predict_critical_values("linear", 3, 5, **TINY)


def test_runs_match_dense_gd_and_dense_eigh_step_by_step(tiny):
    net = tiny.config.net
    measured = np.isfinite(tiny.sweep.sharpness[0, :, 1])
    assert measured.sum() >= 16  # the first chunk at least
    for seed in range(2):
        for index in (0, 10, 14):  # c = 1, 2, 2.64
            c = tiny.sweep.c[index]
            losses, tops, barrier = _dense_replay(net, tiny.config.seed_list[seed], c, tiny.config.steps)
            np.testing.assert_allclose(tiny.sweep.loss[seed, index], losses, rtol=1e-9, atol=1e-14)
            assert tiny.sweep.barrier[seed, index] == pytest.approx(barrier, rel=1e-9)
            np.testing.assert_allclose(tiny.sweep.sharpness[seed, index], tops, rtol=1e-9)
            assert np.nanmax(tiny.sweep.residual[seed, index]) <= tiny.config.lanczos.tol


def test_depth_two_ntk_linear_network_is_the_uv_model():
    """Same seeds draw the same u, v; thresholds, losses and sharpness agree."""
    u, v = uv_init(64, [0, 1, 2])
    weights = init_weights(LinearNet(2, 64, parameterization="ntk"), [0, 1, 2])
    np.testing.assert_array_equal(weights.first[:, :, 0], u)
    np.testing.assert_array_equal(weights.readout[:, 0, :], v)
    linear = predict_critical_values(
        "linear", 2, 64, seeds=3, parameterization="ntk", lanczos=LanczosSettings(tol=1e-10)
    )
    uv = predict_critical_values("uv", 2, 64, seeds=3)
    assert linear.critical == uv.critical
    scanned = linear.sweep.c.size
    # GD near c_max is chaotic: rounding differences grow to ~1e-8 there
    np.testing.assert_allclose(linear.sweep.loss, uv.sweep.loss[:, :scanned], rtol=1e-6, atol=1e-12)
    both = np.isfinite(linear.sweep.sharpness)
    np.testing.assert_allclose(linear.sweep.sharpness[both], uv.sweep.sharpness[:, :scanned][both], rtol=1e-7)
    np.testing.assert_allclose(linear.sweep.barrier, uv.sweep.barrier[:, :scanned], rtol=1e-6, atol=1e-12)


def test_c_max_at_least_c_loss_for_every_seed(tiny):
    loss = tiny.sweep.loss
    for seed, cv in enumerate(tiny.critical):
        assert cv.c_loss.found and cv.c_max.found
        assert cv.c_max.estimate >= cv.c_loss.estimate
        # from the recorded losses directly: the first c whose L_t exceeds L_0 (or is not finite)
        rises = [not np.all(np.isfinite(run)) or bool(np.any(run[1:] > run[0])) for run in loss[seed]]
        first = rises.index(True)
        assert first > 0 and (cv.c_loss.estimate, cv.c_loss.low, cv.c_loss.high) == (
            tiny.sweep.c[first],
            tiny.sweep.c[first - 1],
            tiny.sweep.c[first],
        )
    summary = tiny.summaries["c_loss"]
    estimates = [cv.c_loss.estimate for cv in tiny.critical]
    assert summary.mean == pytest.approx(np.mean(estimates)) and summary.std == pytest.approx(np.std(estimates))


def test_identical_seeds_give_identical_results(tiny):
    again = predict_critical_values("linear", 3, 5, **TINY)
    assert again.critical == tiny.critical
    np.testing.assert_array_equal(again.sweep.loss, tiny.sweep.loss)
    np.testing.assert_array_equal(again.sweep.sharpness, tiny.sweep.sharpness)


def test_grid_rows_agree_with_single_predictions(tiny):
    # the grid runs depth 3 inside a network compiled for depth 4 (one unused hidden slot); ``tiny``
    # is depth 3 compiled for depth 3: the padding must change nothing
    table = predict_grid("linear", depths=(3, 4), widths=(5,), progress=False, **TINY)
    assert sorted(table["boundary"].unique()) == ["c_barrier", "c_loss", "c_max", "c_sharp"]
    rows = table[table["depth"] == 3].set_index("boundary")
    for name in ("c_loss", "c_sharp", "c_max", "c_barrier"):
        summary = tiny.summaries[name]
        assert rows.loc[name, "found"] == summary.found
        for key in ("mean", "low", "high"):
            assert rows.loc[name, key] == pytest.approx(getattr(summary, key), rel=1e-12), (name, key)
    assert rows.loc["c_loss", "lambda0_mean"] == pytest.approx(float(np.mean(tiny.lambda0)), rel=1e-9)
    assert np.allclose(table["d_over_w"], table["depth"] / table["width"])
    assert (table["seeds"] == 3).all() and set(table["depth"]) == {3, 4}


def test_sharpness_ratio_is_the_recorded_one(tiny):
    index = 12
    ratio = sharpness_ratio("linear", 3, 5, c=float(tiny.sweep.c[index]), **TINY)
    recorded = tiny.sweep.sharpness[:, index, -1] / tiny.sweep.sharpness[:, index, 0]
    np.testing.assert_allclose(ratio, recorded, rtol=1e-9)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"width": 0}, "width"),
        ({"depth": 1}, "depth"),
        ({"seeds": 0}, "seeds"),
        ({"model": "resnet"}, "model"),
        ({"examples": 0}, "examples"),
        ({"parameterization": "mup"}, "parameterization"),
        ({"x_min": 5.0, "x_max": 4.0}, "x_min"),
        ({"x_min": float("nan")}, "x_min"),
    ],
)
def test_bad_input_names_the_parameter(options, message):
    arguments = {"model": "linear", "depth": 3, "width": 8, "seeds": 2, **options}
    with pytest.raises(ValueError, match=message):
        predict_critical_values(**arguments)


def test_a_shifted_grid_scans_its_own_lattice_and_brackets_the_same_thresholds(tiny):
    # x_min = 0.05 puts every grid point halfway between two of the reference grid's (x_step 0.1)
    shifted = predict_critical_values("linear", 3, 5, **{**TINY, "x_min": 0.05})
    np.testing.assert_allclose(np.log2(shifted.sweep.c), 0.05 + 0.1 * np.arange(shifted.sweep.c.size), atol=1e-9)
    for reference, moved in zip(tiny.critical, shifted.critical):
        for name in ("c_loss", "c_max"):
            a, b = getattr(reference, name), getattr(moved, name)
            assert a.found and b.found
            assert abs(np.log2(b.estimate) - np.log2(a.estimate)) == pytest.approx(0.05, abs=1e-9)


def test_bad_c_for_the_sharpness_ratio():
    with pytest.raises(ValueError, match="c must be"):
        sharpness_ratio("uv", 2, 16, c=0.0, seeds=2)
    with pytest.raises(ValueError, match="c must be"):
        sharpness_ratio("uv", 2, 16, c=-1.0, seeds=2)


def test_the_loop_freezes_runs_by_the_core_divergence_rule():
    from earlyphase.core import is_diverged
    from earlyphase.theory.linear_ensemble import diverged

    loss_max = 1e5
    values = np.array([0.0, 1.0, loss_max, np.nextafter(loss_max, np.inf), 1e300, np.inf, -np.inf, np.nan, -1.0])
    np.testing.assert_array_equal(np.asarray(diverged(jnp.asarray(values), loss_max)), is_diverged(values, loss_max))
