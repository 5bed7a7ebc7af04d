"""compare warns about, and marks, points with fewer seeds than the sweep's spec; it draws the censored median."""

import numpy as np
import pandas as pd
import pytest

from earlyphase.cli import main
from earlyphase.compare.phase_diagram import boundary_curves
from earlyphase.compare.pipeline import expected_seeds, incomplete_points, stored_sweep
from earlyphase.compare.tables import read_critical_values, seed_average
from earlyphase.empirical.sweep import run_sweep, spec_from_mapping
from earlyphase.empirical.sweep.executors import LocalExecutor

TOY = {
    "runner": "test_sweep_toy",
    "model": {"depths": [2], "widths": [16, 64]},
    "protocol": {"steps": 2},
    "seeds": {"init": [0, 1, 2], "sgd": [0]},
    "search": {"x_min": 0.0, "x_max": 5.0},
}


@pytest.fixture(scope="module")
def one_seed_lost(tmp_path_factory):
    root = tmp_path_factory.mktemp("incomplete")
    run_sweep(spec_from_mapping(TOY), root, LocalExecutor(jobs=1), progress=False)
    table = pd.read_csv(root / "critical_values.csv")
    lost = (table["width"] == 64) & (table["seed_init"] > 0)  # two of three seeds of (2, 64) "failed"
    table[~lost].to_csv(root / "critical_values.csv", index=False)
    return root


def test_compare_warns_on_stderr_names_the_point_and_exits_0(one_seed_lost, tmp_path, capsys):
    assert (
        main(["compare", str(one_seed_lost), "--theory", "none", "--out", str(tmp_path / "d.png"), "--no-progress"])
        == 0
    )
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(warnings) == 1, captured.err
    assert "d = 2, w = 64" in warnings[0] and "1 of 3 seeds" in warnings[0]
    assert "(1/3)" in captured.out  # the report's cell shows the seed count


def test_the_incomplete_point_is_the_one_marked(one_seed_lost):
    spec = stored_sweep(one_seed_lost)
    measured = expected_seeds(spec, seed_average(read_critical_values(one_seed_lost)))
    short = measured[measured["seeds"] < measured["expected_seeds"]]  # drawn with a black ring
    assert set(short["width"]) == {64} and (short["expected_seeds"] == 3).all()
    assert incomplete_points(spec, measured) == ((2, 64, 1, 3),)
    assert incomplete_points(None, measured.assign(expected_seeds=measured["seeds"])) == ()


def test_the_phase_diagram_is_drawn_from_the_censored_median():
    # three seeds: c_loss found at 3 and 3.2 for two, not found above the range (64) for the third;
    # mean over found = 3.1, censored median = 3.2
    per_seed = pd.DataFrame(
        {
            "arch": "fcn",
            "depth": 8,
            "width": 32,
            "seed_init": [0, 1, 2],
            "seed_sgd": 0,
            "c_loss": [3.0, 3.2, np.nan],
            "c_loss_low": [2.8, 3.0, 64.0],
            "c_loss_high": [3.0, 3.2, np.nan],
            **{f"{n}{s}": np.nan for n in ("c_sharp", "c_max", "c_barrier") for s in ("", "_low", "_high")},
        }
    )
    per_seed["c_max"], per_seed["c_max_low"], per_seed["c_max_high"] = 2.5, 2.5, 2.7  # c_max below c_loss's mean
    table = seed_average(per_seed)
    curves = boundary_curves(table, "d_over_w")
    assert curves["c_loss"].iloc[0] == pytest.approx(3.2)
    assert table.query("boundary == 'c_loss'")["mean"].iloc[0] == pytest.approx(3.1)
