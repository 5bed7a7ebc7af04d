"""Sweep specifications: validation before any run, TOML round trip, CLI flags, shipped examples."""

import dataclasses
from pathlib import Path

import pytest

from earlyphase.cli import build_parser
from earlyphase.cli.sweep import overrides
from earlyphase.core.validate import ConfigError
from earlyphase.empirical.config import TrainConfig
from earlyphase.empirical.sweep.spec import SweepPoint, SweepSpec, load_spec, spec_from_mapping, spec_keys, to_toml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

MINIMAL = {"model": {"depths": [2, 4], "widths": [16, 32]}}


def with_key(section, key, value):
    data = {"model": dict(MINIMAL["model"])}
    data.setdefault(section, {})[key] = value
    return data


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"modle": {"depths": [2]}}, "modle"),
        (with_key("model", "depth", [2]), "model.depth"),
        (with_key("protocol", "stepz", 3), "protocol.stepz"),
        (with_key("model", "depths", 4), "model.depths"),
        (with_key("model", "depths", []), "model.depths"),
        (with_key("model", "depths", [0, 2]), "model.depths"),
        (with_key("model", "depths", [2, 2]), "model.depths"),
        (with_key("model", "widths", []), "model.widths"),
        (with_key("model", "widths", ["32"]), "model.widths"),
        (with_key("protocol", "steps", 2.5), "protocol.steps"),
        (with_key("protocol", "steps", 0), "protocol.steps"),
        (with_key("protocol", "batch_size", 0), "protocol.batch_size"),
        (with_key("protocol", "momentum", 1.5), "protocol.momentum"),
        (with_key("protocol", "loss", "hinge"), "protocol.loss"),
        (with_key("protocol", "loss_max", -1.0), "protocol.loss_max"),
        (with_key("measurement", "barrier", "yes"), "measurement.barrier"),
        (with_key("data", "measure_size", 0), "data.measure_size"),
        (with_key("seeds", "init", [-1]), "seeds.init"),
        (with_key("seeds", "measure", 1.5), "seeds.measure"),
        (with_key("search", "method", "random"), "search.method"),
        (with_key("search", "x_max", -1.0), "search.x_max"),
        (with_key("search", "x_step", 0.0), "search.x_step"),
        (with_key("search", "x_start", 9.0), "search.x_start"),
        (with_key("search", "expand_step", 0), "search.expand_step"),
        (with_key("execution", "runs_per_device", 0), "execution.runs_per_device"),
        (with_key("execution", "device", "gpu"), "execution.device"),
        ({"model": {"widths": [8]}}, "model.depths"),
        ({"model": {"arch": "cnn", "depths": [3], "widths": [8]}}, "model.depths"),
        ({**MINIMAL, "runner": ""}, "runner"),
    ],
)
def test_invalid_specs_are_rejected_naming_the_key(data, named):
    with pytest.raises(ConfigError) as error:
        spec_from_mapping(data)
    assert error.value.parameter == named and named in str(error.value)


def test_toml_round_trip_and_points(tmp_path):
    data = {
        "name": "t",
        "model": {"depths": [2, 4], "widths": [16], "readout": "zero"},
        "protocol": {"batch_size": "full", "steps": 3},
        "data": {"n_train": 200},
        "seeds": {"init": [0, 1, 2], "sgd": [5]},
        "search": {"method": "grid", "x_max": 3.0},
    }
    spec = spec_from_mapping(data)
    assert spec.base.protocol.batch_size is None and spec.base.model.readout == "zero" and spec.base.data.n_train == 200
    assert len(spec.points()) == 2 * 1 * 3 * 1
    assert spec.config(SweepPoint(4, 16, 2, 5)) == dataclasses.replace(
        spec.base,
        model=dataclasses.replace(spec.base.model, depth=4, width=16),
        seeds=dataclasses.replace(spec.base.seeds, init=2, sgd=5),
    )
    path = tmp_path / "spec.toml"
    path.write_text(to_toml(spec))
    assert load_spec(path) == spec
    assert load_spec(path, {"protocol": {"steps": 7}}).base.protocol.steps == 7


def test_every_train_config_setting_is_a_spec_key_of_its_section():
    keys = set(spec_keys())
    swept = {("model", "depth"): ("model", "depths"), ("model", "width"): ("model", "widths")}
    for setting in TrainConfig.settings():
        assert swept.get((setting.section, setting.key), (setting.section, setting.key)) in keys, setting.name


def test_the_file_layout_is_unchanged():
    """Every section and key, in the order ``to_toml`` writes them (the files on disk)."""
    layout = {
        "model": "depths widths arch activation sigma_w2 readout parameterization",
        "data": "dataset data_path n_train measure_size eval_set",
        "protocol": "batch_size steps loss momentum loss_max epsilon",
        "measurement": "barrier barrier_set ntk measure_every lanczos_tol lanczos_max_iter warm_start hvp_method "
        "chunk_size measure_mode",
        "seeds": "init sgd measure",
        "search": "method x_min x_max x_step x_start expand_step confirm lookahead",
        "execution": "device dtype runs_per_device ensemble",
    }
    assert spec_keys() == [(section, key) for section, keys in layout.items() for key in keys.split()]


def test_cli_flags_equal_the_toml_file(tmp_path):
    toml = """
        [model]
        depths = [2, 3]
        widths = [8, 16]
        readout = "zero"
        [protocol]
        batch_size = "full"
        steps = 4
        momentum = 0.5
        [measurement]
        barrier = false
        [seeds]
        init = [0, 1]
        measure = 3
        [search]
        method = "grid"
        x_min = -1.0
    """
    path = tmp_path / "spec.toml"
    path.write_text(toml)
    argv = "sweep --out X --depths 2 3 --widths 8 16 --readout zero --batch-size full --steps 4 --momentum 0.5"
    argv += " --barrier false --init-seeds 0 1 --measure-seed 3 --search grid --x-min -1"
    args = build_parser().parse_args(["sweep", "run", *argv.split()[1:]])
    assert spec_from_mapping(overrides(args)) == load_spec(path)
    # the file's values, written out by hand (not re-derived by the parser under test)
    spec = load_spec(path)
    assert (spec.depths, spec.widths, spec.init_seeds) == ((2, 3), (8, 16), (0, 1))
    base = spec.base
    assert (base.model.readout, base.protocol.batch_size, base.protocol.steps, base.protocol.momentum) == (
        "zero",
        None,
        4,
        0.5,
    )
    assert (base.measurement.barrier, base.seeds.measure) == (False, 3)
    assert (spec.search.method, spec.search.x_min) == ("grid", -1.0)
    defaults = SweepSpec(base=TrainConfig(), depths=(2, 3), widths=(8, 16), init_seeds=(0, 1), sgd_seeds=spec.sgd_seeds)
    assert spec == dataclasses.replace(  # the base holds the first depth and width
        defaults,
        base=TrainConfig.build(
            depth=2,
            width=8,
            readout="zero",
            batch_size=None,
            steps=4,
            momentum=0.5,
            barrier=False,
            seed_measure=3,
            measure_mode="flags",  # a sweep's own default: only what the flags need
        ),
        search=dataclasses.replace(defaults.search, method="grid", x_min=-1.0),
    )  # and nothing else differs from the defaults


def test_bad_toml_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[model\ndepths = [2]")
    with pytest.raises(ValueError, match="broken.toml"):
        load_spec(path)
    with pytest.raises(ValueError, match="not found"):
        load_spec(tmp_path / "missing.toml")


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_shipped_examples_are_valid_and_use_several_init_seeds(path):
    spec = load_spec(path)
    assert len(spec.init_seeds) >= 4
    assert spec.name
