"""Conventions stated once for theory and experiment: the loss normalisations, the divergence
rule, the parameterisations and the accuracy to which the sharpness is solved.

The sharpness lambda_H scales with the loss normalisation; the dimensionless
c = eta * lambda_H0 does not. Every record names the convention that produced it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from earlyphase.core.validate import require_choice

MSE = "mse"
CROSS_ENTROPY = "cross_entropy"

LOSS_CONVENTIONS: dict[str, str] = {
    MSE: "L = 1/(2 B k) * sum_i sum_a (f_a(x_i) - y_ia)^2  (mean over batch and outputs, times 1/2)",
    CROSS_ENTROPY: "L = -1/B * sum_i log softmax(f(x_i))_{y_i}  (mean over the batch)",
}

DEFAULT_LOSS_MAX = 1e5
"""Default divergence bound L_max (docs/PROTOCOL.md section 2); the catapult peak grows like O(width)."""

PARAMETERIZATIONS = ("standard", "ntk")
"""How a layer scales its weights: standard W ~ N(0, g^2/fan_in); ntk W ~ N(0, 1) times sqrt(g^2/fan_in)."""

LANCZOS_TOL = 1e-3
"""Default relative residual ||H v - lambda v|| / |lambda| of every sharpness solve (theory and
experiment): the eigenvalue error is about residual^2 * lambda / gap, ~1e-6 relative."""

LANCZOS_MAX_ITER = 100
"""Default cap on the Lanczos iterations (Hessian-vector products) of one sharpness solve."""


def describe_loss(name: str) -> str:
    """The equation of loss convention ``name`` as a human-readable string."""
    require_choice("loss", name, LOSS_CONVENTIONS)
    return f"{name}: {LOSS_CONVENTIONS[name]}"


def default_sigma_w2(activation: str) -> float:
    """sigma_w^2 of the input and hidden layers (docs/PROTOCOL.md section 6): 2 for ReLU (He), 1 for
    the others (linear, tanh, and erf, tanh's closed-form stand-in in the theory)."""
    return 2.0 if activation == "relu" else 1.0


def is_diverged(loss: ArrayLike, loss_max: float = DEFAULT_LOSS_MAX) -> np.ndarray:
    """Divergence of a loss value: not finite, or L > L_max (elementwise)."""
    loss = np.asarray(loss, dtype=float)
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(loss) | (loss > loss_max)
