"""Networks of the empirical engine (docs/PROTOCOL.md section 6), all without biases or normalisation.

Every weight layer computes  h_out = m * W h_in  with W drawn once from N(0, s^2) at
initialisation. For a layer of fan-in n and gain g^2:

    standard parameterisation:  s^2 = g^2 / n,  m = 1
    NTK parameterisation:       s^2 = 1,        m = sqrt(g^2 / n)

so both give the same function at initialisation and differ in the gradient scale. The gain is
g^2 = sigma_w^2 for hidden layers (default 2 for ReLU, 1 for linear and tanh) and, for the
readout layer:

    readout "standard":  g^2 = 1        (W ~ N(0, 1/n))
    readout "zero":      W = 0          (the network output is exactly 0 at initialisation;
                                         NTK parameterisation keeps m = sqrt(1/n))
    readout "mup":       g^2 = 1/n      (muP-like readout: W ~ N(0, 1/n^2), i.e. a 1/width
                                         instead of 1/sqrt(width) scale; output O(1/sqrt(n)))

Architectures (depth = number of weight layers):

- ``fcn``: flatten, (depth - 1) hidden layers of ``width`` units, readout.
- ``cnn``: Myrtle-style (Shankar et al. 2020): 3x3 convolutions of ``width`` channels with the
  activation, in three stages separated by 2x2 average pooling, global average pooling, readout.
  depth - 1 convolutions are split over the stages as evenly as possible, extras first:
  depth 5 -> (2, 1, 1), 7 -> (2, 2, 2), 10 -> (3, 3, 3) as in the Myrtle family.
- ``resnet18``: the CIFAR ResNet-18 layout (He et al. 2016): a 3x3 stem of ``width`` channels,
  four stages of two BasicBlocks with width, 2 width, 4 width, 8 width channels (strides 1, 2, 2,
  2), global average pooling, readout. With no normalisation layer, each block returns
  phi((shortcut(x) + branch(x)) / sqrt(2)), so the scale of the signal is kept through depth.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from earlyphase.core.conventions import PARAMETERIZATIONS, default_sigma_w2
from earlyphase.core.validate import ConfigError, require_choice, require_positive
from earlyphase.empirical.config import (  # the names a configuration may take, declared with it
    READOUTS,
    check_architecture,
)

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "linear": lambda h: h,
}


def layer_scale(fan_in: int, gain2: float, parameterization: str) -> tuple[float, float]:
    """(init std s, multiplier m) of a layer: standard s = sqrt(g^2/n), m = 1; NTK s = 1, m = sqrt(g^2/n)."""
    scale = math.sqrt(gain2 / fan_in)
    return (scale, 1.0) if parameterization == "standard" else (1.0, scale)


def readout_scale(fan_in: int, readout: str, parameterization: str) -> tuple[float, float]:
    """(init std, multiplier) of the readout: g^2 = 1 (standard), 1/n (mup); zero readout has std 0."""
    if readout == "zero":
        return 0.0, layer_scale(fan_in, 1.0, parameterization)[1]
    return layer_scale(fan_in, 1.0 if readout == "standard" else 1.0 / fan_in, parameterization)


class ScaledLinear(nn.Module):
    """h_out = m * W h_in with W ~ N(0, std^2), no bias."""

    def __init__(self, fan_in: int, fan_out: int, init_std: float, multiplier: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in) * init_std)
        self.multiplier = multiplier

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = F.linear(h, self.weight)
        return out if self.multiplier == 1.0 else self.multiplier * out


class ScaledConv2d(nn.Module):
    """h_out = m * (W * h_in), a 'same'-padded square convolution with W ~ N(0, std^2), no bias."""

    def __init__(
        self, in_channels: int, out_channels: int, init_std: float, multiplier: float, kernel: int = 3, stride: int = 1
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel) * init_std)
        self.multiplier = multiplier
        self.stride = stride
        self.padding = kernel // 2

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(h, self.weight, stride=self.stride, padding=self.padding)
        return out if self.multiplier == 1.0 else self.multiplier * out


def _conv(
    in_channels: int, out_channels: int, gain2: float, parameterization: str, kernel: int = 3, stride: int = 1
) -> ScaledConv2d:
    """A square convolution of gain g^2 = ``gain2`` over its fan-in (in_channels * kernel^2)."""
    std, multiplier = layer_scale(in_channels * kernel * kernel, gain2, parameterization)
    return ScaledConv2d(in_channels, out_channels, std, multiplier, kernel, stride)


@dataclass(frozen=True)
class NetOptions:
    """The options all built-in networks share: the activation phi, the hidden gain sigma_w^2
    (None: the activation's default, see ``default_sigma_w2``), the readout and the parameterisation."""

    activation: str = "relu"
    sigma_w2: float | None = None
    readout: str = "standard"
    parameterization: str = "standard"

    def __post_init__(self) -> None:
        require_choice("activation", self.activation, ACTIVATIONS)
        require_choice("readout", self.readout, READOUTS)
        require_choice("parameterization", self.parameterization, PARAMETERIZATIONS)
        if self.sigma_w2 is not None:
            require_positive("sigma_w2", self.sigma_w2)

    @property
    def gain2(self) -> float:
        """g^2 of the hidden layers: sigma_w^2 if given, else the activation's default."""
        return default_sigma_w2(self.activation) if self.sigma_w2 is None else self.sigma_w2

    @property
    def phi(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The activation function."""
        return ACTIVATIONS[self.activation]

    def linear(self, fan_in: int, fan_out: int) -> ScaledLinear:
        """A hidden fully connected layer of gain g^2 = ``gain2``."""
        return ScaledLinear(fan_in, fan_out, *layer_scale(fan_in, self.gain2, self.parameterization))

    def conv(self, in_channels: int, out_channels: int, stride: int = 1) -> ScaledConv2d:
        """A hidden 3x3 convolution of gain g^2 = ``gain2``."""
        return _conv(in_channels, out_channels, self.gain2, self.parameterization, stride=stride)

    def readout_layer(self, fan_in: int, num_outputs: int) -> ScaledLinear:
        """The readout layer, scaled by ``readout_scale``."""
        return ScaledLinear(fan_in, num_outputs, *readout_scale(fan_in, self.readout, self.parameterization))


class FCN(nn.Module):
    """f(x) = W_d phi(... phi(W_1 vec(x))): depth weight layers, hidden width ``width``, no biases."""

    def __init__(self, input_dim: int, num_outputs: int, depth: int, width: int, options: NetOptions) -> None:
        super().__init__()
        fan_ins = [input_dim] + [width] * (depth - 1)
        self.hidden = nn.ModuleList(options.linear(fan_in, width) for fan_in in fan_ins[:-1])
        self.readout = options.readout_layer(fan_ins[-1], num_outputs)
        self.activation = options.phi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(1)
        for layer in self.hidden:
            h = self.activation(layer(h))
        return self.readout(h)


def myrtle_stages(depth: int) -> tuple[int, int, int]:
    """Convolutions per stage: depth - 1 split over 3 stages, remainder to the first ones."""
    convs = depth - 1
    return tuple(convs // 3 + (1 if stage < convs % 3 else 0) for stage in range(3))  # type: ignore[return-value]


class MyrtleCNN(nn.Module):
    """Myrtle-style CNN: [conv3x3-phi] x n1, pool, [conv3x3-phi] x n2, pool, [conv3x3-phi] x n3, GAP, readout."""

    def __init__(self, in_channels: int, num_outputs: int, depth: int, width: int, options: NetOptions) -> None:
        super().__init__()
        self.stages = nn.ModuleList()
        channels = in_channels
        for count in myrtle_stages(depth):
            stage = nn.ModuleList()
            for _ in range(count):
                stage.append(options.conv(channels, width))
                channels = width
            self.stages.append(stage)
        self.readout = options.readout_layer(width, num_outputs)
        self.activation = options.phi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for index, stage in enumerate(self.stages):
            if index > 0:
                h = F.avg_pool2d(h, 2)
            for conv in stage:  # type: ignore[attr-defined]
                h = self.activation(conv(h))
        return self.readout(h.mean(dim=(2, 3)))


class BasicBlock(nn.Module):
    """phi((shortcut(x) + W2 * phi(W1 * x)) / sqrt(2)); shortcut = 1x1 conv when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, options: NetOptions) -> None:
        super().__init__()
        self.conv1 = options.conv(in_channels, out_channels, stride=stride)
        self.conv2 = options.conv(out_channels, out_channels)
        reshape = stride != 1 or in_channels != out_channels
        self.shortcut = _conv(in_channels, out_channels, 1.0, options.parameterization, 1, stride) if reshape else None
        self.activation = options.phi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.conv2(self.activation(self.conv1(x)))
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.activation((skip + branch) * (1.0 / math.sqrt(2.0)))


class ResNet18(nn.Module):
    """ResNet-18 (CIFAR layout) without normalisation layers; base width ``width`` (64 in He et al.)."""

    def __init__(self, in_channels: int, num_outputs: int, width: int, options: NetOptions) -> None:
        super().__init__()
        self.stem = options.conv(in_channels, width)
        blocks = []
        channels = width
        for stage, stride in enumerate((1, 2, 2, 2)):
            out_channels = width * 2**stage
            for block in range(2):
                blocks.append(BasicBlock(channels, out_channels, stride if block == 0 else 1, options))
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.readout = options.readout_layer(channels, num_outputs)
        self.activation = options.phi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.activation(self.stem(x)))
        return self.readout(h.mean(dim=(2, 3)))


def build_model(
    arch: str,
    input_shape: Sequence[int],
    num_outputs: int,
    depth: int,
    width: int,
    activation: str = "relu",
    sigma_w2: float | None = None,
    readout: str = "standard",
    parameterization: str = "standard",
    seed: int = 0,
) -> nn.Module:
    """A freshly initialised network; its weights are drawn from torch's CPU RNG seeded with ``seed``.

    Convolutional nets need channels-first image inputs (C, H, W); FCNs take any shape (flattened).
    """
    check_architecture(arch, depth, width)
    options = NetOptions(activation, sigma_w2, readout, parameterization)
    if arch != "fcn" and len(input_shape) != 3:
        raise ConfigError(
            f"arch {arch!r} needs image inputs of shape (C, H, W), got input shape {tuple(input_shape)}", "arch"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if arch == "fcn":
            return FCN(math.prod(input_shape), num_outputs, depth, width, options)
        if arch == "cnn":
            return MyrtleCNN(input_shape[0], num_outputs, depth, width, options)
        return ResNet18(input_shape[0], num_outputs, width, options)
