"""Loss functions in the project's conventions (earlyphase.core.conventions) and accuracy."""

from __future__ import annotations

from collections.abc import Callable

import torch

from earlyphase.core.conventions import CROSS_ENTROPY, MSE


def mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L = 1/(2 B k) sum_i sum_a (f_a(x_i) - y_ia)^2: half the mean over the batch AND the k outputs."""
    return 0.5 * torch.mean((outputs - targets) ** 2)


def cross_entropy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L = -1/B sum_i sum_a y_ia log softmax(f(x_i))_a (one-hot y: mean over the batch of -log p_{y_i})."""
    return -torch.mean(torch.sum(targets * torch.log_softmax(outputs, dim=-1), dim=-1))


LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {MSE: mse, CROSS_ENTROPY: cross_entropy}


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Fraction of examples with argmax_a f_a(x_i) = argmax_a y_ia."""
    return torch.mean((outputs.argmax(dim=-1) == targets.argmax(dim=-1)).to(outputs.dtype))
