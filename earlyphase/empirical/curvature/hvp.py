"""Hessian-vector products H v = (d^2 L / d theta^2) v of a scalar loss of a flat parameter vector.

Two ways, the same number:

- forward-over-reverse:  H v = d/de grad L(theta + e v) at e = 0, i.e. ``torch.func.jvp`` of
  ``torch.func.grad`` (one forward-mode pass through the backward pass: about 2-3 gradients);
- double backward:       H v = grad_theta (grad L(theta) . v), i.e. ``torch.autograd.grad`` twice,
  for modules whose operations have no forward-mode derivative.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from earlyphase.core.validate import require_choice

HVP_METHODS = ("auto", "forward_over_reverse", "double_backward")

Loss = Callable[[torch.Tensor], torch.Tensor]


def hvp_forward_over_reverse(loss: Loss, theta: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """H v = d/de grad L(theta + e v)|_{e=0}  (torch.func.jvp of torch.func.grad)."""
    return torch.func.jvp(torch.func.grad(loss), (theta,), (vector,))[1]


def hvp_double_backward(loss: Loss, theta: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """H v = grad_theta (grad_theta L(theta) . v)  (reverse over reverse)."""
    with torch.enable_grad():
        theta = theta.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss(theta), theta, create_graph=True)
        if not grad.requires_grad:  # L is affine in theta
            return torch.zeros_like(theta)
        (product,) = torch.autograd.grad(grad, theta, vector)
    return product


class HessianVectorProduct:
    """The operator v -> H(theta) v of ``loss`` at a fixed ``theta``.

    method "auto" uses forward-over-reverse and falls back to double backward (for good) the
    first time forward mode raises; ``method`` then tells which one is in use.
    """

    def __init__(self, loss: Loss, theta: torch.Tensor, method: str = "auto") -> None:
        self.loss = loss
        self.theta = theta.detach()
        self.method = require_choice("hvp method", method, HVP_METHODS)

    def __call__(self, vector: torch.Tensor) -> torch.Tensor:
        if self.method != "double_backward":
            try:
                product = hvp_forward_over_reverse(self.loss, self.theta, vector)
            except (RuntimeError, NotImplementedError):
                if self.method == "forward_over_reverse":
                    raise
                self.method = "double_backward"
            else:
                if self.method == "auto":
                    self.method = "forward_over_reverse"
                return product
        return hvp_double_backward(self.loss, self.theta, vector)
