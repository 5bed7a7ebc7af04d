"""The configuration schema: stored hashes unchanged, flat and nested forms agree, validation names section.key."""

import dataclasses

import pytest

from earlyphase.core.validate import ConfigError
from earlyphase.empirical.config import ModelConfig, ProtocolConfig, SeedConfig, TrainConfig
from earlyphase.empirical.sweep.spec import DEFAULT_RUNNER, SearchSpec, config_key, search_key

CONFIGS = {
    "default": {},
    "cnn": dict(
        arch="cnn",
        depth=5,
        width=16,
        dataset="cifar10",
        n_train=None,
        batch_size=None,
        steps=20,
        measure_size=1024,
        loss="cross_entropy",
        seed_init=3,
        seed_sgd=2,
        device="cuda",
        dtype="float64",
        sigma_w2=1.5,
        data_path="/x/cifar.tar.gz",
        chunk_size=256,
    ),
    "flags_eval": dict(
        depth=6,
        width=64,
        dataset="fashion_mnist",
        n_train=8192,
        eval_set="train",
        barrier_set="eval",
        measure_mode="flags",
        momentum=0.9,
        epsilon=0.05,
        ntk=True,
        readout="mup",
        parameterization="ntk",
        lanczos_tol=1e-3,
        warm_start=False,
        hvp_method="double_backward",
        measure_every=2,
    ),
    "flags_measure": dict(
        depth=3,
        width=32,
        measure_mode="flags",
        barrier=False,
        barrier_set="eval",
        eval_set="train",
        activation="tanh",
        loss_max=1e3,
        lanczos_max_iter=50,
        seed_measure=7,
    ),
}
# computed with the flat 33-field TrainConfig before the sections existed: results directories
# on disk are named by these hashes, so a resumed sweep finds its runs only if they never change
STORED_KEYS = {
    "default": ("145845dc95", "281ed99921"),
    "cnn": ("27ef066f6c", "490368114b"),
    "flags_eval": ("f8acfd4fee", "1be177ee5f"),
    "flags_measure": ("4a75433f84", "9a570fafd8"),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_key_is_the_stored_hash(name):
    config = TrainConfig.build(**CONFIGS[name])
    assert (config_key(config, DEFAULT_RUNNER), config_key(config, "my.module:obj")) == STORED_KEYS[name]


def test_search_key_is_the_stored_hash():
    assert search_key(SearchSpec()) == "ef924cfa"
    assert search_key(SearchSpec(method="grid", x_min=-1.0, x_max=7.0)) == "f2ff673d"


def test_flat_names_route_to_their_sections():
    config = TrainConfig.build(depth=3, width=16, steps=7, seed_init=2, seed_measure=5)
    assert config == TrainConfig(
        model=ModelConfig(depth=3, width=16), protocol=ProtocolConfig(steps=7), seeds=SeedConfig(init=2, measure=5)
    )
    assert config.flat()["seed_init"] == 2 and config.flat()["steps"] == 7 and len(config.flat()) == 33
    changed = config.replace(width=32, seed_sgd=1)
    assert (changed.model.width, changed.seeds.sgd, changed.model.depth, changed.seeds.init) == (32, 1, 3, 2)
    assert TrainConfig.build(**config.flat()) == config
    with pytest.raises(TypeError, match="depht"):
        TrainConfig.build(depht=3)


def test_every_default_is_declared_once():
    defaults = {s.name: s.default for s in TrainConfig.settings()}
    assert defaults == TrainConfig().flat()
    assert all(s.help for s in TrainConfig.settings())
    assert defaults["batch_size"] == 512 and defaults["measure_size"] == 4096 and defaults["loss_max"] == 1e5


@pytest.mark.parametrize(
    ("values", "parameter"),
    [
        (dict(arch="cnn", depth=3), "model.depth"),
        (dict(width=0), "model.width"),
        (dict(arch="mlp"), "model.arch"),
        (dict(sigma_w2=-1.0), "model.sigma_w2"),
        (dict(n_train=0), "data.n_train"),
        (dict(dataset=""), "data.dataset"),
        (dict(momentum=1.0), "protocol.momentum"),
        (dict(steps=-1), "protocol.steps"),
        (dict(lanczos_tol=1.0), "measurement.lanczos_tol"),
        (dict(barrier="yes"), "measurement.barrier"),
        (dict(chunk_size=0), "measurement.chunk_size"),
        (dict(seed_sgd=-1), "seeds.sgd"),
        (dict(device="gpu"), "execution.device"),
        (dict(dtype="float16"), "execution.dtype"),
    ],
)
def test_a_bad_value_names_its_section_and_key(values, parameter):
    with pytest.raises(ConfigError) as error:
        TrainConfig.build(**values)
    assert error.value.parameter == parameter and parameter in str(error.value)


def test_a_custom_architecture_takes_any_depth_label():
    assert TrainConfig.build(arch="custom", depth=1, width=3).model.depth == 1


def test_sections_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().model.depth = 3  # type: ignore[misc]


def _parse(*argv):
    from earlyphase.cli import build_parser

    return build_parser().parse_args(list(argv))


def test_train_flags_build_the_config_they_name():
    from earlyphase.cli.train import config_from_args

    args = _parse(
        *"train --c 1 --out X --arch cnn --depth 5 --width 8 --batch-size full --n-train all --no-barrier".split(),
        *"--cold-start --ntk --seed-measure 3 --seed-init 2 --lanczos-tol 1e-4 --chunk-size none --epsilon 0.1".split(),
    )
    expected = TrainConfig(
        model=ModelConfig(arch="cnn", depth=5, width=8),
        protocol=ProtocolConfig(batch_size=None, epsilon=0.1),
        measurement=dataclasses.replace(
            TrainConfig().measurement, barrier=False, warm_start=False, ntk=True, lanczos_tol=1e-4
        ),
        seeds=SeedConfig(init=2, measure=3),
    )
    assert config_from_args(args) == expected
    assert config_from_args(_parse(*"train --c 1 --out X".split())) == TrainConfig()
    assert config_from_args(_parse(*"train --c 1 --out X --barrier false --ntk true".split())) == TrainConfig.build(
        barrier=False, ntk=True
    )


def test_every_setting_is_a_flag_of_train_sweep_and_predict():
    import argparse

    from earlyphase.cli import build_parser

    parser = build_parser()
    commands = {
        name: parser._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
        for name in ("train", "sweep", "predict")
    }
    commands["sweep"] = commands["sweep"]._subparsers._group_actions[0].choices["run"]  # type: ignore[union-attr]
    swept = {"depth": "--depths", "width": "--widths", "seed_init": "--init-seeds", "seed_sgd": "--sgd-seeds"}
    for name, command in commands.items():
        flags = {
            option
            for action in command._actions
            if not isinstance(action, argparse._HelpAction)
            for option in action.option_strings
        }
        for setting in TrainConfig.settings():
            wanted = swept.get(setting.name, "--" + setting.name.replace("_", "-")) if name == "sweep" else None
            assert (wanted or "--" + setting.name.replace("_", "-")) in flags, (name, setting.name)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        ("train --c 1 --out X --steps many", "protocol.steps"),
        ("train --c 1 --out X --barrier maybe", "measurement.barrier"),
        ("sweep run --depths 2 x", "model.depths"),
    ],
)
def test_a_flag_of_the_wrong_type_is_a_usage_error_naming_the_key(argv, named, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parse(*argv.split())
    assert exit_info.value.code == 2 and named in capsys.readouterr().err
