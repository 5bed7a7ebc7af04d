"""Faults while writing and reading run records: disk full, and a Parquet from another run."""

import errno
import json

import numpy as np
import pandas as pd
import pytest

from earlyphase.core.trajectory import RecordMismatchError, Trajectory, is_complete_record
from empirical_helpers import ONE_STEP_TRAIN


def _record(c: float, loss0: float = 1.0) -> Trajectory:
    loss = np.array([loss0, 0.9, 0.8]) * c
    return Trajectory.from_arrays(c, c / 10, loss, "mse", sharpness=[10.0, 11.0, 12.0], config={"depth": 2})


def _disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failing", ["parquet", "json"])
def test_disk_full_leaves_the_previous_record_intact_and_no_temporary_files(tmp_path, monkeypatch, failing):
    stem = tmp_path / "run"
    _record(1.0).save(stem)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    if failing == "parquet":
        monkeypatch.setattr(pd.DataFrame, "to_parquet", _disk_full)
    else:
        original = type(tmp_path).write_text
        monkeypatch.setattr(
            type(tmp_path),
            "write_text",
            lambda self, *a, **k: _disk_full() if self.name.endswith(".tmp") else original(self, *a, **k),
        )
    with pytest.raises(OSError, match="No space left"):
        _record(2.0).save(stem)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # previous record, nothing else
    assert Trajectory.load(stem).c == 1.0


def test_a_parquet_from_another_run_is_detected(tmp_path):
    _record(1.0).save(tmp_path / "a")
    _record(2.0).save(tmp_path / "b")
    (tmp_path / "a.parquet").write_bytes((tmp_path / "b.parquet").read_bytes())  # valid JSON, foreign Parquet
    assert is_complete_record(tmp_path / "b") and not is_complete_record(tmp_path / "a")
    with pytest.raises(RecordMismatchError, match="a.parquet"):
        Trajectory.load(tmp_path / "a")


def test_records_written_before_the_digest_existed_still_load(tmp_path):
    _record(1.0).save(tmp_path / "old")
    meta = json.loads((tmp_path / "old.json").read_text())
    meta.pop("parquet_sha256")
    (tmp_path / "old.json").write_text(json.dumps(meta))
    assert is_complete_record(tmp_path / "old") and Trajectory.load(tmp_path / "old").c == 1.0


def test_a_sweep_recomputes_a_run_whose_parquet_is_foreign(tmp_path):
    from earlyphase.empirical.sweep import run_sweep, spec_from_mapping
    from earlyphase.empirical.sweep.executors import LocalExecutor

    spec = spec_from_mapping(
        {"runner": "test_sweep_toy", "model": {"depths": [2], "widths": [16]}, "search": {"x_max": 4.0}}
    )
    run_sweep(spec, tmp_path, LocalExecutor(jobs=1), progress=False)
    expected = pd.read_csv(tmp_path / "critical_values.csv")
    records = sorted((tmp_path / "runs").rglob("x*.parquet"))
    records[0].write_bytes(records[-1].read_bytes())
    for search in (tmp_path / "searches").glob("*.json"):
        search.unlink()  # the search is redone; its runs are reused, the foreign one recomputed
    status = run_sweep(spec, tmp_path, LocalExecutor(jobs=1), progress=False)
    assert not status.failed
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "critical_values.csv"), expected)
    assert all(is_complete_record(r.with_suffix("")) for r in records)


def test_train_reports_a_full_disk_in_one_line(tmp_path, monkeypatch, capsys):
    from earlyphase.cli import main

    monkeypatch.setattr(pd.DataFrame, "to_parquet", _disk_full)
    argv = [*ONE_STEP_TRAIN, "--out", str(tmp_path), "--name", "full"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "No space left on device" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_json_or_a_missing_parquet_is_not_a_complete_record(tmp_path):
    _record(1.0).save(tmp_path / "a")
    (tmp_path / "a.json").write_text('{"c": 1.0, "eta"')  # truncated by hand (writes are atomic)
    assert not is_complete_record(tmp_path / "a")
    _record(1.0).save(tmp_path / "b")
    (tmp_path / "b.parquet").unlink()
    assert not is_complete_record(tmp_path / "b")
    assert not is_complete_record(tmp_path / "never-written")
