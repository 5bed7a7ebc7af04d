"""The loss along the straight line from theta_0 to theta_T (c_barrier, docs/PROTOCOL.md section 3)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def path_losses(
    loss_at: Callable[[torch.Tensor], torch.Tensor], theta0: torch.Tensor, theta1: torch.Tensor, s: np.ndarray
) -> torch.Tensor:
    """L(theta(s)) with theta(s) = (1 - s) theta_0 + s theta_1, stacked over s (axis 0).

    ``loss_at`` returns a tensor on theta's device (one value, or one per ensemble member when
    theta_0 and theta_1 are stacked (M, P)), so the path is read back to the host once.
    """
    return torch.stack([loss_at((1.0 - float(si)) * theta0 + float(si) * theta1) for si in s])
