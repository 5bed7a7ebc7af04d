"""A sweep spec is resolved whole (dataset named and found, sizes, device, c range) before DIR exists."""

import pytest

from earlyphase.cli import main
from earlyphase.empirical.sweep.preflight import preflight
from earlyphase.empirical.sweep.spec import spec_from_mapping

TINY = [
    "--depths",
    "2",
    "--widths",
    "4",
    "--steps",
    "1",
    "--measure-size",
    "8",
    "--n-train",
    "32",
    "--x-max",
    "0.2",
    "--x-start",
    "0",
    "--jobs",
    "1",
    "--threads",
    "1",
    "--no-progress",
    "--barrier",
    "false",
]


def _refused(capsys, argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "extra,expected",
    [
        (["--dataset", "foo"], "data.dataset"),
        (["--dataset", "fashion-mnist"], "did you mean 'fashion_mnist'"),
        (["--dataset", "fashion_mnist", "--data-path", "/nonexistent/fmnist"], "/nonexistent/fmnist"),
        (["--n-train", "5000"], "n_train"),
        (["--x-max", "1e9"], "x_max"),
        (["--x-max", "nan"], "x_max"),
    ],
)
def test_a_bad_spec_is_refused_in_one_line_and_no_directory_is_created(tmp_path, capsys, extra, expected):
    out = tmp_path / "sweep"
    err = _refused(capsys, ["sweep", "--out", str(out), *TINY, *extra])
    assert expected in err
    assert not out.exists()


def test_cuda_without_cuda_is_refused_before_the_directory(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "sweep"
    assert "CUDA" in _refused(capsys, ["sweep", "--out", str(out), *TINY, "--device", "cuda"])
    assert not out.exists()


def test_after_a_refused_spec_the_fixed_spec_runs_into_the_same_directory(tmp_path, capsys):
    out = tmp_path / "sweep"
    _refused(capsys, ["sweep", "--out", str(out), *TINY, "--dataset", "digitz"])
    assert main(["sweep", "--out", str(out), *TINY, "--dataset", "digits"]) == 0
    assert (out / "critical_values.csv").is_file()


def test_a_custom_runner_keeps_its_own_datasets():
    spec = spec_from_mapping(
        {"runner": "test_sweep_toy", "model": {"depths": [2], "widths": [4]}, "data": {"dataset": "mine"}}
    )
    preflight(spec)  # the toy runner does not load data: nothing to check


def test_a_remote_cluster_skips_the_device_check(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = spec_from_mapping(
        {"model": {"depths": [2], "widths": [4]}, "data": {"n_train": 32}, "execution": {"device": "cuda"}}
    )
    preflight(spec, this_machine_runs=False)
    with pytest.raises(ValueError, match="CUDA"):
        preflight(spec)
