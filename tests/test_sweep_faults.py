"""A worker process killed mid-search: the sweep goes on, nothing recorded is lost, the result is unchanged."""

import pandas as pd
import pytest

from earlyphase.empirical.sweep import run_sweep, spec_from_mapping
from earlyphase.empirical.sweep.executors import LocalExecutor

SPEC = {
    "runner": "test_sweep_toy",
    "model": {"depths": [2], "widths": [64]},
    "seeds": {"init": [0, 1]},
    "search": {"method": "grid", "x_max": 4.0},
}


@pytest.mark.slow  # 25-80 s: three spawned worker processes importing torch
def test_a_killed_worker_is_replaced_and_its_search_redone(tmp_path, monkeypatch):
    monkeypatch.setenv("TOY_KILL_MARKER", str(tmp_path / "killed-once"))
    monkeypatch.setenv("TOY_KILL_WIDTH", "64")
    spec = spec_from_mapping(SPEC)
    status = run_sweep(spec, tmp_path / "killed", LocalExecutor(jobs=2, threads=1), progress=False)
    assert (tmp_path / "killed-once").exists()  # a worker was killed
    assert not status.failed and not status.pending and len(status.done) == 2
    monkeypatch.delenv("TOY_KILL_MARKER")
    run_sweep(spec, tmp_path / "reference", LocalExecutor(jobs=1), progress=False)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "killed" / "critical_values.csv"),
        pd.read_csv(tmp_path / "reference" / "critical_values.csv"),
    )
    assert not list((tmp_path / "killed").rglob("*.tmp"))


def test_a_damaged_search_summary_is_named(tmp_path, capsys):
    from earlyphase.cli import main

    spec = spec_from_mapping({**SPEC, "seeds": {"init": [0]}, "search": {"x_max": 3.0}})
    run_sweep(spec, tmp_path, LocalExecutor(jobs=1), progress=False)
    summary = next((tmp_path / "searches").glob("*.json"))
    summary.write_text('{"broken')
    with pytest.raises(SystemExit):
        main(["sweep", "tables", str(tmp_path)])
    assert summary.name in capsys.readouterr().err
    summary.unlink()  # as the message says: the search is redone from its recorded runs
    status = run_sweep(spec, tmp_path, LocalExecutor(jobs=1), progress=False)
    assert len(status.done) == 1 and not status.failed
