"""Initialisation and layout of the built-in networks (docs/PROTOCOL.md section 6)."""

import math

import pytest
import torch
from torch import nn

from earlyphase.empirical.models import FCN, MyrtleCNN, ResNet18, build_model, myrtle_stages
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)


def weight_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if hasattr(m, "weight") and isinstance(m.weight, nn.Parameter)]


@pytest.mark.parametrize("activation,expected", [("relu", 2.0), ("tanh", 1.0), ("linear", 1.0)])
def test_fcn_standard_initialisation_variances(activation, expected):
    net = build_model("fcn", (300,), 10, depth=3, width=400, activation=activation, seed=0)
    first, second = net.hidden
    assert first.weight.shape == (400, 300)
    assert first.weight.var().item() == pytest.approx(expected / 300, rel=0.03)
    assert second.weight.var().item() == pytest.approx(expected / 400, rel=0.03)
    assert net.readout.weight.var().item() == pytest.approx(1 / 400, rel=0.15)
    assert all(m.multiplier == 1.0 for m in weight_layers(net))
    assert not any(name.endswith("bias") for name, _ in net.named_parameters())


def test_readout_variants():
    zero = build_model("fcn", (20,), 3, depth=2, width=500, readout="zero", seed=0)
    assert torch.count_nonzero(zero.readout.weight) == 0
    assert torch.count_nonzero(zero(torch.randn(4, 20))) == 0
    mup = build_model("fcn", (20,), 3, depth=2, width=500, readout="mup", seed=0)
    assert mup.readout.weight.std().item() == pytest.approx(1 / 500, rel=0.1)  # 1/width, not 1/sqrt(width)


@pytest.mark.parametrize(
    "arch,shape,depth", [("fcn", (1, 8, 8), 3), ("cnn", (1, 8, 8), 5), ("resnet18", (3, 8, 8), 18)]
)
def test_ntk_parameterisation_is_the_same_function_at_initialisation(arch, shape, depth):
    standard = build_model(arch, shape, 10, depth, 4, seed=7)
    ntk = build_model(arch, shape, 10, depth, 4, parameterization="ntk", seed=7)
    x = torch.randn(5, *shape)
    assert torch.allclose(standard(x), ntk(x), rtol=1e-4, atol=1e-6)
    hidden = weight_layers(ntk)[0]
    assert hidden.weight.var().item() == pytest.approx(1.0, rel=0.5)
    assert hidden.multiplier == pytest.approx(math.sqrt(2.0 / hidden.weight[0].numel()))


def test_depth_counts_weight_layers():
    assert len(weight_layers(build_model("fcn", (5,), 2, depth=6, width=3))) == 6
    for depth, stages in [(5, (2, 1, 1)), (7, (2, 2, 2)), (10, (3, 3, 3))]:
        assert myrtle_stages(depth) == stages
        net = build_model("cnn", (3, 32, 32), 10, depth, 4)
        assert isinstance(net, MyrtleCNN) and len(weight_layers(net)) == depth
        assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet18_layout_without_normalisation():
    net = build_model("resnet18", (3, 16, 16), 10, 18, width=2)
    assert isinstance(net, ResNet18)
    convs = [m for m in weight_layers(net) if m.weight.dim() == 4 and m.weight.shape[-1] == 3]
    assert len(convs) == 17  # stem + 16 in the blocks; + readout = 18 weight layers on the main path
    assert net.readout.weight.shape == (10, 16)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm | nn.GroupNorm | nn.LayerNorm) for m in net.modules())
    assert net(torch.randn(3, 3, 16, 16)).shape == (3, 10)


def test_seed_fixes_the_initialisation_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a = build_model("fcn", (6,), 2, depth=3, width=4, seed=3)
    b = build_model("fcn", (6,), 2, depth=3, width=4, seed=3)
    c = build_model("fcn", (6,), 2, depth=3, width=4, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.readout.weight, c.readout.weight)
    assert isinstance(a, FCN)


@pytest.mark.parametrize(
    "arch,shape,depth,message",
    [
        ("cnn", (1, 8, 8), 3, "depth must be >= 4"),
        ("resnet18", (3, 8, 8), 17, "depth must be 18"),
        ("cnn", (64,), 5, "image inputs"),
        ("mlp", (64,), 2, "arch must be one of"),
        ("fcn", (64,), 0, "depth must be >= 1"),
    ],
)
def test_bad_architectures(arch, shape, depth, message):
    with pytest.raises(ValueError, match=message):
        build_model(arch, shape, 10, depth, 4)
