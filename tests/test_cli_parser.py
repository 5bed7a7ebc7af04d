"""The program's parser: every help text formats, `sweep` actions, defaults taken from the library."""

import inspect

import pytest

from earlyphase.cli import build_parser, main, with_default_action
from earlyphase.cli.predict import _grid_depths, _options, _shape
from earlyphase.theory.predict import GRID_DEPTHS, PredictConfig, predict_critical_values


def test_the_help_of_the_whole_program_formats():
    text = build_parser().format_help()
    for name in ("compare", "demo", "figures", "predict", "sweep", "train"):
        assert name in text


@pytest.mark.parametrize(
    "argv", [["sweep"], ["sweep", "run"], ["sweep", "status"], ["sweep", "tables"], ["predict"], ["train"]]
)
def test_every_subcommand_help_formats(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["sweep", "spec.toml", "--out", "D"], ["sweep", "run", "spec.toml", "--out", "D"]),
        (["sweep", "--out", "D", "--depths", "2"], ["sweep", "run", "--out", "D", "--depths", "2"]),
        (["sweep", "run", "spec.toml"], ["sweep", "run", "spec.toml"]),
        (["sweep", "status", "D"], ["sweep", "status", "D"]),
        (["sweep", "--help"], ["sweep", "--help"]),
        (["predict", "--model", "uv"], ["predict", "--model", "uv"]),
    ],
)
def test_sweep_runs_when_no_action_is_named(argv, expected):
    assert with_default_action(argv) == expected


def test_sweep_actions_parse_their_arguments():
    parser = build_parser()
    run = parser.parse_args(with_default_action(["sweep", "spec.toml", "--out", "D", "--jobs", "2"]))
    assert (run.action, run.spec, run.out, run.jobs) == ("run", "spec.toml", "D", 2)
    status = parser.parse_args(["sweep", "status", "D"])
    assert (status.action, status.out) == ("status", "D") and status.run.__name__ == "show_status"


def test_predict_defaults_are_the_library_defaults():
    """Flags shared with --model init default to None (init takes TrainConfig's); the theory then
    uses PredictConfig's, so the configuration built from no flags is PredictConfig's default."""
    args = build_parser(only="predict").parse_args(["predict"])
    for name in ("model", "seeds", "first_seed", "examples", "outputs", "target", "x_max"):
        assert getattr(args, name) == getattr(PredictConfig, name), name
    config = PredictConfig.for_model(args.model, **dict(zip(("depth", "width"), _shape(args))), **_options(args))
    assert config == PredictConfig()
    assert inspect.signature(predict_critical_values).parameters["seeds"].default == PredictConfig.seeds
    assert _grid_depths(args) == list(GRID_DEPTHS)
