"""An ensemble seen as ONE network: stacked parameters theta = (theta_m)_m of shape (M, P).

``StackedModel`` maps (theta, x) to the members' outputs (f(theta_m, x_m))_m by torch.func.vmap
over the one-run ``FlatModel``. With it the one-run functions of ``earlyphase.empirical.objective``
serve the ensemble unchanged, because member m's loss depends on theta_m only:

- ``loss_and_gradient`` with the per-member loss (L_m)_m: each member's loss and gradient;
- ``hessian_operator`` with the summed loss sum_m L_m: H is block diagonal, H v = (H_m v_m)_m;
- ``ntk_gram_operator``: J is block diagonal, J^T J u = (J_m^T J_m u_m)_m;

and ``evaluate`` is ``Probe.loss_tensors`` vmapped over the members. Data every member shares
(the measurement batch, an SGD batch drawn with a common seed) is passed once; per-member SGD
batches are laid out example-major, (B, M, ...), so that ``Batch`` chunks them over examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from earlyphase.empirical.functional import FlatModel
from earlyphase.empirical.objective import LossFn

MEMBER_AXIS_OF_BATCH = 1
"""Axis of the members in a per-member SGD batch (B, M, ...)."""


@dataclass(frozen=True, eq=False)
class StackedModel:
    """f(theta, x) = (f(theta_m, x_m))_m of shape (M, B, k); x shared, or per member (B, M, ...)."""

    model: FlatModel
    per_member: bool = False

    def __call__(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x_axis = MEMBER_AXIS_OF_BATCH if self.per_member else None
        return torch.func.vmap(self.model, in_dims=(0, x_axis))(theta, x)


def member_losses(loss_fn: LossFn, per_member: bool = False) -> LossFn:
    """(outputs (M, B, k), y) -> (L_m)_m, each the one-run loss of member m."""
    y_axis = MEMBER_AXIS_OF_BATCH if per_member else None
    return lambda outputs, y: torch.func.vmap(loss_fn, in_dims=(0, y_axis))(outputs, y)


def summed_loss(loss_fn: LossFn) -> LossFn:
    """(outputs (M, B, k), y) -> sum_m L_m for a shared y: the loss whose Hessian is blockdiag(H_m)."""
    members = member_losses(loss_fn)
    return lambda outputs, y: members(outputs, y).sum()
