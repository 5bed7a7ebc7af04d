"""Small bad inputs: one-line errors naming the parameter and its allowed range."""

import sys

import pytest

from earlyphase.cli import main
from empirical_helpers import ONE_STEP_TRAIN


def _refused(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize("x_max", ["nan", "1e9", "2000", "inf", "-1"])
def test_predict_x_max_out_of_range_names_x_max_and_the_range(capsys, x_max):
    err = _refused(capsys, ["predict", "--model", "uv", "--width", "8", "--seeds", "1", "--x-max", x_max])
    assert "x_max" in err and "[0, 20]" in err, err


def test_predict_uv_grid_defaults_to_depth_2(tmp_path, capsys):
    # the uv model has no depth: a grid of the uv model uses depth 2 unless --depths is given
    out = tmp_path / "uv.csv"
    assert (
        main(["predict", "--model", "uv", "--grid", "--widths", "8", "--seeds", "1", "--x-max", "3", "--out", str(out)])
        == 0
    )
    assert set(__import__("pandas").read_csv(out)["depth"]) == {2}
    err = _refused(
        capsys, ["predict", "--model", "uv", "--grid", "--depths", "2,4", "--widths", "8", "--out", str(out)]
    )
    assert "--depths" in err and "uv" in err


def test_predict_output_aligns_every_boundary(capsys):
    assert main(["predict", "--model", "uv", "--width", "8", "--seeds", "2", "--x-max", "3"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  c_")]
    assert len(lines) == 4
    assert len({line.index("=") for line in lines if "=" in line}) == 1, lines
    assert all("median" in line for line in lines if "=" in line)


def test_a_non_utf8_spec_names_the_file(tmp_path, capsys):
    spec = tmp_path / "latin1.toml"
    spec.write_bytes('name = "caf\xe9"\n[model]\ndepths = [2]\nwidths = [4]\n'.encode("latin-1"))
    err = _refused(capsys, ["sweep", str(spec), "--out", str(tmp_path / "out")])
    assert str(spec) in err and "UTF-8" in err


def test_batch_size_above_the_dataset_is_recorded_as_used(tmp_path, capsys):
    import json

    argv = [*ONE_STEP_TRAIN, "--batch-size", "512", "--out", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)["record"]
    config = json.loads(open(record).read())["config"]
    assert config["batch_size"] == 512 and config["batch_size_used"] == 32
    assert main([*argv, "--name", "table"]) == 0
    assert "batch size 512 > n_train 32: full-batch gradient descent on 32 examples" in capsys.readouterr().out


def test_cifar_dtype_error_says_dtype_not_shape():
    import numpy as np

    from earlyphase.empirical.data import DataFileError
    from earlyphase.empirical.data.cifar import ROW_LENGTH, read_batch

    blob = __import__("pickle").dumps({b"data": np.zeros((2, ROW_LENGTH), np.float32), b"labels": [0, 1]})
    with pytest.raises(DataFileError, match="wrong dtype") as error:
        read_batch(blob, "batch")
    assert "wrong shape" not in str(error.value)


def test_accelerator_bench_says_why_the_cifar_parts_are_skipped(tmp_path, monkeypatch, capsys):
    import importlib.util
    import json
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "bench_accelerator.py"
    spec = importlib.util.spec_from_file_location("bench_accelerator", path)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_accelerator", bench)  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    monkeypatch.setenv("OUT", str(tmp_path))
    bench.main(["--data", str(tmp_path / "missing.tar.gz"), "--device", "cpu", "--skip", "equality", "--budget", "60"])
    out = capsys.readouterr().out
    assert "skipped (--skip)" in out  # equality was skipped on request
    for part in ("diagram", "speedup"):  # (tf32 is skipped on a CPU for its own reason)
        assert f"[{part}] skipped (no CIFAR-10 data)" in out
    report = json.loads((tmp_path / "accelerator.json").read_text())
    assert "diagram: no CIFAR-10 data" in report["skipped"]
