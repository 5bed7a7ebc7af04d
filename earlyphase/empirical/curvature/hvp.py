"""Hessian-vector products H v = (d^2 L / d theta^2) v of a scalar loss of a flat parameter vector.

Two ways, the same number:

- forward-over-reverse:  H v = d/de grad L(theta + e v) at e = 0, i.e. ``torch.func.jvp`` of
  ``torch.func.grad`` (one forward-mode pass through the backward pass);
- double backward:       H v = grad_theta (grad L(theta) . v), i.e. ``torch.autograd.grad`` twice.

Both agree to rounding. In eager PyTorch (2.11-2.13) forward mode through the backward pass has
a large per-operation overhead: on an FCN (depth 4, width 256, 1024 examples) an HVP costs 3.2
gradients (CPU) and 3.3 (H200) by forward-over-reverse against 2.6 and 1.8 by double backward
(benchmarks/bench_curvature.py, docs/RESULTS.md). So "auto" uses double backward and falls back
to forward-over-reverse where double backward raises; modules without forward-mode rules
(old-style autograd Functions) need double backward.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from earlyphase.core.validate import require_choice
from earlyphase.empirical.config import HVP_METHODS

Loss = Callable[[torch.Tensor], torch.Tensor]


def hvp_forward_over_reverse(loss: Loss, theta: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """H v = d/de grad L(theta + e v)|_{e=0}  (torch.func.jvp of torch.func.grad)."""
    return torch.func.jvp(torch.func.grad(loss), (theta,), (vector,))[1]


def gradient_graph(loss: Loss, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(theta as a leaf requiring grad, grad L(theta) with its graph): the first half of double backward."""
    with torch.enable_grad():
        theta = theta.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss(theta), theta, create_graph=True)
    if not grad.requires_grad:
        raise RuntimeError("double backward: the gradient has no graph (a backward that is not differentiable?)")
    return theta, grad


def hvp_double_backward(
    loss: Loss, theta: torch.Tensor, vector: torch.Tensor, graph: tuple[torch.Tensor, torch.Tensor] | None = None
) -> torch.Tensor:
    """H v = grad_theta (grad_theta L(theta) . v)  (reverse over reverse).

    ``graph``: a ``gradient_graph(loss, theta)`` to reuse (kept for further products), else built here.
    """
    point, grad = gradient_graph(loss, theta) if graph is None else graph
    with torch.enable_grad():
        (product,) = torch.autograd.grad(grad, point, vector, retain_graph=graph is not None)
    return product


class HessianVectorProduct:
    """The operator v -> H(theta) v of ``loss`` at a fixed ``theta``.

    method "auto" uses double backward and falls back to forward-over-reverse (for good) the
    first time double backward raises; ``method`` then tells which one is in use.
    ``keep_graph``: double backward builds the graph of grad L(theta) once and keeps it for
    every product (the same numbers, ~3/7 of the work saved per product after the first, the
    graph's memory held as long as the operator lives); else it is rebuilt for each product.
    """

    def __init__(self, loss: Loss, theta: torch.Tensor, method: str = "auto", keep_graph: bool = False) -> None:
        self.loss = loss
        self.theta = theta.detach()
        self.method = require_choice("hvp method", method, HVP_METHODS)
        self.keep_graph = keep_graph
        self._graph: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, vector: torch.Tensor) -> torch.Tensor:
        if self.method != "forward_over_reverse":
            try:
                if self.keep_graph and self._graph is None:
                    self._graph = gradient_graph(self.loss, self.theta)
                product = hvp_double_backward(self.loss, self.theta, vector, self._graph)
            except (RuntimeError, NotImplementedError):
                if self.method == "double_backward":
                    raise
                self.method = "forward_over_reverse"
            else:
                if self.method == "auto":
                    self.method = "double_backward"
                return product
        return hvp_forward_over_reverse(self.loss, self.theta, vector)
