"""The loss of a flat-parameter network on a batch, its gradient, and its curvature there.

A batch of N examples is held as chunks c of n_c examples (to bound memory); the mean loss is
L = sum_c (n_c / N) L_c, so its gradient and Hessian are the same weighted sums over chunks,
and the NTK Gram operator is J^T J = sum_c J_c^T J_c.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from earlyphase.core.eigen import TopEigenpair
from earlyphase.empirical.curvature.hvp import HessianVectorProduct
from earlyphase.empirical.curvature.lanczos import lanczos_top
from earlyphase.empirical.curvature.ntk import ntk_operator
from earlyphase.empirical.curvature.operators import Operator, in_dtype, weighted_sum
from earlyphase.empirical.losses import accuracy

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Network = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""f(theta, x): a ``FlatModel``, or runs stacked as one (``earlyphase.empirical.stacked.StackedModel``)."""


@dataclass(frozen=True, eq=False)
class Batch:
    """N examples as chunks (x_c, y_c); chunk c has weight n_c / N in a mean over the batch."""

    chunks: tuple[tuple[torch.Tensor, torch.Tensor], ...]

    @classmethod
    def of(cls, x: torch.Tensor, y: torch.Tensor, chunk_size: int | None = None) -> Batch:
        """Split (x, y) into chunks of at most ``chunk_size`` examples (None: one chunk)."""
        if chunk_size is None or chunk_size >= len(x):
            return cls(((x, y),))
        return cls(tuple(zip(torch.split(x, chunk_size), torch.split(y, chunk_size))))

    @property
    def size(self) -> int:
        """N, the number of examples."""
        return sum(len(x) for x, _ in self.chunks)

    @property
    def num_outputs(self) -> int:
        """k, the number of outputs per example."""
        return int(self.chunks[0][1].shape[-1])

    @property
    def weights(self) -> list[float]:
        """n_c / N for each chunk."""
        size = self.size
        return [len(x) / size for x, _ in self.chunks]


def loss_of_theta(model: Network, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> Callable:
    """theta -> L(f(theta, x), y) for one chunk."""
    return lambda theta: loss_fn(model(theta, x), y)


def evaluate_tensors(
    model: Network, loss_fn: LossFn, theta: torch.Tensor, batch: Batch
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, accuracy) at theta on the batch as 0-d tensors: sum_c (n_c / N) (L_c, acc_c) (vmaps over theta)."""
    with torch.no_grad():
        loss = theta.new_zeros(())
        correct = theta.new_zeros(())
        for weight, (x, y) in zip(batch.weights, batch.chunks):
            outputs = model(theta, x)
            loss = loss + weight * loss_fn(outputs, y)
            correct = correct + weight * accuracy(outputs, y)
    return loss, correct


def evaluate(model: Network, loss_fn: LossFn, theta: torch.Tensor, batch: Batch) -> tuple[float, float]:
    """(L, accuracy) of the network at theta on the batch, as floats (``evaluate_tensors``)."""
    loss, correct = evaluate_tensors(model, loss_fn, theta, batch)
    return float(loss), float(correct)


def loss_and_gradient(
    model: Network, loss_fn: LossFn, theta: torch.Tensor, batch: Batch
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, grad L) at theta: sums over chunks of (n_c / N) (L_c, grad L_c), by reverse-mode autograd.

    A loss with a member axis (an ensemble: stacked theta = (theta_m)_m, L = (L_m)_m with L_m a
    function of theta_m only) gives each member's loss and, as the gradient of sum_m L_m, each
    member's own gradient.
    """
    with torch.enable_grad():
        theta = theta.detach().requires_grad_(True)
        gradient = torch.zeros_like(theta)
        loss = theta.new_zeros(())
        for weight, (x, y) in zip(batch.weights, batch.chunks):
            chunk_loss = loss_fn(model(theta, x), y)
            (chunk_gradient,) = torch.autograd.grad(chunk_loss.sum(), theta)
            gradient = gradient + weight * chunk_gradient
            loss = loss + weight * chunk_loss.detach()
    return loss, gradient


def top_hessian_eigenpair(
    model: Network,
    loss_fn: LossFn,
    theta: torch.Tensor,
    batch: Batch,
    start: torch.Tensor,
    tol: float,
    max_iter: int,
    method: str = "auto",
) -> tuple[TopEigenpair[torch.Tensor], str]:
    """Sharpness: the largest algebraic eigenpair of H = sum_c (n_c / N) H_c, and the HVP method used.

    The recurrence runs in the dtype of ``start`` (float64); products in the network's dtype.
    """
    operator, product = hessian_operator(model, loss_fn, theta, batch, method)
    result = lanczos_top(operator, start, tol=tol, max_iter=max_iter)
    return result, product.method


def hessian_operator(
    model: Network, loss_fn: LossFn, theta: torch.Tensor, batch: Batch, method: str = "auto"
) -> tuple[Operator, HessianVectorProduct]:
    """v -> H v = sum_c (n_c / N) H_c v at theta, computed in the network's dtype and returned in v's;
    and the first chunk's product (whose ``method`` tells the HVP method in use once it ran).

    For an ensemble (a model of stacked parameters theta = (theta_m)_m and the SUM of the members'
    losses) H is block diagonal, so H v = (H_m v_m)_m. A batch of one chunk keeps its gradient
    graph between products (``HessianVectorProduct(keep_graph=True)``); chunked batches rebuild
    it per product, so that one chunk's graph is held at a time.
    """
    keep = len(batch.chunks) == 1
    products = [HessianVectorProduct(loss_of_theta(model, loss_fn, x, y), theta, method, keep) for x, y in batch.chunks]
    return in_dtype(weighted_sum(products, batch.weights), theta.dtype), products[0]


def ntk_gram_operator(model: Network, theta: torch.Tensor, batch: Batch) -> Operator:
    """u -> J^T J u = sum_c J_c^T J_c u at theta, in the network's dtype, returned in u's.

    For a model of stacked parameters J is block diagonal: J^T J u = (J_m^T J_m u_m)_m.
    """
    grams = [ntk_operator(lambda t, x=x: model(t, x), theta) for x, _ in batch.chunks]  # type: ignore[misc]
    return in_dtype(weighted_sum(grams, [1.0] * len(grams)), theta.dtype)


def top_ntk_eigenpair(
    model: Network, theta: torch.Tensor, batch: Batch, start: torch.Tensor, tol: float, max_iter: int
) -> TopEigenpair[torch.Tensor]:
    """lambda_max(Theta) of the NTK Theta = J J^T on the batch, as the top eigenpair of J^T J = sum_c J_c^T J_c."""
    return lanczos_top(ntk_gram_operator(model, theta, batch), start, tol=tol, max_iter=max_iter)
