"""A torch module seen as a pure function f(theta, x) of ONE flat parameter vector theta.

Curvature (Hessian- and Jacobian-vector products), SGD, the Lanczos basis and the straight-line
interpolation theta(s) = (1 - s) theta_0 + s theta_T all act on flat vectors; ``FlatModel``
maps a flat theta back to the module's named parameters for ``torch.func.functional_call``.
Buffers (if any) are held fixed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from earlyphase.core.validate import ConfigError


@dataclass(frozen=True, eq=False)
class FlatModel:
    """f(theta, x) = module(x) with its parameters replaced by the flat vector theta."""

    module: nn.Module
    names: tuple[str, ...]
    shapes: tuple[torch.Size, ...]
    buffers: dict[str, torch.Tensor]

    @property
    def num_params(self) -> int:
        """P, the length of theta."""
        return sum(math.prod(shape) for shape in self.shapes)

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named views of theta in the module's parameter shapes."""
        pieces = torch.split(theta, [math.prod(shape) for shape in self.shapes])
        return {name: piece.view(shape) for name, piece, shape in zip(self.names, pieces, self.shapes)}

    def __call__(self, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The network output f(theta, x), shape (batch, k)."""
        return torch.func.functional_call(self.module, (self.unflatten(theta), self.buffers), (x,))


def check_module(module: nn.Module) -> None:
    """Refuse modules whose training-mode output is not a fixed function of (theta, x).

    Batch normalisation in train mode couples the examples of a batch (the Hessian of the
    loss would depend on the batch split) and dropout is random: call ``module.eval()`` or
    remove them.
    """
    for name, sub in module.named_modules():
        if isinstance(sub, _BatchNorm) and sub.training:
            raise ConfigError(
                f"model layer {name or type(sub).__name__!r} is batch norm in train mode; call .eval() or remove it",
                "model",
            )
        if isinstance(sub, nn.modules.dropout._DropoutNd) and sub.training and sub.p > 0:
            raise ConfigError(f"model layer {name!r} is dropout in train mode; call .eval() or remove it", "model")
    if not any(p.requires_grad for p in module.parameters()):
        raise ConfigError("model has no trainable parameters", "model")


def flatten_module(
    module: nn.Module, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[FlatModel, torch.Tensor]:
    """(FlatModel, theta_0): the module moved to ``device``/``dtype`` and its trainable parameters as one vector.

    Parameters with requires_grad = False are held fixed like buffers.
    """
    check_module(module)
    module = module.to(device=device, dtype=dtype)
    trainable = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    fixed = {name: p.detach() for name, p in module.named_parameters() if not p.requires_grad}
    fixed.update({name: b for name, b in module.named_buffers()})
    theta0 = torch.cat([p.detach().reshape(-1) for _, p in trainable]).clone()
    flat = FlatModel(
        module=module,
        names=tuple(name for name, _ in trainable),
        shapes=tuple(p.shape for _, p in trainable),
        buffers=fixed,
    )
    return flat, theta0
