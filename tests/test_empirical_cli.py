"""`earlyphase train` end to end on digits."""

import json

import numpy as np
import pytest

from earlyphase.cli import main
from earlyphase.core import ConfigError, Trajectory
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)

ARGS = [
    "train",
    "--arch",
    "fcn",
    "--depth",
    "3",
    "--width",
    "8",
    "--dataset",
    "digits",
    "--n-train",
    "64",
    "--measure-size",
    "32",
    "--batch-size",
    "16",
    "--steps",
    "3",
    "--threads",
    "1",
]


def test_json_output_matches_the_saved_record(tmp_path, capsys):
    assert main([*ARGS, "--c", "2.5", "--out", str(tmp_path), "--json", "--ntk"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"lambda0", "loss0", "losses", "sharpness", "diverged"} <= set(result)
    assert len(result["losses"]) == len(result["sharpness"]) == 4 and result["diverged"] is False
    record = Trajectory.load(result["record"])
    np.testing.assert_allclose(record.loss, result["losses"])
    np.testing.assert_allclose(record.sharpness, result["sharpness"])
    assert result["lambda0"] == record.lambda0 and result["eta"] == pytest.approx(2.5 / record.lambda0)
    assert record.config["batch_size"] == 16 and record.config["ntk"] is True
    assert record.seeds == {"init": 0, "sgd": 0, "measure": 0}


def test_divergence_is_reported_not_raised(tmp_path, capsys):
    assert main([*ARGS, "--c", "1e3", "--out", str(tmp_path), "--json", "--activation", "linear"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["diverged"] is True and result["barrier_loss"] is None
    assert result["losses"][-1] is None  # NaN after divergence becomes null


def test_table_output(tmp_path, capsys):
    assert main([*ARGS, "--c", "1", "--out", str(tmp_path), "--name", "mine"]) == 0
    out = capsys.readouterr().out
    assert "lambda_H0 =" in out and "2/eta" in out and (tmp_path / "mine.parquet").exists()


@pytest.mark.parametrize(
    "extra,message",
    [(["--arch", "cnn", "--depth", "2"], "depth must be >= 4"), (["--momentum", "1.5"], "momentum must be in")],
)
def test_bad_input_is_a_one_line_error(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        main([*ARGS, "--c", "1", "--out", str(tmp_path), *extra])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_bad_width_is_a_one_line_error_naming_it(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*ARGS[:6], "0", *ARGS[7:], "--c", "1", "--out", str(tmp_path)])
    error = capsys.readouterr().err.strip()
    assert (
        exit_info.value.code == 2
        and error.startswith("earlyphase: error: model.width must be >= 1")
        and "\n" not in error
    )


def test_an_internal_error_keeps_its_traceback(tmp_path, monkeypatch):
    """A shape error deep inside torch is a bug, not bad input: it propagates (a ValueError, not SystemExit)."""
    import torch

    import earlyphase.empirical.training as training

    def broken_prepare(config):
        return torch.nn.functional.cross_entropy(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))

    monkeypatch.setattr(training, "prepare", broken_prepare)
    with pytest.raises(ValueError, match="batch_size") as error:
        main([*ARGS, "--c", "1", "--out", str(tmp_path)])
    assert not isinstance(error.value, ConfigError)
