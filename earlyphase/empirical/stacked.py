"""Runs seen as ONE network: stacked parameters theta = (theta_m)_m of shape (M, P), M >= 1.

``StackedModel`` maps (theta, x) to the members' outputs (f(theta_m, x_m))_m by torch.func.vmap
over the one-run ``FlatModel`` (for M = 1 by a call on theta_1 itself: the same function, the
one-run numbers, no batching overhead). With it the one-run functions of
``earlyphase.empirical.objective`` serve M members unchanged, because member m's loss depends
on theta_m only:

- ``loss_and_gradient`` with the per-member loss (L_m)_m: each member's loss and gradient;
- ``hessian_operator`` with the summed loss sum_m L_m: H is block diagonal, H v = (H_m v_m)_m;
- ``ntk_gram_operator``: J is block diagonal, J^T J u = (J_m^T J_m u_m)_m;

and ``evaluate_tensors`` maps over the members (``over_members``). Data every member shares
(the measurement batch, an SGD batch drawn with a common seed) is passed once; per-member SGD
batches are laid out example-major, (B, M, ...), so that ``Batch`` chunks them over examples.
``top_eigenpairs`` solves the members' curvature by one batched Lanczos (docs/PROTOCOL.md section 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from earlyphase.core.eigen import TopEigenpair
from earlyphase.empirical.curvature.hvp import HessianVectorProduct
from earlyphase.empirical.curvature.lanczos import lanczos_top, padded_product
from earlyphase.empirical.curvature.operators import Operator
from earlyphase.empirical.functional import FlatModel
from earlyphase.empirical.objective import Batch, LossFn, hessian_operator, ntk_gram_operator

MEMBER_AXIS_OF_BATCH = 1
"""Axis of the members in a per-member SGD batch (B, M, ...)."""


def over_members(function: Callable, theta: torch.Tensor, *args: torch.Tensor, arg_dims: tuple[int | None, ...] = ()):
    """(function(theta_m, *args_m))_m stacked on a leading member axis: torch.func.vmap over theta's
    axis 0 (and each arg's axis in ``arg_dims``, None: shared), or for M = 1 the call on the member."""
    dims = arg_dims or (None,) * len(args)
    if theta.shape[0] == 1:
        members = [arg if dim is None else arg.select(dim, 0) for arg, dim in zip(args, dims)]
        result = function(theta[0], *members)
        return tuple(part[None] for part in result) if isinstance(result, tuple) else result[None]
    return torch.func.vmap(function, in_dims=(0, *dims))(theta, *args)


@dataclass(frozen=True, eq=False)
class StackedModel:
    """f(theta, x) = (f(theta_m, x_m))_m of shape (M, B, k); x shared, or per member (B, M, ...)."""

    model: FlatModel
    per_member: bool = False

    def __call__(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return over_members(self.model, theta, x, arg_dims=(MEMBER_AXIS_OF_BATCH if self.per_member else None,))


def member_losses(loss_fn: LossFn, per_member: bool = False) -> LossFn:
    """(outputs (M, B, k), y) -> (L_m)_m, each the one-run loss of member m."""
    y_axis = MEMBER_AXIS_OF_BATCH if per_member else None
    return lambda outputs, y: over_members(loss_fn, outputs, y, arg_dims=(y_axis,))


def summed_loss(loss_fn: LossFn) -> LossFn:
    """(outputs (M, B, k), y) -> sum_m L_m for a shared y: the loss whose Hessian is blockdiag(H_m)."""
    members = member_losses(loss_fn)
    return lambda outputs, y: members(outputs, y).sum()


class HessianProducts:
    """theta (K, P) -> [V -> (H(theta_k) v_k)_k] on ``batch``: ``hessian_operator`` of the stacked
    model with the summed loss (block-diagonal Hessian), each operator built with ``method``."""

    def __init__(self, model: FlatModel, loss_fn: LossFn, batch: Batch, method: str) -> None:
        self.model, self.loss, self.batch, self.method = StackedModel(model), summed_loss(loss_fn), batch, method
        self.last: HessianVectorProduct | None = None

    def __call__(self, theta: torch.Tensor) -> Operator:
        operator, self.last = hessian_operator(self.model, self.loss, theta, self.batch, self.method)
        return operator

    @property
    def method_used(self) -> str:
        """The HVP method of the last operator built (an "auto" resolves at its first product)."""
        return self.method if self.last is None else self.last.method


def ntk_products(model: FlatModel, batch: Batch) -> Callable[[torch.Tensor], Operator]:
    """theta (K, P) -> [U -> (J_k^T J_k u_k)_k] on ``batch`` (block-diagonal Gram operator)."""
    stacked = StackedModel(model)
    return lambda theta: ntk_gram_operator(stacked, theta, batch)


def top_eigenpairs(
    operator_at: Callable[[torch.Tensor], Operator],
    theta: torch.Tensor,
    start: torch.Tensor,
    tol: float,
    max_iter: int,
    check_every: int = 1,
    stop_above: torch.Tensor | None = None,
) -> TopEigenpair[torch.Tensor]:
    """Each member's top eigenpair of ``operator_at(theta)`` from ``start`` (K, n): one batched
    Lanczos (``lanczos_top``) multiplying only the members still iterating (their rows of theta);
    ``stop_above`` (K,): a member also stops once its top Ritz value exceeds its threshold.

    The operator of a set of members keeps its gradient graph between products; when members
    finish, the graph is rebuilt for the others only once they are at most half of it (until
    then the finished members get zero vectors): a rebuild costs a forward and backward pass.
    """
    current_members: torch.Tensor | None = None
    graph_members: torch.Tensor | None = None  # the members the operator's graph holds
    rows: torch.Tensor | None = None  # positions of current_members in graph_members (None: the same)
    operator: Operator | None = None

    def matvec(vectors: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        nonlocal current_members, graph_members, rows, operator
        if members is not current_members:
            current_members = members
            if graph_members is None or 2 * len(members) <= len(graph_members):
                operator = None  # free the previous graph first
                operator = operator_at(theta if len(members) == len(theta) else theta[members])
                graph_members, rows = members, None
            else:
                rows = torch.searchsorted(graph_members, members)
        assert operator is not None and graph_members is not None  # built at the first call
        return operator(vectors) if rows is None else padded_product(operator, vectors, rows, len(graph_members))

    return lanczos_top(matvec, start, tol, max_iter, check_every, by_member=True, stop_above=stop_above)
