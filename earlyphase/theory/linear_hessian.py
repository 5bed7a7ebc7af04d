"""Exact top Hessian eigenvalue of a deep linear network, in the subspace that holds its range.

For L(W_1 .. W_d) (``earlyphase.theory.linear``) the gradient at layer l is
s_l J_l G h_{l-1}^T, so a Hessian-vector product (its derivative along a direction D) is

    (H D)_l = s_l [ (Jdot_l G + J_l Gdot) h_{l-1}^T + J_l G hdot_{l-1}^T ],

with the forward tangent  hdot_l = s_l (W_l hdot_{l-1} + D_l h_{l-1})  (hdot_0 = 0), the output
tangent Gdot = hdot_d / (n k), and the backward tangent  Jdot_{l-1} = s_l (W_l^T Jdot_l + D_l^T J_l)
(Jdot_d = 0). Every layer of H D is  J_l A^T + B h_{l-1}^T, hence

    range(H)  is inside  S = (+)_l { B_l P_l^T + Q_l C_l^T :  B_l^T Q_l = 0 },

B_l, C_l orthonormal bases of span(J_l) (rank <= k) and span(h_{l-1}) (rank <= n). The coordinates
(P_l, Q_l) with B^T Q = 0 are isometric, |B P^T + Q C^T|_F^2 = |P|^2 + |Q|^2. Lanczos runs on all
(P, Q) with the symmetric operator Pi H|_S Pi, Pi: Q -> (I - B B^T) Q (so rounding noise outside
the constraint can never make it unsymmetric); its spectrum is that of H|_S plus zeros. H is
symmetric and vanishes on S^perp, so whenever S is a proper subspace (``net.subspace_dimension <
net.num_params``) or lambda_max(H) >= 0,

    lambda_max(H) = lambda_max(Pi H|_S Pi),

and


    P_l <- (H D)_l^T B_l = s_l [ h_{l-1} A_l^T B_l + hdot_{l-1} G^T J_l^T B_l ],   A_l = Jdot_l G + J_l Gdot,
    Q_l <- (I - B_l B_l^T)(H D)_l C_l = s_l (I - B_l B_l^T) [ A_l h_{l-1}^T C_l + J_l G hdot_{l-1}^T C_l ],

with D_l h = B (P^T h) + Q (C^T h) and D_l^T J = P (B^T J) + C (Q^T J): an HVP costs one forward
and one backward product with every W_l, on a vector of about sum_l (fan_in k + fan_out n) numbers
instead of sum_l fan_in fan_out. The top eigenpair comes from ``earlyphase.theory.lanczos``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from earlyphase.theory.linear import (
    Layers,
    LinearNet,
    LowRank,
    apply,
    apply_transposed,
    forward,
    hidden_layer,
    hidden_loop,
    output_jacobians,
    thin,
)
from earlyphase.theory.linear import transpose as _t

GRAM_RTOL = 1e-12
"""Directions with Gram eigenvalue below GRAM_RTOL * the largest are dropped from a basis."""


class Bases(NamedTuple):
    """B (fan_out x k): basis of span(J_l); C (fan_in x n): basis of span(h_{l-1})."""

    left: jnp.ndarray
    right: jnp.ndarray


class Coordinates(NamedTuple):
    """A direction B P^T + Q C^T: P (fan_in x k), Q (fan_out x n) with B^T Q = 0."""

    p: jnp.ndarray
    q: jnp.ndarray


class Point(NamedTuple):
    """Everything the HVPs at one parameter point need (computed once per solve)."""

    weights: Layers
    factors: Layers
    layer_inputs: Layers
    jacobians: Layers
    residual: jnp.ndarray
    """G = (f - Y) / (n k)."""
    bases: Layers
    hidden: jnp.ndarray


def orthonormal_columns(matrix: jnp.ndarray) -> jnp.ndarray:
    """Orthonormal basis of the column span, M V diag(mu)^(-1/2) from M^T M = V diag(mu) V^T;
    columns with mu <= GRAM_RTOL max(mu) (rank deficiency, or an unused zero layer) are zero.
    One column (n or k = 1): M / |M| (0 for M = 0), without a batched eigendecomposition."""
    if matrix.shape[-1] == 1:
        norm = jnp.sqrt(jnp.sum(matrix * matrix, axis=-2, keepdims=True))
        return jnp.where(norm > 0, matrix / jnp.where(norm > 0, norm, 1.0), 0.0)
    mu, vectors = jnp.linalg.eigh(thin(_t(matrix), matrix))
    keep = mu > GRAM_RTOL * mu[..., -1:]
    scale = jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, mu, 1.0)), 0.0)
    return thin(matrix, vectors * scale[..., None, :])


def subspace_bases(layer_inputs: Layers[jnp.ndarray], jacobians: Layers[jnp.ndarray]) -> Layers[Bases]:
    """B_l = basis of span(J_l), C_l = basis of span(h_{l-1}), for every layer."""
    return Layers(*(Bases(orthonormal_columns(j), orthonormal_columns(h)) for j, h in zip(jacobians, layer_inputs)))


def _complement(b: Bases, q: jnp.ndarray) -> jnp.ndarray:
    """(I - B B^T) Q."""
    return q - thin(b.left, thin(_t(b.left), q))


def transfer(coords: Layers[Coordinates], old: Layers[Bases], new: Layers[Bases]) -> Layers[Coordinates]:
    """Coordinates in ``new`` of the orthogonal projection onto S_new of D = B_old P^T + Q C_old^T:
    P' = D^T B_new, Q' = (I - B_new B_new^T) D C_new (a warm start along a trajectory)."""

    def one(c: Coordinates, o: Bases, n: Bases) -> Coordinates:
        p = thin(c.p, thin(_t(o.left), n.left)) + thin(o.right, thin(_t(c.q), n.left))
        q = thin(o.left, thin(_t(c.p), n.right)) + thin(c.q, thin(_t(o.right), n.right))
        return Coordinates(p, _complement(n, q))

    return Layers(*(one(c, o, n) for c, o, n in zip(coords, old, new)))


def _direction(c: Coordinates, b: Bases) -> tuple[Callable, Callable]:
    """D h = B (P^T h) + Q (C^T h) and D^T j = P (B^T j) + C (Q^T j) for D = B P^T + Q C^T."""
    right = lambda h: thin(b.left, thin(_t(c.p), h)) + thin(c.q, thin(_t(b.right), h))  # noqa: E731
    left = lambda j: thin(c.p, thin(_t(b.left), j)) + thin(b.right, thin(_t(c.q), j))  # noqa: E731
    return right, left


def _hidden_at(layers: Layers, j: jnp.ndarray):
    return type(layers.hidden)(*(field[j] for field in layers.hidden))


def _coordinates_of(
    net: LinearNet,
    point: Point,
    input_tangents: Layers[jnp.ndarray],
    jacobian_tangents: Layers[jnp.ndarray],
    residual_tangent: jnp.ndarray,
) -> Layers[Coordinates]:
    """(P, Q) of the layer matrices s_l [(Jdot G + J Gdot) h^T + J G hdot^T] (module docstring)."""
    g, gdot = point.residual, residual_tangent

    def one(s, h, hdot, jac, jdot, b: Bases) -> Coordinates:
        a = thin(jdot, g) + thin(jac, gdot)
        p = s * (thin(h, thin(_t(a), b.left)) + thin(hdot, thin(_t(g), thin(_t(jac), b.left))))
        q = s * _complement(b, thin(a, thin(_t(h), b.right)) + thin(jac, thin(g, thin(_t(hdot), b.right))))
        return Coordinates(p, q)

    return Layers(
        *(
            one(*args)
            for args in zip(
                net.multipliers, point.layer_inputs, input_tangents, point.jacobians, jacobian_tangents, point.bases
            )
        )
    )


def gradient_coordinates(net: LinearNet, point: Point) -> Layers[Coordinates]:
    """dL/dtheta = s_l J_l G h_{l-1}^T in the coordinates of S."""
    # A = Jdot G + J Gdot with Jdot = 0, Gdot = G, and no hdot term: A h^T = J G h^T.
    zero_inputs = Layers(*(jnp.zeros_like(h) for h in point.layer_inputs))
    zero_jacobians = Layers(*(jnp.zeros_like(j) for j in point.jacobians))
    g = point.residual
    return _coordinates_of(net, point._replace(residual=jnp.zeros_like(g)), zero_inputs, zero_jacobians, g)


def hvp(net: LinearNet, point: Point, coords: Layers[Coordinates]) -> Layers[Coordinates]:
    """H|_S applied to a direction given by its coordinates (module docstring)."""
    scale = net.multipliers
    weights, factors, h_in, jac = point.weights, point.factors, point.layer_inputs, point.jacobians
    move = Layers(*(_direction(c, b) for c, b in zip(coords, point.bases)))

    def hidden_move(j: jnp.ndarray) -> tuple[Callable, Callable]:
        return _direction(_hidden_at(coords, j), _hidden_at(point.bases, j))

    # forward tangent hdot_l = s_l (W_l hdot_{l-1} + D_l h_{l-1}), hdot_0 = 0
    def forward_layer(j: jnp.ndarray, carry: tuple) -> tuple:
        hdot, stack = carry
        weight, low_rank = hidden_layer(weights, factors, j)
        nxt = apply(weight, low_rank, scale.hidden, hdot) + scale.hidden * hidden_move(j)[0](h_in.hidden[j])
        return nxt, stack.at[j].set(hdot)

    hdot = scale.first * move.first[0](h_in.first)
    hdot, hdot_stack = hidden_loop(point.hidden, forward_layer, (hdot, jnp.zeros_like(h_in.hidden)))
    fdot = apply(weights.readout, factors.readout, scale.readout, hdot) + scale.readout * move.readout[0](h_in.readout)
    input_tangents = Layers(jnp.zeros_like(h_in.first), hdot_stack, hdot)

    # backward tangent Jdot_{l-1} = s_l (W_l^T Jdot_l + D_l^T J_l), Jdot_d = 0
    def backward_layer(i: jnp.ndarray, carry: tuple) -> tuple:
        jdot, stack = carry
        j = point.hidden - 1 - i
        weight, low_rank = hidden_layer(weights, factors, j)
        nxt = apply_transposed(weight, low_rank, scale.hidden, jdot) + scale.hidden * hidden_move(j)[1](jac.hidden[j])
        return nxt, stack.at[j].set(jdot)

    jdot = scale.readout * move.readout[1](jac.readout)
    jdot, jdot_stack = hidden_loop(point.hidden, backward_layer, (jdot, jnp.zeros_like(jac.hidden)))
    jacobian_tangents = Layers(jdot, jdot_stack, jnp.zeros_like(jac.readout))
    return _coordinates_of(net, point, input_tangents, jacobian_tangents, fdot / fdot.size)


def constrain(coords: Layers[Coordinates], bases: Layers[Bases]) -> Layers[Coordinates]:
    """Pi: Q <- (I - B B^T) Q in every layer."""
    return Layers(*(Coordinates(c.p, _complement(b, c.q)) for c, b in zip(coords, bases)))


class SubspaceHessian(NamedTuple):
    """Pi H|_S Pi as a matrix-free operator on flat coordinate vectors, and dL/dtheta in them."""

    matvec: Callable[[jnp.ndarray], jnp.ndarray]
    gradient: jnp.ndarray
    unravel: Callable[[jnp.ndarray], Layers[Coordinates]]


def subspace_hessian(net: LinearNet, point: Point) -> SubspaceHessian:
    """The operator v -> Pi H|_S Pi v on ravelled coordinates."""
    flat_gradient, unravel = ravel_pytree(gradient_coordinates(net, point))

    def matvec(vector: jnp.ndarray) -> jnp.ndarray:
        return ravel_pytree(hvp(net, point, constrain(unravel(vector), point.bases)))[0]

    return SubspaceHessian(matvec, flat_gradient, unravel)


def point_at(
    net: LinearNet, weights: Layers, factors: Layers[LowRank], x: jnp.ndarray, y: jnp.ndarray, hidden: jnp.ndarray
):
    """Forward pass, Jacobians, residual and bases at W0 + U V^T: (Point, output f)."""
    layer_inputs, f = forward(net, weights, factors, x, hidden)
    jacobians = output_jacobians(net, weights, factors, hidden)
    bases = subspace_bases(layer_inputs, jacobians)
    return Point(weights, factors, layer_inputs, jacobians, (f - y) / f.size, bases, hidden), f
