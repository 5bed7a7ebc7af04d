"""measure = "flags" against measure = "full" (the oracle): same flags, hence the same critical values.

A "flags" run solves the sharpness only until lambda_t / lambda_0 > 1 + epsilon is certain;
its rows up to that step are the full run's, its flags are the full run's flags, and it spends
fewer Hessian-vector products (docs/PROTOCOL.md section 3).
"""

import dataclasses
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
    full = prepare(TrainConfig(**SMALL))
    return full, dataclasses.replace(full, config=dataclasses.replace(full.config, measure="flags"))


@pytest.mark.parametrize("c", [4.0, 32.0, 64.0])
def test_a_flags_run_is_the_full_run_until_its_flag_is_certain(experiments, c):
    full_experiment, flags_experiment = experiments
    full, flags = run_at_c(full_experiment, c), run_at_c(flags_experiment, c)
    assert flags.config["measure"] == "flags" and full.config["measure"] == "full"
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
    """Hessian-vector products of the runs under a sweep directory (each step's solve)."""
    return int(sum(np.nansum(Trajectory.load(path.with_suffix("")).steps["hvp_count"].to_numpy()[1:]) for path in root.glob("runs/*/x*.json")))


def _sweep(sections: dict, root: Path) -> pd.DataFrame:
    run_sweep(spec_from_mapping(sections), root, LocalExecutor(jobs=1, threads=1), force_spec=True, progress=False)
    return pd.read_csv(root / "critical_values.csv").sort_values(["depth", "width", "seed_init", "seed_sgd"], ignore_index=True)


def test_a_flags_sweep_gives_exactly_the_critical_values_of_a_full_sweep(tmp_path, capsys):
    columns = [column for name in CRITICAL_NAMES for column in (name, f"{name}_found", f"{name}_low", f"{name}_high")]
    hvps = {}
    for method in ("grid", "bisect"):
        tables = {}
        for measure in ("full", "flags"):
            root = tmp_path / f"{method}-{measure}"
            tables[measure] = _sweep(merge(TINY_FCN, {"search": {"method": method}, "measurement": {"measure": measure}}), root)
            hvps[method, measure] = _hvps(root)
        assert tables["full"][[f"{name}_found" for name in CRITICAL_NAMES]].all().all()
        pd.testing.assert_frame_equal(tables["flags"][columns], tables["full"][columns])
        assert tables["full"]["c_sharp_found"].all()  # the flags mode has something to save
        assert hvps[method, "flags"] < hvps[method, "full"]
    with capsys.disabled():
        print(f"\nHVPs of the sweep's steps (full -> flags): {hvps}")


def test_measure_is_neither_in_the_run_hash_nor_in_the_spec_identity():
    full = spec_from_mapping(merge(TINY_FCN, {"measurement": {"measure": "full"}}))
    default = spec_from_mapping(TINY_FCN)
    assert default.base.measure == "flags" and TrainConfig().measure == "full"
    assert full.identity() == default.identity()
    point = default.points()[0]
    assert config_key(full.config(point), full.runner) == config_key(default.config(point), default.runner)
    # a configuration hashes as it did before the field existed: every other field, sorted
    assert config_key(TrainConfig(), "earlyphase.empirical.training") == "145845dc95"
