"""Post-catapult flattening and loss-peak counts on trajectories built with known answers.

Each synthetic run has eta = c / lambda_0 with lambda_0 = 10, so 2/eta = 20 / c; its loss and
final sharpness are chosen so that whether it catapulted, diverged, ended below 2/eta and where
its loss peaks are known by construction.
"""

import numpy as np
import pandas as pd
import pytest

from earlyphase.compare.flattening import flattening_counts, run_summary, sweep_run_records
from earlyphase.core import Trajectory
from earlyphase.core.validate import ConfigError

LAMBDA0 = 10.0


def synthetic_run(c, loss, final_sharpness, depth=4, seed=0, measure_mode="full"):
    loss = np.asarray(loss, dtype=float)
    sharpness = np.full(loss.shape, np.nan)
    sharpness[0], sharpness[-1] = LAMBDA0, final_sharpness
    return Trajectory.from_arrays(
        c,
        c / LAMBDA0,
        loss,
        "mse",
        sharpness=sharpness,
        config={"depth": depth, "width": 64, "measure_mode": measure_mode},
        seeds={"init": seed, "sgd": 0},
    )


PEAK_AT_1 = [1.0, 5.0, 2.0, 0.5, 0.4]
PEAK_AT_3 = [1.0, 1.5, 3.0, 4.0, 0.6]
NO_CATAPULT = [1.0, 0.8, 0.6, 0.5, 0.4]
DIVERGES = [1.0, 5.0, 1e3, np.inf, np.nan]


def test_summary_flags_follow_the_construction():
    runs = [
        synthetic_run(8.0, PEAK_AT_1, final_sharpness=2.0),  # 2/eta = 2.5: flattened
        synthetic_run(8.0, PEAK_AT_3, final_sharpness=2.6),  # above 2.5: not flattened
        synthetic_run(1.0, NO_CATAPULT, final_sharpness=9.0),
        synthetic_run(16.0, DIVERGES, final_sharpness=np.nan),
    ]
    summary = run_summary(runs)
    assert summary["stability_limit"].tolist() == pytest.approx([2.5, 2.5, 20.0, 1.25])
    assert summary["catapult"].tolist() == [True, True, False, False]
    assert summary["diverged"].tolist() == [False, False, False, True]
    assert summary["flattened"].tolist()[:3] == [True, False, True]
    assert summary["peak_step"].tolist()[:3] == [1, 3, 1]


def test_counts_per_depth_count_only_catapulting_runs():
    runs = [
        synthetic_run(8.0, PEAK_AT_1, 2.0, depth=2),
        synthetic_run(8.0, PEAK_AT_3, 2.0, depth=2),
        synthetic_run(8.0, PEAK_AT_3, 3.0, depth=2),
        synthetic_run(1.0, NO_CATAPULT, 9.0, depth=2),  # flattened, but no catapult: not counted
        synthetic_run(16.0, DIVERGES, np.nan, depth=2),
        synthetic_run(8.0, PEAK_AT_1, np.nan, depth=8),  # catapulted, lambda_T not measured
    ]
    counts = flattening_counts(run_summary(runs)).set_index("depth")
    assert counts.loc[2].to_dict() == {
        "runs": 5,
        "catapulting": 3,
        "measured": 3,
        "flattened": 2,
        "peak_at_step_1": 1,
    }
    assert counts.loc[8].to_dict() == {"runs": 1, "catapulting": 1, "measured": 0, "flattened": 0, "peak_at_step_1": 1}


def test_counts_reject_an_unknown_grouping():
    with pytest.raises(ValueError, match="unknown: nope"):
        flattening_counts(run_summary([synthetic_run(8.0, PEAK_AT_1, 2.0)]), by=("nope",))


def test_sweep_records_keep_full_measurements_only(tmp_path):
    synthetic_run(8.0, PEAK_AT_1, 2.0).save(tmp_path / "runs" / "fcn_d4_a" / "x+3.0000")
    synthetic_run(8.0, PEAK_AT_3, 2.0, measure_mode="flags").save(tmp_path / "runs" / "fcn_d4_a" / "x+3.1000")
    records = sweep_run_records(tmp_path)
    assert len(records) == 1 and records[0].loss[1] == 5.0
    assert isinstance(run_summary(records), pd.DataFrame)


def test_sweep_records_of_flags_runs_only_are_refused(tmp_path):
    synthetic_run(8.0, PEAK_AT_1, 2.0, measure_mode="flags").save(tmp_path / "runs" / "p" / "x+3.0000")
    with pytest.raises(ConfigError, match="no run records of measure_mode 'full' \\(1 records"):
        sweep_run_records(tmp_path)
