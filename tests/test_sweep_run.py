"""Running sweeps with the deterministic toy runner (tests/test_sweep_toy.py).

Oracles: the toy's closed-form thresholds read on the full grid (``expected_grid_thresholds``),
an uninterrupted sweep for the resumed one, the local executor for Dask.
"""

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_sweep_toy import FAILING_WIDTH, expected_grid_thresholds

from earlyphase.cli import main as cli_main
from earlyphase.core import CRITICAL_NAMES, Trajectory
from earlyphase.empirical.sweep import DaskExecutor, LocalExecutor, run_sweep, spec_from_mapping, sweep_status
from earlyphase.empirical.sweep.spec import merge, to_toml
from earlyphase.empirical.sweep.tables import non_monotone_in, non_monotone_note

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

TOY = {
    "runner": "test_sweep_toy",
    "model": {"depths": [2, 3], "widths": [16, 64]},
    "protocol": {"steps": 4},
    "seeds": {"init": [0, 1], "sgd": [0]},
    "search": {"x_min": 0.0, "x_max": 5.0},
}


def toy_spec(**sections):
    return spec_from_mapping(merge(TOY, sections))


def critical_table(root):
    return pd.read_csv(Path(root) / "critical_values.csv")


def assert_matches_closed_form(spec, table):
    grid = spec.search.grid
    assert len(table) == len(spec.points())
    for row in table.to_dict("records"):
        config = spec.config(
            next(
                p
                for p in spec.points()
                if (p.depth, p.width, p.seed_init, p.seed_sgd)
                == (row["depth"], row["width"], row["seed_init"], row["seed_sgd"])
            )
        )
        expected = expected_grid_thresholds(config, grid.x_min, grid.x_step, grid.size)
        for name in CRITICAL_NAMES:
            if expected[name] is None:
                assert math.isnan(row[name]), (name, row)
            else:
                assert row[name] == pytest.approx(expected[name], rel=1e-12), (name, row)


def test_bisect_and_grid_sweeps_give_the_closed_form_thresholds(tmp_path):
    one_seed = {"init": [1]}
    bisect, grid = toy_spec(seeds=one_seed), toy_spec(search={"method": "grid"}, seeds=one_seed)
    run_sweep(bisect, tmp_path / "bisect", progress=False)
    run_sweep(grid, tmp_path / "grid", progress=False)
    for spec, name in ((bisect, "bisect"), (grid, "grid")):
        assert_matches_closed_form(spec, critical_table(tmp_path / name))
    a, b = critical_table(tmp_path / "bisect"), critical_table(tmp_path / "grid")
    columns = [f"{n}{s}" for n in CRITICAL_NAMES for s in ("", "_low", "_high", "_found")]
    pd.testing.assert_frame_equal(a[columns], b[columns])
    assert a["runs"].sum() < b["runs"].sum()
    # a threshold outside the scanned range is reported as such (c_sharp above c_max at d/w = 3/16)
    row = a[(a.depth == 3) & (a.width == 16)].iloc[0]
    assert not row["c_sharp_found"] and math.isnan(row["c_sharp_high"]) and row["c_sharp_low"] > row["c_max"]


def test_tables_have_the_documented_columns_and_seed_means(tmp_path):
    run_sweep(toy_spec(), tmp_path, progress=False)
    per_seed = critical_table(tmp_path)
    for column in ("arch", "depth", "width", "d_over_w", "seed_init", "seed_sgd", "lambda0", "loss0"):
        assert column in per_seed.columns
    assert per_seed["non_monotone"].isna().all()  # the toy's flags switch once in c (empty cells)
    for name in CRITICAL_NAMES:
        for suffix in ("", "_low", "_high"):
            assert f"{name}{suffix}" in per_seed.columns
    assert per_seed["d_over_w"].tolist() == pytest.approx((per_seed.depth / per_seed.width).tolist())
    assert per_seed["lambda0"].tolist() == pytest.approx((10.0 * per_seed.depth).tolist())  # the toy's lambda_0
    means = pd.read_csv(tmp_path / "critical_values_mean.csv")
    assert len(means) == 4
    for row in means.to_dict("records"):
        seeds = per_seed[(per_seed.depth == row["depth"]) & (per_seed.width == row["width"])]
        found = seeds["c_loss"].dropna()
        assert row["c_loss_mean"] == pytest.approx(found.mean())
        assert row["c_loss_std"] == pytest.approx(found.std(ddof=0))
        assert row["c_loss_found"] == len(found) and row["seeds"] == 2
    index = pd.read_csv(tmp_path / "index.csv")
    assert len(index) == per_seed["runs"].sum()
    for record in index["record"].head(3):
        assert (tmp_path / f"{record}.json").is_file() and (tmp_path / f"{record}.parquet").is_file()


def test_prepare_is_called_once_per_search_and_finished_runs_are_reused(tmp_path, monkeypatch):
    log = tmp_path / "prepare.log"
    monkeypatch.setenv("TOY_PREPARE_LOG", str(log))
    spec = toy_spec()
    run_sweep(spec, tmp_path / "out", progress=False)
    assert len(log.read_text().splitlines()) == len(spec.points())
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "runs").rglob("*.json")}
    status = run_sweep(spec, tmp_path / "out", progress=False)  # nothing to do
    assert len(log.read_text().splitlines()) == len(spec.points())
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "out" / "runs").rglob("*.json")} == before
    assert len(status.done) == len(spec.points()) and not status.pending


def test_interrupted_search_replays_stored_runs_and_redoes_incomplete_ones(tmp_path, monkeypatch):
    spec = toy_spec(model={"depths": [2], "widths": [64]}, seeds={"init": [0]})
    reference = tmp_path / "reference"
    run_sweep(spec, reference, progress=False)
    # simulate a kill: drop the search summary, one run's JSON (the parquet stays: incomplete) and leave a temp file
    resumed = tmp_path / "resumed"
    run_sweep(spec, resumed, progress=False)
    for path in (resumed / "searches").glob("*.json"):
        path.unlink()
    runs = sorted((resumed / "runs").rglob("x*.json"))
    runs[-1].unlink()
    stray = runs[0].with_name(".stray.parquet.123.tmp")
    stray.write_text("partial")
    log = tmp_path / "prepare.log"
    monkeypatch.setenv("TOY_PREPARE_LOG", str(log))
    run_sweep(spec, resumed, progress=False)
    assert len(log.read_text().splitlines()) == 1  # exactly one missing run was computed
    assert not stray.exists()
    pd.testing.assert_frame_equal(critical_table(resumed), critical_table(reference))


def test_failures_are_recorded_reported_and_retried(tmp_path, capsys):
    spec = toy_spec(model={"depths": [2], "widths": [16, FAILING_WIDTH]}, seeds={"init": [0]})
    status = run_sweep(spec, tmp_path, progress=False)
    assert len(status.done) == 1 and len(status.failed) == 1 and not status.pending
    assert "toy failure" in status.failed[0][1]
    assert cli_main(["sweep", "status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 searches: 1 done, 0 pending (0 partly run), 1 failed" in out
    assert f"width {FAILING_WIDTH}" in out and "RuntimeError: toy failure" in out
    assert len(critical_table(tmp_path)) == 1


def test_status_counts_pending_and_partial_searches(tmp_path, capsys):
    spec = toy_spec()
    run_sweep(spec, tmp_path, progress=False)
    searches = sorted((tmp_path / "searches").glob("*.json"))
    searches[0].unlink()
    searches[1].unlink()
    status = sweep_status(tmp_path)
    assert len(status.done) == len(spec.points()) - 2 and len(status.pending) == 2
    assert all(runs > 0 for _, runs in status.pending)
    assert status.runs_recorded == sum(1 for _ in (tmp_path / "runs").rglob("x*.json"))
    cli_main(["sweep", "status", str(tmp_path)])
    assert (
        f"{len(spec.points())} searches: {len(spec.points()) - 2} done, 2 pending (2 partly run), 0 failed"
        in capsys.readouterr().out
    )


def test_a_different_spec_is_refused_unless_forced(tmp_path):
    run_sweep(toy_spec(), tmp_path, progress=False)
    changed = toy_spec(protocol={"steps": 5}, model={"depths": [2, 3], "widths": [16, 64, 128]})
    with pytest.raises(ValueError, match=r"protocol.steps: 4 -> 5"):
        run_sweep(changed, tmp_path, progress=False)
    renamed = spec_from_mapping(merge(TOY, {"name": "another label"}))
    run_sweep(renamed, tmp_path, progress=False)  # the name is not part of the results
    run_sweep(changed, tmp_path, force_spec=True, progress=False)
    assert len(critical_table(tmp_path)) == len(changed.points())
    assert_matches_closed_form(changed, critical_table(tmp_path))


def test_a_non_sweep_directory_is_refused(tmp_path):
    (tmp_path / "something.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a sweep results directory"):
        run_sweep(toy_spec(), tmp_path, progress=False)


def test_dask_local_cluster_gives_the_same_results(tmp_path):
    spec = toy_spec(seeds={"init": [0]})
    run_sweep(spec, tmp_path / "local", LocalExecutor(jobs=1), progress=False)
    run_sweep(spec, tmp_path / "dask", DaskExecutor(workers=2, processes=False), progress=False)
    pd.testing.assert_frame_equal(critical_table(tmp_path / "dask"), critical_table(tmp_path / "local"))


def _toy_environment(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def test_kill_during_a_sweep_then_resume_equals_an_uninterrupted_sweep(tmp_path):
    spec = toy_spec(search={"method": "grid"}, seeds={"init": [0]})
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(to_toml(spec))
    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "earlyphase",
        "sweep",
        str(spec_file),
        "--out",
        str(out),
        "--jobs",
        "1",
        "--no-progress",
    ]
    process = subprocess.Popen(command, env=_toy_environment(TOY_SLEEP="0.05"), start_new_session=True, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while sum(1 for _ in out.rglob("x*.json")) < 12:  # a dozen runs recorded: mid-way
            assert process.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGKILL)  # the sweep (and any worker process it started)
    finally:
        process.wait()
    partial = sweep_status(out)
    assert partial.pending and partial.runs_recorded >= 12
    subprocess.run(command, env=_toy_environment(), check=True, cwd=tmp_path, capture_output=True)
    reference = tmp_path / "reference"
    run_sweep(spec, reference, progress=False)
    pd.testing.assert_frame_equal(critical_table(out), critical_table(reference))
    records = sorted(p.relative_to(out / "runs") for p in (out / "runs").rglob("x*"))
    assert records == sorted(p.relative_to(reference / "runs") for p in (reference / "runs").rglob("x*"))
    assert not list(out.rglob("*.tmp"))
    for path in (out / "runs").rglob("x*.json"):
        twin = reference / "runs" / path.relative_to(out / "runs")
        pd.testing.assert_frame_equal(Trajectory.load(path).steps, Trajectory.load(twin).steps)


def test_cli_runs_from_flags_alone_then_prints_the_tables(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["sweep", "--out", str(out), "--runner", "test_sweep_toy", "--depths", "2", "--widths", "16", "64"]
    argv += ["--steps", "4", "--init-seeds", "0", "1", "--x-max", "5", "--jobs", "1", "--no-progress"]
    assert cli_main(argv) == 0
    assert "4 searches: 4 done" in capsys.readouterr().out
    assert_matches_closed_form(toy_spec(model={"depths": [2]}), critical_table(out))
    (out / "critical_values.csv").unlink()
    assert cli_main(["sweep", "tables", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "c_loss" in printed and "(2/2)" in printed and (out / "critical_values.csv").is_file()
    with pytest.raises(SystemExit):  # a bad flag value: one-line error, exit status 2
        cli_main(["sweep", "--out", str(tmp_path / "x"), "--depths", "0", "--widths", "8"])
    assert "model.depths" in capsys.readouterr().err


def test_non_monotone_flags_of_a_search_are_named_from_its_runs():
    def run(c, loss, sharp, diverged, barrier):
        return {"c": c, "loss_catapult": loss, "sharpness_catapult": sharp, "diverged": diverged, "barrier": barrier}

    runs = [
        run(1.0, False, False, False, False),
        run(2.0, True, False, False, True),
        run(4.0, True, True, False, False),
        run(8.0, True, False, True, None),
    ]
    assert non_monotone_in(runs) == ("c_barrier",)
    note = non_monotone_note(
        pd.DataFrame({"non_monotone": [float("nan"), "c_barrier"], "method": ["bisect", "bisect"]})
    )
    assert "1 of 2 searches" in note and "c_barrier" in note and "1 of them by bisection" in note
    grid = non_monotone_note(pd.DataFrame({"non_monotone": ["c_loss"], "method": ["grid"]}))
    assert "by definition" in grid and "--search grid" not in grid
    assert non_monotone_note(pd.DataFrame({"non_monotone": [float("nan")], "method": ["bisect"]})) is None
