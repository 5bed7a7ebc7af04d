"""Every command checks its output location before computing: a bad --out costs a second, not a run."""

import pytest

from earlyphase.cli import main
from earlyphase.core.paths import check_output_dir, check_output_file, check_record_name


def _no_compute(*_args, **_kwargs):
    raise AssertionError("computed before the output location was checked")


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "regular_file"
    path.write_text("not a directory")
    return path


@pytest.fixture
def no_compute(monkeypatch):
    import earlyphase.compare.demo as demo
    import earlyphase.compare.init_sweep as init_sweep
    import earlyphase.compare.pipeline as pipeline
    import earlyphase.empirical.sweep.driver as driver
    import earlyphase.empirical.training as training
    import earlyphase.theory.predict as predict

    monkeypatch.setattr(training, "prepare", _no_compute)
    monkeypatch.setattr(predict, "predict_grid", _no_compute)
    monkeypatch.setattr(pipeline, "read_critical_values", _no_compute)
    monkeypatch.setattr(driver, "run_sweep", _no_compute)
    monkeypatch.setattr(demo, "run_demo", _no_compute)
    monkeypatch.setattr(init_sweep, "predict_sweep_dir", _no_compute)


def _refused(capsys, argv, flag):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert flag in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


TRAIN = ["train", "--depth", "2", "--width", "4", "--n-train", "32", "--measure-size", "8", "--steps", "1", "--c", "1"]


@pytest.mark.parametrize(
    "argv_of,flag",
    [
        (lambda bad: [*TRAIN, "--out", str(bad / "sub")], "--out"),
        (lambda bad: ["predict", "--grid", "--depths", "2", "--widths", "4", "--out", str(bad / "t.csv")], "--out"),
        (lambda bad: ["sweep", "--out", str(bad / "s"), "--depths", "2", "--widths", "4"], "--out"),
        (lambda bad: ["demo", "--out", str(bad / "d")], "--out"),
        (lambda bad: ["predict", "--model", "init", "--from-sweep", str(bad / "s")], "--from-sweep"),
    ],
)
def test_an_output_under_a_regular_file_is_refused_before_any_compute(a_file, no_compute, capsys, argv_of, flag):
    err = _refused(capsys, argv_of(a_file), flag)
    assert str(a_file) in err


def test_compare_out_under_a_regular_file_is_refused_before_reading(a_file, tmp_path, no_compute, capsys):
    _refused(capsys, ["compare", str(tmp_path), "--theory", "none", "--out", str(a_file / "x.png")], "--out")


def test_figures_dir_that_is_a_file_is_refused(a_file, capsys, monkeypatch):
    import earlyphase.compare.figures as figures

    monkeypatch.setattr(figures, "draw_figures", _no_compute)
    _refused(capsys, ["figures", str(a_file)], "FIGURES_DIR")


def test_an_unwritable_directory_is_refused(no_compute, capsys):
    # /proc refuses new files even to root (chmod does not stop root)
    _refused(capsys, [*TRAIN, "--out", "/proc/earlyphase-out"], "--out")


def test_library_checks(tmp_path, a_file):
    assert check_output_dir(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    assert check_output_file(tmp_path / "t.csv", "--out") == tmp_path / "t.csv"
    with pytest.raises(ValueError, match="--out .*is a directory"):
        check_output_file(tmp_path, "--out")
    with pytest.raises(ValueError, match="not a directory"):
        check_output_dir(a_file, "--out")
    assert list(tmp_path.iterdir()) == [a_file]  # the write probe is removed
    for bad in ("../x", "../../x", "/abs/x", "a/b", "..", ".", ""):
        with pytest.raises(ValueError, match="--name"):
            check_record_name(bad, "--name")
    assert check_record_name("fcn_d4", "--name") == "fcn_d4"
