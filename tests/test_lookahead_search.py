"""``[search] lookahead = true``: the one-step look-ahead starts each bisect search, checked by full runs.

Oracles: the plain bisect search of the same sweep (its critical values must come out unchanged,
with the look-ahead right or wrong), the full grid for the seeded plan on synthetic monotone
flags, and main's search_key of the default search (existing results directories must resume).
"""

import argparse
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from earlyphase.cli import sweep as cli
from earlyphase.core import CRITICAL_NAMES
from earlyphase.core.critical import Threshold
from earlyphase.core.search import BracketPlan, CGrid, Flags, GridPlan, run_search
from earlyphase.core.trajectory import Trajectory
from earlyphase.core.validate import ConfigError
from earlyphase.empirical.search_runner import MemoryStore
from earlyphase.empirical.sweep import LocalExecutor, run_sweep, spec_from_mapping
from earlyphase.empirical.sweep import lookahead_search as module
from earlyphase.empirical.sweep.spec import SearchSpec, merge, search_key
from earlyphase.empirical.sweep.store import Store
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)

DIGITS = {
    "model": {"arch": "fcn", "depths": [4], "widths": [32]},
    "data": {"dataset": "digits", "n_train": 128, "measure_size": 64},
    "protocol": {"batch_size": 32, "steps": 4},
    "measurement": {"barrier": False},
    "execution": {"dtype": "float64"},
    "seeds": {"init": [0], "sgd": [0]},
    "search": {"x_min": 0.0, "x_max": 6.0, "x_start": 1.0},
}
LOOKAHEAD = {"search": {"lookahead": True}}
COLUMNS = [f"{n}{s}" for n in CRITICAL_NAMES for s in ("", "_low", "_high", "_found")]


def sweep(root, *overrides):
    spec = spec_from_mapping(merge(DIGITS, {k: v for o in overrides for k, v in o.items()}))
    run_sweep(spec, root, LocalExecutor(jobs=1, threads=1), progress=False)
    summaries = [Store(root, spec).load_search(point) for point in spec.points()]
    return pd.read_csv(root / "critical_values.csv"), summaries


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return sweep(tmp_path_factory.mktemp("plain"))


def test_the_default_search_keeps_main_s_search_key():
    """Literals computed with main's search_key before the option existed."""
    assert search_key(SearchSpec()) == "ef924cfa"
    assert search_key(SearchSpec(method="grid")) == "6fdc6c16"
    assert search_key(SearchSpec(x_start=2.0, confirm=2)) == "8b1b5bf7"
    assert search_key(SearchSpec(lookahead=True)) != search_key(SearchSpec())


def test_the_option_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="search.lookahead"):
        spec_from_mapping(merge(DIGITS, {"search": {"lookahead": True, "method": "grid"}}))
    with pytest.raises(ConfigError, match="search.lookahead"):
        spec_from_mapping(merge(DIGITS, {"search": {"lookahead": "yes"}}))
    with pytest.raises(ConfigError, match="ensemble"):
        run_sweep(
            spec_from_mapping(merge(DIGITS, {**LOOKAHEAD, "execution": {"ensemble": 1}})), tmp_path, progress=False
        )
    assert not tmp_path.joinpath("spec.json").exists()  # refused before anything was written


def test_the_flag_alone_switches_it_on():
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["sweep", "run", "--depths", "4", "--widths", "8", "--lookahead"])
    assert cli.overrides(args)["search"] == {"lookahead": True}
    args = parser.parse_args(["sweep", "run", "--lookahead", "false"])
    assert cli.overrides(args)["search"] == {"lookahead": False}


def test_an_exact_lookahead_gives_the_plain_values_with_fewer_runs(tmp_path, plain):
    table, summaries = sweep(tmp_path, LOOKAHEAD)
    plain_table, plain_summaries = plain
    pd.testing.assert_frame_equal(table[COLUMNS], plain_table[COLUMNS])
    (summary,), (plain_summary,) = summaries, plain_summaries
    assert summary["source"] == {"c_loss": "lookahead", "c_sharp": "lookahead", "c_max": "runs", "c_barrier": "runs"}
    assert table.loc[0, "c_loss_source"] == "lookahead" and plain_table.loc[0, "c_loss_source"] == "runs"
    checks = summary["lookahead"]["checks"]
    assert {check["verdict"] for check in checks.values()} == {"passed"}
    for name in ("c_loss", "c_sharp"):
        assert summary["lookahead"][name]["estimate"] == summary["critical"][name]["estimate"]
    assert summary["runs_computed"] < plain_summary["runs_computed"]
    assert summary["lookahead"]["cost"]["hvps"] > 0 and summary["lookahead"]["computed"]
    assert list((tmp_path / "lookahead").glob("*.json"))


@pytest.mark.parametrize("shift", [4, -4])
def test_a_wrong_prediction_fails_its_check_and_the_runs_give_the_plain_values(tmp_path, plain, monkeypatch, shift):
    """The prediction moved ``shift`` grid steps: above, the run one step below c* is flagged
    too; below, the run at c* is not flagged. Either way the bracketing finds the plain values."""
    honest = module.predict

    def wrong(experiment, plan):
        prediction = honest(experiment, plan)
        grid = plan.grid

        def moved(threshold):
            index = grid.index_at_or_above(np.log2(threshold.estimate)) + shift
            return Threshold(threshold.name, grid.c(index), grid.c(index - 1), grid.c(index))

        return module.Prediction(moved(prediction.c_loss), moved(prediction.c_sharp), prediction.cost)

    monkeypatch.setattr(module, "predict", wrong)
    table, (summary,) = sweep(tmp_path, LOOKAHEAD)
    plain_table, _ = plain
    pd.testing.assert_frame_equal(table[COLUMNS], plain_table[COLUMNS])
    assert summary["source"]["c_loss"] == summary["source"]["c_sharp"] == "runs"
    expected = "flag one step below c*" if shift > 0 else "no flag at c*"
    assert {check["verdict"] for check in summary["lookahead"]["checks"].values()} == {expected}
    assert summary["lookahead"]["c_loss"]["estimate"] != summary["critical"]["c_loss"]["estimate"]


def test_a_killed_search_resumes_without_predicting_again(tmp_path, plain, monkeypatch):
    real_run = module.run_at_c
    calls = []

    def dies_after_two(experiment, c):
        calls.append(c)
        if len(calls) > 2:
            raise RuntimeError("killed")
        return real_run(experiment, c)

    monkeypatch.setattr(module, "run_at_c", dies_after_two)
    status = run_sweep(spec_from_mapping(merge(DIGITS, LOOKAHEAD)), tmp_path, LocalExecutor(jobs=1), progress=False)
    assert len(status.failed) == 1 and "killed" in status.failed[0][1]
    assert not list((tmp_path / "searches").glob("*.json")) and list((tmp_path / "failed").glob("*.json"))
    (stored,) = (tmp_path / "lookahead").glob("*.json")
    kept = json.loads(stored.read_text())

    def must_not_predict(*_):
        raise AssertionError("the stored prediction was recomputed")

    monkeypatch.setattr(module, "run_at_c", real_run)
    monkeypatch.setattr(module, "predict", must_not_predict)
    table, (summary,) = sweep(tmp_path, LOOKAHEAD)
    pd.testing.assert_frame_equal(table[COLUMNS], plain[0][COLUMNS])
    assert summary["runs_loaded"] == 2 and not summary["lookahead"]["computed"]
    assert summary["lookahead"]["c_loss"] == kept["c_loss"] and summary["source"]["c_loss"] == "lookahead"


def _monotone_flags(thresholds):
    """Flags of grid index k for thresholds (loss, sharp, divergence) as grid indices."""
    loss, sharp, divergence = thresholds

    def flags(k):
        return Flags(k >= loss, k >= sharp, k >= divergence, barrier=False, loss_margin=k - loss + 0.5)

    return flags


@given(
    st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(1, 40)),
    st.lists(st.integers(0, 40), max_size=4, unique=True),
)
def test_a_seeded_bracket_search_reads_the_grid_s_values_from_any_seeds(thresholds, seeds):
    grid = CGrid(x_min=0.0, x_max=4.0)
    flags = _monotone_flags(thresholds)
    seeded = run_search(module.SeededPlan(grid, tuple(seeds), BracketPlan(grid, start=10)), flags)
    assert seeded.critical == run_search(GridPlan(grid), flags).critical
    assert seeded.order[: len(seeds)] == tuple(seeds)


def test_peak_step_needs_every_step_measured():
    assert module.peak_step(np.array([1.0, 3.0, 2.0, 2.5])) == 1
    assert module.peak_step(np.array([1.0, 2.0, 3.0])) == 2
    assert module.peak_step(np.array([1.0, 3.0, np.nan])) is None


def _record(loss, sharpness):
    return Trajectory.from_arrays(1.0, 0.1, loss, "mse", sharpness=sharpness)


FLAT = ([1.0, 0.9, 0.8, 0.7], [1.0, 0.9, 0.9, 0.9])
"""A run with neither flag."""


@pytest.mark.parametrize(
    ("name", "at", "below", "verdict"),
    [
        ("c_loss", ([1.0, 1.5, 1.2, 0.9], FLAT[1]), FLAT, "passed"),
        ("c_loss", ([1.0, 1.2, 1.5, 0.9], FLAT[1]), FLAT, "peak at t = 2"),
        ("c_loss", FLAT, FLAT, "no flag at c*"),
        ("c_loss", ([1.0, 1.5, np.inf, np.nan], FLAT[1]), FLAT, "diverged at c*"),
        ("c_loss", ([1.0, 1.5, 1.2, 0.9], FLAT[1]), ([1.0, 0.9, 1.1, 0.8], FLAT[1]), "flag one step below c*"),
        ("c_sharp", (FLAT[0], [1.0, 1.5, 1.2, 1.1]), FLAT, "passed"),
        ("c_sharp", (FLAT[0], [1.0, 1.1, 1.5, 1.2]), FLAT, "peak at t = 2"),
        ("c_sharp", (FLAT[0], [1.0, 1.5, np.nan, np.nan]), FLAT, "peak not measured"),  # a "flags" record
    ],
)
def test_a_prediction_passes_only_with_its_flag_peaking_at_t_1_and_none_below(name, at, below, verdict):
    runs = MemoryStore({(0, 5): _record(*at), (0, 4): _record(*below)})
    check = module.check_run(name, 5, runs, epsilon=0.0)
    assert check.verdict == verdict and check.passed == (verdict == "passed")
    assert module.check_run(name, None, runs, 0.0).verdict == "no prediction in range"
