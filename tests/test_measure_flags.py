"""measure_mode = "flags" against measure_mode = "full" (the oracle): same flags, hence the same critical values.

A "flags" run solves the sharpness only until lambda_t / lambda_0 > 1 + epsilon is certain;
its rows up to that step are the full run's, its flags are the full run's flags, and it spends
fewer Hessian-vector products (docs/PROTOCOL.md section 3).
"""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from earlyphase.core import CRITICAL_NAMES, Trajectory
from earlyphase.core.search import flags_of
from earlyphase.empirical import TrainConfig, prepare, run_at_c
from earlyphase.empirical.sweep import LocalExecutor, run_sweep, spec_from_mapping
from earlyphase.empirical.sweep.spec import config_key, merge
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)

SMALL = dict(dataset="digits", n_train=96, measure_size=48, batch_size=32, depth=4, width=16, steps=6, epsilon=0.02)
TINY_FCN = {
    "model": {"arch": "fcn", "depths": [4], "widths": [32]},
    "data": {"dataset": "digits", "n_train": 128, "measure_size": 64},
    "protocol": {"batch_size": 32, "steps": 4, "epsilon": 0.02},
    "seeds": {"init": [0], "sgd": [0]},
    "search": {"x_min": 2.5, "x_max": 6.5, "x_step": 0.2, "x_start": 3.0, "expand_step": 3},
}


@pytest.fixture(scope="module")
def experiments():
    full = prepare(TrainConfig.build(**SMALL))
    return full, dataclasses.replace(full, config=full.config.replace(measure_mode="flags"))


@pytest.mark.parametrize("c", [4.0, 32.0, 64.0])
def test_a_flags_run_is_the_full_run_until_its_flag_is_certain(experiments, c):
    full_experiment, flags_experiment = experiments
    full, flags = run_at_c(full_experiment, c), run_at_c(flags_experiment, c)
    assert flags.config["measure_mode"] == "flags" and full.config["measure_mode"] == "full"
    decided, oracle = flags_of(flags, SMALL["epsilon"]), flags_of(full, SMALL["epsilon"])
    assert dataclasses.replace(decided, sharpness_margin=None) == dataclasses.replace(oracle, sharpness_margin=None)
    for name in ("loss", "batch_loss", "accuracy"):
        np.testing.assert_array_equal(flags.steps[name], full.steps[name])
    assert flags.barrier_loss == full.barrier_loss or (math.isnan(flags.barrier_loss) and math.isnan(full.barrier_loss))
    lambda0, epsilon = full.lambda0, SMALL["epsilon"]
    over = np.flatnonzero(full.sharpness[1:] / lambda0 > 1 + epsilon)
    if over.size == 0:  # never decided before the end: every solve is the full one
        assert c < 32  # the sharpness of this net catapults at c = 32 and 64
        pd.testing.assert_frame_equal(flags.steps, full.steps)
        return
    crossing = over[0] + 1
    head = slice(0, crossing)
    pd.testing.assert_frame_equal(flags.steps.iloc[head], full.steps.iloc[head])
    assert lambda0 * (1 + epsilon) < flags.sharpness[crossing] <= full.sharpness[crossing] * (1 + 1e-12)
    assert flags.steps["hvp_count"].iloc[crossing] <= full.steps["hvp_count"].iloc[crossing]
    assert np.isnan(flags.sharpness[crossing + 1 :]).all()
    assert np.isnan(flags.steps["hvp_count"].to_numpy()[crossing + 1 :]).all()


def _hvps(root: Path) -> int:
    """Hessian-vector products the sweep under ``root`` spent, from its search summaries."""
    return sum(json.loads(path.read_text())["hvps"] for path in root.glob("searches/*.json"))


def _sweep(sections: dict, root: Path) -> pd.DataFrame:
    run_sweep(spec_from_mapping(sections), root, LocalExecutor(jobs=1, threads=1), force_spec=True, progress=False)
    return pd.read_csv(root / "critical_values.csv").sort_values(
        ["depth", "width", "seed_init", "seed_sgd"], ignore_index=True
    )


def test_a_flags_sweep_gives_exactly_the_critical_values_of_a_full_sweep(tmp_path, capsys):
    columns = [column for name in CRITICAL_NAMES for column in (name, f"{name}_found", f"{name}_low", f"{name}_high")]
    hvps = {}
    for method in ("grid", "bisect"):
        tables = {}
        for measure in ("full", "flags"):
            root = tmp_path / f"{method}-{measure}"
            tables[measure] = _sweep(
                merge(TINY_FCN, {"search": {"method": method}, "measurement": {"measure_mode": measure}}), root
            )
            hvps[method, measure] = _hvps(root)
        assert tables["full"][[f"{name}_found" for name in CRITICAL_NAMES]].all().all()
        pd.testing.assert_frame_equal(tables["flags"][columns], tables["full"][columns])
        assert tables["full"]["c_sharp_found"].all()  # the flags mode has something to save
        assert hvps[method, "flags"] < hvps[method, "full"]
        # the ensemble engine (runs stacked, solves of the undecided members only) decides alike
        ensemble = merge(TINY_FCN, {"search": {"method": method}, "execution": {"ensemble": 2}})
        pd.testing.assert_frame_equal(
            _sweep(ensemble, tmp_path / f"{method}-ensemble")[columns], tables["full"][columns]
        )
    with capsys.disabled():
        print(f"\nHVPs of the sweep, each product once: {hvps}")


def test_measure_is_neither_in_the_run_hash_nor_in_the_spec_identity():
    full = spec_from_mapping(merge(TINY_FCN, {"measurement": {"measure_mode": "full"}}))
    default = spec_from_mapping(TINY_FCN)
    assert default.base.measurement.measure_mode == "flags" and TrainConfig().measurement.measure_mode == "full"
    assert full.identity() == default.identity()
    point = default.points()[0]
    assert config_key(full.config(point), full.runner) == config_key(default.config(point), default.runner)
    # a configuration hashes as it did before the field existed: every other field, sorted
    assert config_key(TrainConfig(), "earlyphase.empirical.training") == "145845dc95"


def test_a_sweep_counts_each_hessian_vector_product_once(tmp_path):
    # oracle: the prepared experiment's own lambda_H0 solve and the stored records' step columns
    root = tmp_path / "sweep"
    _sweep(merge(TINY_FCN, {"search": {"method": "bisect"}, "measurement": {"measure_mode": "full"}}), root)
    (summary_path,) = root.glob("searches/*.json")
    summary = json.loads(summary_path.read_text())
    records = [Trajectory.load(path.with_suffix("")) for path in sorted(root.glob("runs/*/x*.json"))]
    spec = spec_from_mapping(merge(TINY_FCN, {"measurement": {"measure_mode": "full"}}))
    lambda0_hvps = int(prepare(spec.config(spec.points()[0])).initial.sharpness.matvecs)
    assert len(records) == summary["runs_computed"] > 1
    for record in records:
        assert record.steps["hvp_count"].iloc[0] == 0 and record.config["lambda0_hvps"] == lambda0_hvps
        assert record.step_hvps == int(record.steps["hvp_count"].iloc[1:].sum()) > 0
    assert summary["hvps"] == lambda0_hvps + sum(record.step_hvps for record in records)
