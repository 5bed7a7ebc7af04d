"""End to end on real small FCNs (the empirical engine): bracketing search vs the full grid.

Oracle: the reference protocol (every c = 2^x up to the first divergence) on the same
networks. The bisection must give the same critical values to one grid step (SCIENCE.md
section 3), with every found threshold bracketed by adjacent grid points.
"""

import math

import pandas as pd
import pytest

from earlyphase.core import CRITICAL_NAMES
from earlyphase.empirical.sweep import LocalExecutor, run_sweep, spec_from_mapping
from earlyphase.empirical.sweep.spec import merge

TINY_FCN = {
    "model": {"arch": "fcn", "depths": [4], "widths": [32, 64]},
    "data": {"dataset": "digits", "n_train": 128, "measure_size": 64},
    "protocol": {"batch_size": 32, "steps": 4},
    "seeds": {"init": [0], "sgd": [0]},
    "search": {"x_min": 2.5, "x_max": 6.5, "x_start": 3.0, "expand_step": 6},
}


def assert_within_one_grid_step(bisect: pd.DataFrame, grid: pd.DataFrame, x_step: float) -> None:
    keys = ["depth", "width", "seed_init", "seed_sgd"]
    merged = bisect.merge(grid, on=keys, suffixes=("_bisect", "_grid"))
    assert len(merged) == len(grid) == len(bisect)
    for row in merged.to_dict("records"):
        for name in CRITICAL_NAMES:
            found = row[f"{name}_found_bisect"]
            assert found == row[f"{name}_found_grid"], (name, row)
            if found:
                steps = math.log2(row[f"{name}_bisect"] / row[f"{name}_grid"]) / x_step
                assert abs(steps) <= 1 + 1e-9, (name, row)
                low, high = row[f"{name}_low_bisect"], row[f"{name}_high_bisect"]
                if not math.isnan(low):
                    assert math.log2(high / low) == pytest.approx(x_step)


def sweep_both(tmp_path, sections, share_runs):
    grid_spec = spec_from_mapping(merge(sections, {"search": {"method": "grid"}}))
    bisect_spec = spec_from_mapping(merge(sections, {"search": {"method": "bisect"}}))
    run_sweep(grid_spec, tmp_path / "grid", LocalExecutor(jobs=1, threads=1), progress=False)
    grid = pd.read_csv(tmp_path / "grid" / "critical_values.csv")
    if share_runs:  # the bisection replays the grid's stored runs, computing only what the grid never ran
        run_sweep(bisect_spec, tmp_path / "grid", LocalExecutor(jobs=1, threads=1), force_spec=True, progress=False)
        bisect = pd.read_csv(tmp_path / "grid" / "critical_values.csv")
    else:
        run_sweep(bisect_spec, tmp_path / "bisect", LocalExecutor(jobs=2, threads=1), progress=False)
        bisect = pd.read_csv(tmp_path / "bisect" / "critical_values.csv")
    return bisect, grid, bisect_spec.search.x_step


def test_bisection_equals_the_full_grid_on_tiny_fcns(tmp_path):
    bisect, grid, x_step = sweep_both(tmp_path, TINY_FCN, share_runs=True)
    assert_within_one_grid_step(bisect, grid, x_step)
    assert (bisect["runs"] < grid["runs"]).all()
    assert grid["c_max_found"].all()  # the range holds the whole phase diagram of these nets


@pytest.mark.slow
def test_bisection_equals_the_full_grid_on_fashion_mnist_fcns(tmp_path):
    sections = {
        "model": {"arch": "fcn", "depths": [2, 4], "widths": [32, 64]},
        "data": {"dataset": "fashion_mnist", "n_train": 2048, "measure_size": 256},
        "protocol": {"batch_size": 128, "steps": 10},
        "seeds": {"init": [0, 1], "sgd": [0]},
        "search": {"x_min": 0.0, "x_max": 7.0},
    }
    bisect, grid, x_step = sweep_both(tmp_path, sections, share_runs=False)
    assert_within_one_grid_step(bisect, grid, x_step)
