"""The loss of a flat-parameter network on a batch, its gradient, and its curvature there.

A batch of N examples is held as chunks c of n_c examples (to bound memory); the mean loss is
L = sum_c (n_c / N) L_c, so its gradient and Hessian are the same weighted sums over chunks,
and the NTK Gram operator is J^T J = sum_c J_c^T J_c.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from earlyphase.empirical.curvature.hvp import HessianVectorProduct
from earlyphase.empirical.curvature.lanczos import LanczosResult, lanczos_top
from earlyphase.empirical.curvature.ntk import ntk_operator
from earlyphase.empirical.curvature.operators import in_dtype, weighted_sum
from earlyphase.empirical.functional import FlatModel
from earlyphase.empirical.losses import accuracy

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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


def loss_of_theta(model: FlatModel, loss_fn: LossFn, x: torch.Tensor, y: torch.Tensor) -> Callable:
    """theta -> L(f(theta, x), y) for one chunk."""
    return lambda theta: loss_fn(model(theta, x), y)


def evaluate(model: FlatModel, loss_fn: LossFn, theta: torch.Tensor, batch: Batch) -> tuple[float, float]:
    """(L, accuracy) of the network at theta on the batch: sum_c (n_c / N) (L_c, acc_c)."""
    with torch.no_grad():
        loss = theta.new_zeros(())
        correct = theta.new_zeros(())
        for weight, (x, y) in zip(batch.weights, batch.chunks):
            outputs = model(theta, x)
            loss = loss + weight * loss_fn(outputs, y)
            correct = correct + weight * accuracy(outputs, y)
    return float(loss), float(correct)


def loss_and_gradient(
    model: FlatModel, loss_fn: LossFn, theta: torch.Tensor, batch: Batch
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, grad L) at theta: sums over chunks of (n_c / N) (L_c, grad L_c), by reverse-mode autograd."""
    with torch.enable_grad():
        theta = theta.detach().requires_grad_(True)
        gradient = torch.zeros_like(theta)
        loss = theta.new_zeros(())
        for weight, (x, y) in zip(batch.weights, batch.chunks):
            chunk_loss = loss_fn(model(theta, x), y)
            (chunk_gradient,) = torch.autograd.grad(chunk_loss, theta)
            gradient = gradient + weight * chunk_gradient
            loss = loss + weight * chunk_loss.detach()
    return loss, gradient


def top_hessian_eigenpair(
    model: FlatModel,
    loss_fn: LossFn,
    theta: torch.Tensor,
    batch: Batch,
    start: torch.Tensor,
    tol: float,
    max_iter: int,
    method: str = "auto",
) -> tuple[LanczosResult, str]:
    """Sharpness: the largest algebraic eigenpair of H = sum_c (n_c / N) H_c, and the HVP method used.

    The recurrence runs in the dtype of ``start`` (float64); products in the network's dtype.
    """
    products = [HessianVectorProduct(loss_of_theta(model, loss_fn, x, y), theta, method) for x, y in batch.chunks]
    operator = in_dtype(weighted_sum(products, batch.weights), theta.dtype)
    result = lanczos_top(operator, start, tol=tol, max_iter=max_iter)
    return result, products[0].method


def top_ntk_eigenpair(
    model: FlatModel, theta: torch.Tensor, batch: Batch, start: torch.Tensor, tol: float, max_iter: int
) -> LanczosResult:
    """lambda_max(Theta) of the NTK Theta = J J^T on the batch, as the top eigenpair of J^T J = sum_c J_c^T J_c."""
    grams = [ntk_operator(lambda t, x=x: model(t, x), theta) for x, _ in batch.chunks]
    operator = in_dtype(weighted_sum(grams, [1.0] * len(grams)), theta.dtype)
    return lanczos_top(operator, start, tol=tol, max_iter=max_iter)
