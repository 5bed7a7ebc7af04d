"""Ensembles of depth-d linear networks under the early-window protocol (jit + vmap, float64).

Per seed: W0 (``linear.init_weights``), L_0 and lambda_H0 (Lanczos from the loss gradient plus a
little seeded noise). Per (seed, c) run, vmapped over c with W0 shared (one GEMM per layer for
the whole batch of c values): T steps of GD with eta = c / lambda_H0; after each step the loss,
the sharpness lambda_H_t (Lanczos in the range subspace of ``linear_hessian``, warm-started from
the previous eigenvector moved into the new subspace), its residual and HVP count, and
lambda_max(Theta) / (n k). A run is frozen at the first step where its loss diverges (``diverged``: core's rule, restated
in JAX for the loop's control flow; the recorded losses are judged by ``earlyphase.core``): that
step keeps its loss, later rows are NaN and cost no Lanczos work.
After the T steps, the barrier loss max_s L((1 - s) W0 + s W_T) over s = 0.01, .., 1
(``linear.path_outputs``: f(s) is a polynomial in s, one pass with d + 1 columns).

The compiled functions take the network with its LARGEST depth (static shapes) and the number
of hidden layers actually used as a traced value, so one compilation serves every depth of a
grid at a given width.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from earlyphase.core.critical import interpolation_grid
from earlyphase.core.eigen import TopEigenpair
from earlyphase.theory.lanczos import LanczosSettings, lanczos_top
from earlyphase.theory.linear import (
    Layers,
    LinearNet,
    empty_factors,
    gd_update,
    inputs,
    loss_gradient,
    mse,
    ntk_top,
    path_outputs,
    targets,
)
from earlyphase.theory.linear_hessian import Point, constrain, point_at, subspace_hessian, transfer
from earlyphase.theory.precision import jit_options


class SeedState(NamedTuple):
    """What every run of a seed starts from: W0, the point at W0 and its top eigenpair."""

    noise: jnp.ndarray
    """A seeded Gaussian direction in the subspace coordinates, mixed into every Lanczos start."""
    point: Point
    output: jnp.ndarray
    loss0: jnp.ndarray
    sharpness0: TopEigenpair[jnp.ndarray]
    ntk0: jnp.ndarray


def diverged(loss: jnp.ndarray, loss_max: float) -> jnp.ndarray:
    """``earlyphase.core.conventions.is_diverged`` (L not finite or L > L_max) in JAX, for the
    loop that freezes diverged runs (a host callback there deadlocks concurrent executions)."""
    return ~jnp.isfinite(loss) | (loss > loss_max)


def _unit(vector: jnp.ndarray) -> jnp.ndarray:
    return vector / jnp.maximum(jnp.linalg.norm(vector), jnp.finfo(vector.dtype).tiny)


def _start(direction: jnp.ndarray, noise: jnp.ndarray, unravel, point: Point, settings: LanczosSettings) -> jnp.ndarray:
    """unit(direction) + settings.noise * unit(Pi r): r the seed's random direction, Pi the constraint."""
    return _unit(direction) + settings.noise * _unit(ravel_pytree(constrain(unravel(noise), point.bases))[0])


def _seed_state(
    net: LinearNet, settings: LanczosSettings, hidden: jnp.ndarray, weights: Layers, key: jax.Array
) -> SeedState:
    x, y = inputs(net), targets(net)
    point, output = point_at(net, weights, empty_factors(net, 0, x.dtype), x, y, hidden)
    hessian = subspace_hessian(net, point)
    noise = jax.random.normal(key, hessian.gradient.shape, x.dtype)
    start = _start(hessian.gradient, noise, hessian.unravel, point, settings)
    return SeedState(
        noise=noise,
        point=point,
        output=output,
        loss0=mse(output, y),
        sharpness0=lanczos_top(hessian.matvec, start, settings),
        ntk0=ntk_top(net, point.layer_inputs, point.jacobians),
    )


def _run(
    net: LinearNet,
    steps: int,
    settings: LanczosSettings,
    loss_max: float,
    sharpness: jnp.ndarray,
    state: SeedState,
    c: jnp.ndarray,
) -> tuple[jnp.ndarray, ...]:
    x, y = inputs(net), targets(net)
    eta = c / state.sharpness0.value
    point0 = state.point
    unravel = subspace_hessian(net, point0).unravel
    nan = jnp.array(jnp.nan, x.dtype)

    def step(carry: tuple, t: jnp.ndarray) -> tuple:
        point, output, vector, alive = carry
        gradient = loss_gradient(net, point.layer_inputs, point.jacobians, output, y)
        factors = gd_update(point.factors, gradient, jnp.where(alive, eta, 0.0), t)
        new_point, output = point_at(net, point0.weights, factors, x, y, point0.hidden)
        loss = mse(output, y)
        measured = alive & ~diverged(loss, loss_max)
        moved = ravel_pytree(transfer(unravel(vector), point.bases, new_point.bases))[0]
        start = _start(moved, state.noise, unravel, new_point, settings)
        pair = lanczos_top(subspace_hessian(net, new_point).matvec, start, settings, measured & sharpness)
        record = (
            jnp.where(alive, loss, nan),
            jnp.where(measured, pair.value, nan),
            jnp.where(measured, pair.residual, nan),
            pair.matvecs,
            jnp.where(measured, ntk_top(net, new_point.layer_inputs, new_point.jacobians), nan),
        )
        return (new_point, output, jnp.where(measured & sharpness, pair.vector, start), measured), record

    factors = empty_factors(net, steps * net.examples, x.dtype)
    carry = (point0._replace(factors=factors), state.output, state.sharpness0.vector, jnp.array(True))
    (final, _, _, alive), records = jax.lax.scan(step, carry, jnp.arange(steps))  # type: ignore[var-annotated]
    first = (state.loss0, state.sharpness0.value, state.sharpness0.residual, state.sharpness0.matvecs, state.ntk0)
    s = jnp.asarray(interpolation_grid()[1:], x.dtype)  # s = 0 is L_0 itself (here only up to rounding)
    path = path_outputs(net, point0.weights, final.factors, x, point0.hidden, s)
    barrier = jnp.where(alive, jnp.max(jax.vmap(lambda f: mse(f, y))(path)), nan)  # max_s L(theta(s))
    return (*(jnp.concatenate([jnp.asarray(a, r.dtype)[None], r]) for a, r in zip(first, records)), barrier)


def chunk_program(
    net: LinearNet,
    steps: int,
    settings: LanczosSettings,
    loss_max: float,
    sharpness: jnp.ndarray,
    weights: Layers,
    keys: jax.Array,
    hidden: jnp.ndarray,
    c_values: jnp.ndarray,
) -> tuple[jnp.ndarray, ...]:
    """(loss, sharpness, residual, hvps, ntk_top), each (seeds, len(c_values), steps + 1), and
    barrier (seeds, len(c_values)): max over s = 0.01, .., 1 of L((1 - s) W0 + s W_T), NaN for
    a run that diverged (s = 0 is left out: it is L_0, which the polynomial reproduces only to
    rounding, and a rounding above L_0 must not count as a barrier).

    ``weights``: stacked W0 of the seeds (hidden stacks of ``net.depth - 2`` layers, the first
    ``hidden`` used); ``keys``: their Lanczos noise keys. ``sharpness`` (a traced bool, so
    both uses share one compilation) False skips every Lanczos solve after step 0 (NaN: the
    loss alone decides c_loss and c_max). Each seed's state at W0 is
    recomputed per chunk (a negligible cost next to the runs) so that this is one compilation.
    """
    states = jax.vmap(partial(_seed_state, net, settings, hidden))(weights, keys)
    per_seed = jax.vmap(partial(_run, net, steps, settings, loss_max, sharpness), in_axes=(None, 0))
    return jax.vmap(per_seed, in_axes=(0, None))(states, c_values)


def run_chunk(*args: Any, **kwargs: Any) -> tuple[jnp.ndarray, ...]:
    """``chunk_program`` compiled (once per static arguments) with the theory's ``jit_options``."""
    return _compiled_chunk_program()(*args, **kwargs)


@cache
def _compiled_chunk_program() -> Callable[..., tuple[jnp.ndarray, ...]]:
    return jax.jit(chunk_program, static_argnames=("net", "steps", "settings", "loss_max"), **jit_options())
