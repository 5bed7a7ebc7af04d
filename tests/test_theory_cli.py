"""``earlyphase predict``: JSON contract, tables, and clear errors for bad input."""

import json

import pandas as pd
import pytest

from earlyphase.cli import main


def test_json_holds_the_three_critical_values(capsys):
    assert main(["predict", "--model", "uv", "--width", "256", "--seeds", "4", "--json", "--ratio-at", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    for name in ("c_loss", "c_sharp", "c_max"):
        assert set(result[name]) >= {"mean", "std", "low", "high"}
        assert result[name]["low"] <= result[name]["mean"] <= result[name]["high"]
    assert result["c_loss"]["high"] == pytest.approx(2**1.1) and result["c_max"]["mean"] == pytest.approx(4.0)
    assert len(result["per_seed"]) == 4 and result["sharpness_ratio"]["c"] == 3.0
    assert result["d_over_w"] == pytest.approx(2 / 256)


def test_text_report(capsys):
    assert main(["predict", "--model", "uv", "--width", "64", "--seeds", "3"]) == 0
    out = capsys.readouterr().out
    assert "c_loss" in out and "c_max" in out and "bracket" in out


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_grid_writes_a_tidy_table(tmp_path, capsys, suffix):
    out = tmp_path / f"grid{suffix}"
    assert (
        main(
            [
                "predict",
                "--model",
                "uv",
                "--grid",
                "--depths",
                "2",
                "--widths",
                "32,128",
                "--seeds",
                "3",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert len(table) == 8 and set(table["boundary"]) == {"c_loss", "c_sharp", "c_max", "c_barrier"}
    assert list(table.columns[:12]) == [
        "source",
        "arch",
        "depth",
        "width",
        "d_over_w",
        "boundary",
        "mean",
        "std",
        "low",
        "high",
        "found",
        "seeds",
    ]
    assert sorted(table["d_over_w"].unique()) == [2 / 128, 2 / 32]
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    "arguments,name",
    [
        (["--width", "0"], "width"),
        (["--depth", "1"], "depth"),
        (["--seeds", "0"], "seeds"),
        (["--model", "mlp"], "model"),
        (["--ratio-at", "0"], "c"),
        (["--ratio-at", "-2"], "c"),
        (["--model", "uv", "--depth", "3"], "depth"),
        (["--grid", "--depths", "2,three"], "--depths"),
        (["--grid", "--out", "table.txt"], "--out"),
    ],
)
def test_bad_input_is_a_one_line_error_naming_the_parameter(arguments, name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", *arguments])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("earlyphase: error:") and name in error and "\n" not in error


def test_predict_builds_only_its_own_options_and_never_imports_torch():
    import subprocess
    import sys

    script = (
        "import sys; from earlyphase.cli import main; "
        "assert main(['predict', '--model', 'uv', '--width', '8', '--seeds', '1', '--json']) == 0; "
        "assert 'torch' not in sys.modules, 'predict imported torch'"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["model"] == "uv"
