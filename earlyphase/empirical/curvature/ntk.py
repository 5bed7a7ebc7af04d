"""The empirical neural tangent kernel Theta = J J^T on a batch, through its top eigenvalue.

J = d vec f / d theta is the (B k) x P Jacobian of the outputs over examples and outputs.
J^T J (P x P) has the same non-zero spectrum as Theta, and its products need no Jacobian:

    J^T J u = vjp(f, jvp(f, u)).

For the MSE L = 1/(2 B k) |f - y|^2 the Hessian is H = J^T J / (B k) + sum_ia r_ia grad^2 f_ia / (B k)
with r = f - y, so lambda_max(Theta) / (B k) = lambda_H exactly when the residual r (or the
curvature of f) vanishes (Gauss-Newton identity) and approximately for wide nets.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Outputs = Callable[[torch.Tensor], torch.Tensor]


def ntk_gram_product(outputs: Outputs, theta: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """J^T J u = vjp_f(jvp_f(u)) for the outputs f(theta) of a batch (any shape)."""
    _, tangent = torch.func.jvp(outputs, (theta,), (vector,))
    _, pullback = torch.func.vjp(outputs, theta)
    return pullback(tangent)[0]


def ntk_operator(outputs: Outputs, theta: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The operator u -> J^T J u at a fixed theta (top eigenvalue = lambda_max(Theta))."""
    theta = theta.detach()
    return lambda vector: ntk_gram_product(outputs, theta, vector)
