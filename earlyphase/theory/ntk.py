"""NTK-scale dynamics (docs/PROTOCOL.md section 5): the linearised model, and the infinite-width NTK
of fully connected networks by the layer-by-layer kernel recursion.

Linearised model. With Theta the (n k x n k) NTK over (example, output) pairs and the MSE
L = |g|^2 / (2 n k), g = f - y, GD on the linearised network is

    g_{t+1} = (I - eta Theta / (n k)) g_t,   Hessian = J^T J / (n k)  (constant),

so lambda_H = mu_max / (n k) (mu: eigenvalues of Theta), eta = c / lambda_H, and each mode
decays by the factor 1 - c mu_i / mu_max. The spectral radius exceeds 1 exactly when c > 2:
no catapult (the sharpness never moves), divergence exactly above c = 2.

Infinite-width kernels, no biases, inputs X (n x d_in), depth d weight layers, activation phi,
sigma_l^2 = sigma_w^2 (input and hidden layers) and sigma_out^2 (readout):

    Sigma^0 = X X^T / d_in,   K^l = sigma_l^2 Sigma^{l-1},
    Sigma^l = E_{(a,b) ~ N(0, K^l)} [phi(a) phi(b)],   Sigma-dot^l = E[phi'(a) phi'(b)]   (l = 1 .. d-1),
    contribution of layer l (ntk parameterisation):
        Theta^(l) = sigma_l^2 Sigma^{l-1} * prod_{m=l}^{d-1} sigma_{m+1}^2 Sigma-dot^m   (elementwise),
    ntk:       Theta = sum_l Theta^(l)                          (width-independent),
    standard:  Theta = sum_l (fan_in_l / sigma_l^2) Theta^(l)  (fan_in_1 = d_in, else the width w):
               the NTK of a width-w network in standard parameterisation to leading order in w; it
               grows like w, so lambda_H0 ~ w and eta = c / lambda_H0 ~ 1/w.

Closed forms of the expectations (rho = K_ab / sqrt(K_aa K_bb), theta = arccos rho):
relu (arc-cosine, order 1): Sigma = sqrt(K_aa K_bb) (sin theta + (pi - theta) cos theta) / (2 pi),
Sigma-dot = (pi - theta) / (2 pi); erf: Sigma = (2/pi) arcsin(2 K_ab / sqrt((1 + 2 K_aa)(1 + 2 K_bb))),
Sigma-dot = (4/pi) / sqrt((1 + 2 K_aa)(1 + 2 K_bb) - 4 K_ab^2); linear: Sigma = K, Sigma-dot = 1.
tanh has no closed form (use erf, its close cousin).

Finite readout (``predicted_sharpness0_readout_edge``): the top eigenvalue of Theta (x) I_k is
k-fold degenerate; a width-w readout splits it, and the top one gains about the Marchenko-Pastur
edge (1 + sqrt(k/w))^2 on the contributions of every layer below the readout.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from earlyphase.core.conventions import DEFAULT_LOSS_MAX, PARAMETERIZATIONS, default_sigma_w2
from earlyphase.core.critical import CriticalValues
from earlyphase.core.search import CGrid
from earlyphase.core.validate import ConfigError, require_choice, require_int, require_positive
from earlyphase.theory.protocol import every_point_critical_values

ACTIVATIONS = ("relu", "erf", "linear")


# --- linearised dynamics -------------------------------------------------------------
def _spectrum(theta: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    theta = np.asarray(theta, dtype=float)
    if theta.ndim != 2 or theta.shape[0] != theta.shape[1]:
        raise ValueError(f"theta must be a square (n k x n k) matrix, got shape {theta.shape}")
    mu, vectors = np.linalg.eigh((theta + theta.T) / 2)
    if mu[-1] <= 0:
        raise ValueError("theta must have a positive top eigenvalue")
    return mu, vectors


def linearized_spectral_radius(theta: ArrayLike, c: ArrayLike) -> np.ndarray:
    """max_i |1 - c mu_i / mu_max|: the growth factor per step of the slowest-decaying mode."""
    mu, _ = _spectrum(theta)
    c = np.asarray(c, dtype=float)
    return np.abs(1.0 - c[..., None] * mu / mu[-1]).max(axis=-1)


def linearized_trajectories(
    theta: ArrayLike, residual0: ArrayLike, c: ArrayLike, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Loss and sharpness, each (len(c), T + 1), of g_{t+1} = (I - eta Theta/(n k)) g_t, eta = c / lambda_H.

    In Theta's eigenbasis: L_t = sum_i (1 - c mu_i / mu_max)^(2t) (v_i . g_0)^2 / (2 n k);
    lambda_H_t = mu_max / (n k) at every step.
    """
    steps = require_int("steps", steps, 0)
    mu, vectors = _spectrum(theta)
    power = (vectors.T @ np.asarray(residual0, dtype=float).ravel()) ** 2
    c = np.atleast_1d(np.asarray(c, dtype=float))
    factor = 1.0 - c[:, None] * mu / mu[-1]
    t = np.arange(steps + 1)
    with np.errstate(over="ignore"):
        loss = (factor[:, None, :] ** (2 * t[None, :, None]) * power).sum(axis=-1) / (2 * mu.size)
    sharpness = np.full(loss.shape, mu[-1] / mu.size)
    return loss, sharpness


def linearized_critical_values(
    theta: ArrayLike,
    residual0: ArrayLike,
    grid: CGrid,
    steps: int,
    epsilon: float = 0.0,
    loss_max: float = DEFAULT_LOSS_MAX,
) -> CriticalValues:
    """c_loss, c_sharp, c_max of the linearised model at every point of ``grid``
    (``earlyphase.theory.protocol.every_point_critical_values``).

    Over a long horizon c_max is the last grid value <= 2 and c_sharp is never found.
    """
    loss, sharpness = linearized_trajectories(theta, residual0, grid.values, steps)
    return every_point_critical_values(grid, loss, sharpness, epsilon, loss_max)


# --- infinite-width kernels ----------------------------------------------------------
def _relu(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norms = np.sqrt(np.outer(np.diag(k), np.diag(k)))
    with np.errstate(invalid="ignore", divide="ignore"):
        angle = np.arccos(np.clip(np.where(norms > 0, k / norms, 1.0), -1.0, 1.0))
    return norms * (np.sin(angle) + (np.pi - angle) * np.cos(angle)) / (2 * np.pi), (np.pi - angle) / (2 * np.pi)


def _erf(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scale = np.outer(1 + 2 * np.diag(k), 1 + 2 * np.diag(k))
    return (2 / np.pi) * np.arcsin(2 * k / np.sqrt(scale)), (4 / np.pi) / np.sqrt(scale - 4 * k**2)


def _linear(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return k, np.ones_like(k)


_DUALS: dict[str, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] = {
    "relu": _relu,
    "erf": _erf,
    "linear": _linear,
}


def layer_contributions(
    x: ArrayLike, depth: int, activation: str = "relu", sigma_w2: float | None = None, sigma_out2: float = 1.0
) -> list[np.ndarray]:
    """Theta^(l), l = 1..d, the infinite-width NTK contributions of each weight layer in the ntk
    parameterisation (module docstring); x is (n x d_in); sigma_w2 None: the activation's default
    (``earlyphase.core.default_sigma_w2``: 2 for ReLU, 1 otherwise)."""
    if activation == "tanh":
        raise ConfigError(
            "activation 'tanh' has no closed-form kernel; use 'erf' (its closed-form cousin)", "activation"
        )
    dual = _DUALS[require_choice("activation", activation, ACTIVATIONS)]
    depth = require_int("depth", depth, 1)
    sigma2 = _layer_variances(activation, depth, sigma_w2, sigma_out2)
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"x must be a matrix (examples x input dimension), got shape {x.shape}")
    sigma = [x @ x.T / x.shape[1]]  # Sigma^0 .. Sigma^{d-1}
    derivative = []  # Sigma-dot^1 .. Sigma-dot^{d-1}
    for layer in range(1, depth):
        value, slope = dual(sigma2[layer - 1] * sigma[-1])
        sigma.append(value)
        derivative.append(slope)
    contributions = []
    for layer in range(1, depth + 1):
        term = sigma2[layer - 1] * sigma[layer - 1]
        for m in range(layer, depth):
            term = term * sigma2[m] * derivative[m - 1]
        contributions.append(term)
    return contributions


def _layer_variances(activation: str, depth: int, sigma_w2: float | None, sigma_out2: float) -> list[float]:
    """sigma_l^2 of the d weight layers: sigma_w^2 (default: the activation's) then sigma_out^2."""
    hidden = default_sigma_w2(activation) if sigma_w2 is None else require_positive("sigma_w2", sigma_w2)
    return [hidden] * (depth - 1) + [require_positive("sigma_out2", sigma_out2)]


def infinite_width_ntk(
    x: ArrayLike,
    depth: int,
    activation: str = "relu",
    parameterization: str = "ntk",
    sigma_w2: float | None = None,
    sigma_out2: float = 1.0,
    width: int | None = None,
) -> np.ndarray:
    """Theta (n x n, per output) of a depth-d FCN: ntk parameterisation, or the leading-order NTK
    of a width-``width`` network in standard parameterisation (module docstring)."""
    require_choice("parameterization", parameterization, PARAMETERIZATIONS)
    contributions = layer_contributions(x, depth, activation, sigma_w2, sigma_out2)
    if parameterization == "ntk":
        return sum(contributions)  # type: ignore[return-value]  # depth >= 1 arrays: an array
    if width is None:
        raise ConfigError("the standard-parameterisation NTK grows with the width: give width", "width")
    width = require_int("width", width, 1)
    fan_in = [np.shape(x)[1]] + [width] * (depth - 1)
    sigma2 = _layer_variances(activation, depth, sigma_w2, sigma_out2)
    return sum(fan / s2 * term for fan, s2, term in zip(fan_in, sigma2, contributions))


def predicted_sharpness0(
    x: ArrayLike,
    outputs: int,
    depth: int,
    activation: str = "relu",
    parameterization: str = "ntk",
    sigma_w2: float | None = None,
    sigma_out2: float = 1.0,
    width: int | None = None,
) -> float:
    """lambda_H0 ~ lambda_max(Theta (x) I_k) / (n k) = lambda_max(Theta) / (n k), before any training
    (exact for the Gauss-Newton part; the residual term is O(d/w))."""
    theta = infinite_width_ntk(x, depth, activation, parameterization, sigma_w2, sigma_out2, width)
    outputs = require_int("outputs", outputs, 1)
    return float(np.linalg.eigvalsh(theta)[-1] / (theta.shape[0] * outputs))


# --- finite readout: the k-fold degenerate top eigenvalue split ------------------------
def readout_edge(outputs: int, width: int) -> float:
    """(1 + sqrt(k / w))^2: the Marchenko-Pastur upper edge of the spectrum of
    M = V V^T / sigma_out^2 (k x k, mean I_k) for a readout V of k rows with w i.i.d.
    N(0, sigma_out^2 / w) entries each."""
    return (1.0 + math.sqrt(require_int("outputs", outputs, 1) / require_int("width", width, 1))) ** 2


def predicted_sharpness0_readout_edge(
    x: ArrayLike,
    outputs: int,
    depth: int,
    width: int,
    activation: str = "relu",
    parameterization: str = "standard",
    sigma_w2: float | None = None,
    sigma_out2: float = 1.0,
) -> float:
    """lambda_H0 ~ lambda_max(m Theta_below + Theta_readout) / (n k) with m = ``readout_edge``(k, w).

    The readout f_a = sum_j V_aj h_j makes the NTK over (output, example) pairs
    I_k (x) Theta_readout + M (x) Theta_below to leading order, Theta_readout the readout layer's
    contribution and Theta_below the others' (each scaled as in ``infinite_width_ntk``). At
    infinite width M = I_k and the top eigenvalue is k-fold degenerate; a finite readout splits
    it, and the top one takes M's largest eigenvalue, about the Marchenko-Pastur edge
    (1 + sqrt(k/w))^2 (an expected value over initialisations; a seed's own is
    lambda_max(V V^T / sigma_out^2)). Depth 1 has no layer below the readout: the
    infinite-width value.
    """
    require_choice("parameterization", parameterization, PARAMETERIZATIONS)
    width = require_int("width", width, 1)
    outputs = require_int("outputs", outputs, 1)
    contributions = layer_contributions(x, depth, activation, sigma_w2, sigma_out2)
    if parameterization == "standard":
        fan_in = [np.shape(x)[1]] + [width] * (depth - 1)
        sigma2 = _layer_variances(activation, depth, sigma_w2, sigma_out2)
        contributions = [fan / s2 * term for fan, s2, term in zip(fan_in, sigma2, contributions)]
    theta = readout_edge(outputs, width) * sum(contributions[:-1], np.zeros_like(contributions[-1])) + contributions[-1]
    return float(np.linalg.eigvalsh(theta)[-1] / (theta.shape[0] * outputs))


__all__ = [
    "ACTIVATIONS",
    "infinite_width_ntk",
    "layer_contributions",
    "linearized_critical_values",
    "linearized_spectral_radius",
    "linearized_trajectories",
    "predicted_sharpness0",
    "predicted_sharpness0_readout_edge",
    "readout_edge",
]
