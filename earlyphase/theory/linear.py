"""Depth-d linear networks of width w (docs/PROTOCOL.md section 5); the uv model is d = 2.

    h_0 = x,   h_l = s_l W_l h_{l-1}  (l = 1..d),   f(x) = h_d,
    W_1: w x d_in,   W_2 .. W_{d-1}: w x w,   W_d: k x w,
    L = 1/(2 n k) sum_{i,a} (f_a(x_i) - y)^2   (MSE: mean over the n examples and k outputs, times 1/2).

Parameterisations, with sigma_l^2 = sigma_w^2 for the input and hidden layers and 1 for the
readout (docs/PROTOCOL.md section 6):

    standard   W_l ~ N(0, sigma_l^2 / fan_in),   s_l = 1
    ntk        W_l ~ N(0, 1),                    s_l = sigma_l / sqrt(fan_in)

Inputs: n orthogonal examples x_i = sqrt(d_in) e_i (|x_i|^2 = d_in; d_in >= n, default d_in = n).
With ntk, d = 2 and d_in = n = k = 1 (x = 1) this is the uv model, u = W_1, v = W_2^T; with the
same seed ``init_weights`` draws exactly ``earlyphase.theory.uv.uv_init``'s u and v.

Low-rank form. A GD step adds a rank-n matrix to every layer,

    W_l <- W_l - eta s_l delta_l h_{l-1}^T,   delta_l = J_l G,   G = (f - Y) / (n k),

where J_l = (s_d W_d ... s_{l+1} W_{l+1})^T (fan_out_l x k) is the Jacobian of f with respect
to h_l (the same for every example: the network is linear). A run keeps W_l = W0_l + U_l V_l^T;
W0_l is shared by every c of a seed, so a batch of runs multiplies W0_l by one matrix (a GEMM)
instead of reading a w x w matrix per run.

Arrays per layer come in ``Layers(first, hidden, readout)``; the hidden layers are stacked on a
leading axis of static length ``net.depth - 2`` and looped over up to a DYNAMIC count
``hidden`` <= that length, so one compiled function serves every depth up to ``net.depth``
(entries beyond ``hidden`` are zero and never touched).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

import jax.numpy as jnp
import numpy as np
from jax import lax

from earlyphase.core.conventions import PARAMETERIZATIONS
from earlyphase.core.validate import ConfigError, require_choice, require_int, require_positive

Item = TypeVar("Item")


class Layers(NamedTuple, Generic[Item]):
    """One entry per layer group: the input layer, the stacked hidden layers, the readout."""

    first: Item
    hidden: Item
    readout: Item


class LowRank(NamedTuple):
    """The matrix U V^T (U: fan_out x r, V: fan_in x r; stacked on a leading axis for hidden layers)."""

    u: jnp.ndarray
    v: jnp.ndarray


@dataclass(frozen=True)
class LinearNet:
    """A depth-d linear network of width w on n examples with k outputs (module docstring)."""

    depth: int
    width: int
    examples: int = 1
    outputs: int = 1
    input_dim: int | None = None
    parameterization: str = "standard"
    sigma_w2: float = 1.0
    target: float = 0.0

    def __post_init__(self) -> None:
        require_int("depth", self.depth, 2)
        require_int("width", self.width, 1)
        require_int("examples", self.examples, 1)
        require_int("outputs", self.outputs, 1)
        if self.input_dim is not None:
            require_int("input_dim", self.input_dim, self.examples)
        require_choice("parameterization", self.parameterization, PARAMETERIZATIONS)
        require_positive("sigma_w2", self.sigma_w2)
        if not math.isfinite(self.target):
            raise ConfigError(f"target must be a finite number, got {self.target!r}", "target")

    @property
    def d_in(self) -> int:
        """Input dimension (default: the number of examples)."""
        return self.examples if self.input_dim is None else self.input_dim

    @property
    def hidden(self) -> int:
        """Number of hidden (w x w) layers, d - 2."""
        return self.depth - 2

    @property
    def fan_in(self) -> Layers[int]:
        return Layers(self.d_in, self.width, self.width)

    @property
    def variances(self) -> Layers[float]:
        """sigma_l^2: sigma_w^2 for the input and hidden layers, 1 for the readout."""
        return Layers(self.sigma_w2, self.sigma_w2, 1.0)

    @property
    def multipliers(self) -> Layers[float]:
        """s_l: 1 (standard) or sigma_l / sqrt(fan_in) (ntk)."""
        if self.parameterization == "standard":
            return Layers(1.0, 1.0, 1.0)
        return Layers(*(math.sqrt(var / fan) for var, fan in zip(self.variances, self.fan_in)))

    @property
    def init_std(self) -> Layers[float]:
        """Standard deviation of the entries of W_l: sigma_l / sqrt(fan_in) (standard) or 1 (ntk)."""
        if self.parameterization == "ntk":
            return Layers(1.0, 1.0, 1.0)
        return Layers(*(math.sqrt(var / fan) for var, fan in zip(self.variances, self.fan_in)))

    @property
    def shapes(self) -> Layers[tuple[int, ...]]:
        w = self.width
        return Layers((w, self.d_in), (self.hidden, w, w), (self.outputs, w))

    @property
    def num_params(self) -> int:
        return sum(math.prod(shape) for shape in self.shapes)

    @property
    def subspace_dimension(self) -> int:
        """Upper bound on dim S (``linear_hessian``): sum_l fan_in r_J + (fan_out - r_J) r_h with the
        generic ranks r_J = min(k, fan_out), r_h = min(n, fan_in)."""
        total = 0
        for shape in self.shapes:
            fan_out, fan_in = shape[-2:]
            rank_j, rank_h = min(self.outputs, fan_out), min(self.examples, fan_in)
            total += math.prod(shape[:-2]) * (fan_in * rank_j + (fan_out - rank_j) * rank_h)
        return total


def inputs(net: LinearNet) -> jnp.ndarray:
    """X (d_in x n): column i is x_i = sqrt(d_in) e_i."""
    return math.sqrt(net.d_in) * jnp.eye(net.d_in, net.examples)


def targets(net: LinearNet) -> jnp.ndarray:
    """Y (k x n), every entry the scalar target y."""
    return jnp.full((net.outputs, net.examples), net.target)


def init_weights(net: LinearNet, seeds: Sequence[int], padded_hidden: int | None = None) -> Layers[np.ndarray]:
    """W0 of every seed (leading axis), Gaussian with standard deviation ``net.init_std``.

    One ``numpy.random.default_rng(seed)`` per seed draws W_1, the hidden layers, then W_d.
    The hidden stack is zero-padded to ``padded_hidden`` layers (default d - 2).
    """
    padded = net.hidden if padded_hidden is None else require_int("padded_hidden", padded_hidden, net.hidden)
    std = net.init_std
    first = np.empty((len(seeds), *net.shapes.first))
    hidden = np.zeros((len(seeds), padded, net.width, net.width))
    readout = np.empty((len(seeds), *net.shapes.readout))
    for row, seed in enumerate(seeds):
        rng = np.random.default_rng(require_int("seed", seed, 0))
        first[row] = std.first * rng.standard_normal(net.shapes.first)
        hidden[row, : net.hidden] = std.hidden * rng.standard_normal(net.shapes.hidden)
        readout[row] = std.readout * rng.standard_normal(net.shapes.readout)
    return Layers(first, hidden, readout)


def empty_factors(net: LinearNet, rank: int, dtype: Any = None) -> Layers[LowRank]:
    """U V^T = 0 with room for ``rank`` columns per layer."""
    return Layers(
        *(
            LowRank(jnp.zeros((*shape[:-2], shape[-2], rank), dtype), jnp.zeros((*shape[:-2], shape[-1], rank), dtype))
            for shape in net.shapes
        )
    )


def transpose(matrix: jnp.ndarray) -> jnp.ndarray:
    """Swap the last two axes."""
    return jnp.swapaxes(matrix, -1, -2)


def thin(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """a @ b where the product has a thin side (n, k or the low rank r columns): a broadcast
    multiply and a sum, which XLA fuses into one loop, where a batched matrix product over many
    runs would pay a library call per run. Only W0 h products, the large ones, use GEMMs."""
    return jnp.sum(a[..., :, :, None] * b[..., None, :, :], axis=-2)


def apply(weight: jnp.ndarray, factors: LowRank, scale: float, h: jnp.ndarray) -> jnp.ndarray:
    """s (W0 + U V^T) h."""
    return scale * (weight @ h + thin(factors.u, thin(transpose(factors.v), h)))


def apply_transposed(weight: jnp.ndarray, factors: LowRank, scale: float, cotangent: jnp.ndarray) -> jnp.ndarray:
    """s (W0 + U V^T)^T c, with W0^T c computed as (c^T W0)^T (no transposed copy of W0)."""
    return scale * (transpose(transpose(cotangent) @ weight) + thin(factors.v, thin(transpose(factors.u), cotangent)))


def hidden_layer(weights: Layers[jnp.ndarray], factors: Layers[LowRank], j: jnp.ndarray) -> tuple[jnp.ndarray, LowRank]:
    """W0 and (U, V) of hidden layer j (a dynamic index into the stacks)."""
    return weights.hidden[j], LowRank(factors.hidden.u[j], factors.hidden.v[j])


def hidden_loop(hidden: jnp.ndarray, body: Any, carry: tuple) -> tuple:
    """``lax.fori_loop(0, hidden, body, carry)`` over the hidden stack carried as carry[1];
    a network without hidden layers (stack of length 0) skips the loop."""
    if carry[1].shape[0] == 0:
        return carry
    return lax.fori_loop(0, hidden, body, carry)


def forward(
    net: LinearNet, weights: Layers[jnp.ndarray], factors: Layers[LowRank], x: jnp.ndarray, hidden: jnp.ndarray
) -> tuple[Layers[jnp.ndarray], jnp.ndarray]:
    """f = h_d and the input h_{l-1} of every layer (hidden ones stacked) for W = W0 + U V^T,
    through the first ``hidden`` hidden layers."""
    scale = net.multipliers
    h = apply(weights.first, factors.first, scale.first, x)

    def layer(j: jnp.ndarray, carry: tuple) -> tuple:
        h, stack = carry
        weight, low_rank = hidden_layer(weights, factors, j)
        return apply(weight, low_rank, scale.hidden, h), stack.at[j].set(h)

    stack = jnp.zeros((net.hidden, net.width, x.shape[-1]), x.dtype)
    last, stack = hidden_loop(hidden, layer, (h, stack))
    return Layers(x, stack, last), apply(weights.readout, factors.readout, scale.readout, last)


def path_outputs(
    net: LinearNet,
    weights: Layers[jnp.ndarray],
    factors: Layers[LowRank],
    x: jnp.ndarray,
    hidden: jnp.ndarray,
    s: jnp.ndarray,
) -> jnp.ndarray:
    """f (len(s), k, n) on the straight path W_l(s) = W0_l + s U_l V_l^T from W0 (s = 0) to
    W0 + U V^T (s = 1), through the first ``hidden`` hidden layers.

    f(s) is a polynomial of degree <= d in s: h_l(s) = sum_j s^j a_{l,j} with

        a_{0,0} = x,   a_{l,j} = s_l (W0_l a_{l-1,j} + U_l V_l^T a_{l-1,j-1}),

    so one pass over the layers with d + 1 coefficient columns replaces a forward pass per s.
    """
    scale = net.multipliers
    coefficients = jnp.zeros((net.depth + 1, *x.shape), x.dtype).at[0].set(x)

    def through(weight: jnp.ndarray, low_rank: LowRank, multiplier: float, a: jnp.ndarray) -> jnp.ndarray:
        shifted = jnp.concatenate([jnp.zeros_like(a[:1]), a[:-1]])  # a_{j-1}: one more power of s
        return multiplier * (weight @ a + thin(low_rank.u, thin(transpose(low_rank.v), shifted)))

    def layer(j: jnp.ndarray, carry: tuple) -> tuple:
        a, stack = carry
        weight, low_rank = hidden_layer(weights, factors, j)
        return through(weight, low_rank, scale.hidden, a), stack

    a = through(weights.first, factors.first, scale.first, coefficients)
    a, _ = hidden_loop(hidden, layer, (a, weights.hidden))
    a = through(weights.readout, factors.readout, scale.readout, a)
    powers = s[:, None] ** jnp.arange(net.depth + 1)
    return jnp.einsum("sj,jkn->skn", powers, a)


def output_jacobians(
    net: LinearNet, weights: Layers[jnp.ndarray], factors: Layers[LowRank], hidden: jnp.ndarray
) -> Layers[jnp.ndarray]:
    """J_l = (d f / d h_l)^T (fan_out_l x k): J_d = I_k, J_{l-1} = s_l W_l^T J_l."""
    scale = net.multipliers
    top = jnp.eye(net.outputs, dtype=weights.readout.dtype)

    def layer(i: jnp.ndarray, carry: tuple) -> tuple:
        jac, stack = carry
        j = hidden - 1 - i
        weight, low_rank = hidden_layer(weights, factors, j)
        return apply_transposed(weight, low_rank, scale.hidden, jac), stack.at[j].set(jac)

    below_readout = apply_transposed(weights.readout, factors.readout, scale.readout, top)
    stack = jnp.zeros((net.hidden, net.width, net.outputs), top.dtype)
    first, stack = hidden_loop(hidden, layer, (below_readout, stack))
    return Layers(first, stack, top)


def mse(f: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    """L = 1/(2 n k) sum (f - y)^2."""
    return 0.5 * jnp.mean((f - y) ** 2)


def loss_gradient(
    net: LinearNet, layer_inputs: Layers[jnp.ndarray], jacobians: Layers[jnp.ndarray], f: jnp.ndarray, y: jnp.ndarray
) -> Layers[LowRank]:
    """dL/dW_l = (s_l J_l G) h_{l-1}^T with G = (f - Y)/(n k), as factors (U, V) of rank n."""
    residual = (f - y) / f.size
    return Layers(*(LowRank(s * thin(jac, residual), h) for s, jac, h in zip(net.multipliers, jacobians, layer_inputs)))


def gd_update(
    factors: Layers[LowRank], gradient: Layers[LowRank], eta: jnp.ndarray, step: jnp.ndarray
) -> Layers[LowRank]:
    """W <- W - eta dL/dW: write (-eta U_grad, V_grad) into columns step*n .. step*n + n - 1."""

    def write(current: LowRank, grad: LowRank) -> LowRank:
        start = (0,) * (grad.u.ndim - 1) + (step * grad.u.shape[-1],)
        return LowRank(
            lax.dynamic_update_slice(current.u, -eta * grad.u, start),
            lax.dynamic_update_slice(current.v, grad.v, start),
        )

    return Layers(*(write(current, grad) for current, grad in zip(factors, gradient)))


def effective_weights(weights: Layers[jnp.ndarray], factors: Layers[LowRank]) -> Layers[jnp.ndarray]:
    """The dense W = W0 + U V^T of every layer."""
    return Layers(*(w + low.u @ transpose(low.v) for w, low in zip(weights, factors)))


def dense_loss(net: LinearNet, weights: Layers[jnp.ndarray], x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
    """L of dense weights by the plain product s_d W_d ... s_1 W_1 x (an oracle for the factored code)."""
    scale = net.multipliers
    h = scale.first * weights.first @ x
    for weight in weights.hidden:
        h = scale.hidden * weight @ h
    return mse(scale.readout * weights.readout @ h, y)


def ntk_top(net: LinearNet, layer_inputs: Layers[jnp.ndarray], jacobians: Layers[jnp.ndarray]) -> jnp.ndarray:
    """lambda_max(Theta) / (n k), Theta = J J^T = sum_l s_l^2 (J_l^T J_l) (x) (h_{l-1}^T h_{l-1}).

    Unused hidden slots hold zeros and add nothing."""

    def block(scale: float, jac: jnp.ndarray, h: jnp.ndarray) -> jnp.ndarray:
        outer = thin(transpose(jac), jac)
        gram = thin(transpose(h), h)
        size = outer.shape[-1] * gram.shape[-1]
        kron = jnp.einsum("...ab,...ij->...aibj", outer, gram)
        return scale**2 * kron.reshape(*kron.shape[:-4], size, size)

    parts = [block(s, j, h) for s, j, h in zip(net.multipliers, jacobians, layer_inputs)]
    theta = parts[0] + parts[1].sum(axis=0) + parts[2]
    return jnp.linalg.eigvalsh(theta)[-1] / (net.examples * net.outputs)
