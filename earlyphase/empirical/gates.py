"""Frozen activation gates: any torch module with its ReLU masks held at the values of one forward pass.

A ReLU computes relu(h) = h * 1[h > 0] (leaky ReLU: h * (1[h > 0] + s 1[h <= 0])). ``GateFreezer``
is a ``torch.overrides.TorchFunctionMode`` that, while *recording*, stores the gate of every
relu / leaky_relu call in call order (torch.relu, F.relu, Tensor.relu, nn.ReLU, their in-place
forms, F.leaky_relu, nn.LeakyReLU) and, while *replaying*, returns h * gate_i for the i-th call
instead. With the gates frozen, a network built of linear maps (linear layers, convolutions,
average pooling, sums, products with fixed tensors, batch norm in eval mode) and ReLUs is a polynomial in its parameters:
of degree D (the number of weight layers on the longest path) when each parameter tensor is used
once (docs/PROTOCOL.md section 7).

Other nonlinearities (tanh, sigmoid, GELU, softmax, normalisation layers, max pooling, ...) make
the frozen network non-polynomial: recording refuses them with ``FrozenGatesUnavailable`` (a
ValueError) naming the function. Replay checks that the calls come in the recorded number and
shapes (ValueError otherwise), so a module whose control flow depends on its input is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

GATED = {"relu": 0.0, "relu_": 0.0, "leaky_relu": None, "leaky_relu_": None}
"""Gated functions by name: slope on the negative side (None: read from the call, default 0.01)."""

NOT_POLYNOMIAL = frozenset(
    {
        "tanh",
        "tanh_",
        "sigmoid",
        "sigmoid_",
        "gelu",
        "silu",
        "silu_",
        "mish",
        "softplus",
        "elu",
        "elu_",
        "selu",
        "selu_",
        "celu",
        "celu_",
        "hardtanh",
        "hardtanh_",
        "relu6",
        "hardswish",
        "hardsigmoid",
        "logsigmoid",
        "softsign",
        "tanhshrink",
        "softshrink",
        "hardshrink",
        "threshold",
        "threshold_",
        "prelu",
        "rrelu",
        "rrelu_",
        "glu",
        "softmax",
        "log_softmax",
        "softmin",
        "exp",
        "exp_",
        "log",
        "log_",
        "sqrt",
        "rsqrt",
        "erf",
        "sin",
        "cos",
        "abs",
        "sign",
        "clamp",
        "clip",
        "maximum",
        "minimum",
        "max_pool1d",
        "max_pool2d",
        "max_pool3d",
        "adaptive_max_pool1d",
        "adaptive_max_pool2d",
        "adaptive_max_pool3d",
        "max_pool1d_with_indices",
        "max_pool2d_with_indices",
        "layer_norm",
        "group_norm",
        "instance_norm",
        "local_response_norm",
        "normalize",
        "scaled_dot_product_attention",
    }
)
"""Functions (by name) that make a frozen-gate network non-polynomial in theta: refused."""


class FrozenGatesUnavailable(ValueError):
    """The network has a nonlinearity other than (leaky) ReLU gates: its frozen form is not polynomial."""


class GateFreezer(TorchFunctionMode):
    """Record the (leaky) ReLU gates of a forward pass, then replay them as fixed masks.

        freezer = GateFreezer()
        with freezer.recording():  f0 = module(x)      # gates_i = 1[h_i > 0] stored in call order
        with freezer.replaying():  f = module(x)       # relu(h_i) -> h_i * gates_i

    ``calls`` is the number of gated calls recorded.
    """

    def __init__(self) -> None:
        super().__init__()
        self.gates: list[torch.Tensor] = []
        self.slopes: list[float] = []
        self._replaying = False
        self._position = 0

    @property
    def calls(self) -> int:
        return len(self.gates)

    def recording(self) -> GateFreezer:
        """Forget earlier gates; inside the ``with`` block every gated call stores its gate."""
        self.gates, self.slopes, self._replaying = [], [], False
        return self

    def replaying(self) -> GateFreezer:
        """Inside the ``with`` block gated calls use the stored gates (in the recorded order)."""
        self._replaying, self._position = True, 0
        return self

    def __exit__(self, *exc: object) -> Any:
        result = super().__exit__(*exc)
        if self._replaying and exc[0] is None and self._position != len(self.gates):
            raise ValueError(
                f"replay made {self._position} gated calls but {len(self.gates)} were recorded: "
                "the module's gated calls depend on its input"
            )
        return result

    def __torch_function__(self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in NOT_POLYNOMIAL:
            raise FrozenGatesUnavailable(
                f"the network calls {name!r}: only (leaky) ReLU gates can be frozen into a polynomial "
                "network (no tanh, GELU, sigmoid, softmax, normalisation or max pooling)"
            )
        if name not in GATED:
            return func(*args, **kwargs)
        h = args[0]
        slope = GATED[name]
        if slope is None:
            slope = float(args[1] if len(args) > 1 else kwargs.get("negative_slope", 0.01))
        in_place = name.endswith("_") or bool(kwargs.get("inplace", False))
        if self._replaying:
            gate = self._next_gate(h, slope)
        else:
            gate = h.detach() > 0
            self.gates.append(gate)
            self.slopes.append(slope)
        factor = gate.to(h.dtype) if slope == 0.0 else gate.to(h.dtype) * (1.0 - slope) + slope
        return h.mul_(factor) if in_place else h * factor

    def _next_gate(self, h: torch.Tensor, slope: float) -> torch.Tensor:
        index = self._position
        if index >= len(self.gates):
            raise ValueError(f"replay made more gated calls than the {len(self.gates)} recorded")
        gate = self.gates[index]
        if gate.shape != h.shape or self.slopes[index] != slope:
            raise ValueError(
                f"gated call {index} has shape {tuple(h.shape)} (slope {slope}) but the recorded one had "
                f"{tuple(gate.shape)} (slope {self.slopes[index]})"
            )
        self._position += 1
        return gate


def record_gates(forward: Callable[[], torch.Tensor]) -> tuple[GateFreezer, torch.Tensor]:
    """(freezer, output) of ``forward()`` run once with its gates recorded."""
    freezer = GateFreezer()
    with freezer.recording(), torch.no_grad():
        output = forward()
    return freezer, output


def replay_gates(freezer: GateFreezer, forward: Callable[[], torch.Tensor]) -> torch.Tensor:
    """``forward()`` with the recorded gates frozen (differentiable in everything but the gates)."""
    with freezer.replaying():
        return forward()


__all__ = ["FrozenGatesUnavailable", "GateFreezer", "record_gates", "replay_gates"]
