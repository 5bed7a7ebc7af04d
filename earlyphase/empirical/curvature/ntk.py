"""The empirical neural tangent kernel Theta = J J^T on a batch, through its top eigenvalue.

J = d vec f / d theta is the (B k) x P Jacobian of the outputs over examples and outputs.
J^T J (P x P) has the same non-zero spectrum as Theta, and its products need no Jacobian.
With reverse mode only (the "double-vjp trick", as fast as jvp + vjp in eager PyTorch and
valid for every module double backward handles):

    J^T w = vjp_f(w)  (built with a graph, for a dummy w),   J u = d/dw (J^T w . u),
    J^T J u = vjp_f(J u).

For the MSE L = 1/(2 B k) |f - y|^2 the Hessian is H = J^T J / (B k) + sum_ia r_ia grad^2 f_ia / (B k)
with r = f - y, so lambda_max(Theta) / (B k) = lambda_H exactly when the residual r (or the
curvature of f) vanishes (Gauss-Newton identity) and approximately for wide nets.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Outputs = Callable[[torch.Tensor], torch.Tensor]


def ntk_gram_product(outputs: Outputs, theta: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """J^T J u for the outputs f(theta) of a batch (any shape): J u (``_forward_product``), then J^T (J u)."""
    with torch.enable_grad():
        leaf, values, tangent = _forward_product(outputs, theta, vector)
        (product,) = torch.autograd.grad(values, leaf, tangent)
    return product


def jacobian_product(outputs: Outputs, theta: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """J u, shaped like the outputs f(theta), by the double-vjp trick: J u = d/dw (J^T w . u)."""
    with torch.enable_grad():
        return _forward_product(outputs, theta, vector)[2]


def _forward_product(
    outputs: Outputs, theta: torch.Tensor, vector: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(theta as a leaf, f(theta) with its graph, J u): one forward pass and the double-vjp trick
    J u = d/dw (J^T w . u) at w = 0 (call with grad enabled)."""
    leaf = theta.detach().requires_grad_(True)
    values = outputs(leaf)
    dummy = torch.zeros_like(values, requires_grad=True)
    (pullback,) = torch.autograd.grad(values, leaf, dummy, create_graph=True)
    (tangent,) = torch.autograd.grad(pullback, dummy, vector, retain_graph=True)
    return leaf, values, tangent


def ntk_operator(outputs: Outputs, theta: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The operator u -> J^T J u at a fixed theta (top eigenvalue = lambda_max(Theta))."""
    theta = theta.detach()
    return lambda vector: ntk_gram_product(outputs, theta, vector)
