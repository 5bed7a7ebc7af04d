"""Sweeps through ensembles (``[execution] ensemble = L``) against the same sweep run one c at a time.

Oracle: the one-run-at-a-time sweep of the same spec (float64): the same critical values, the
same runs evaluated (same search order and flags) and the same run records, for the full grid
and the bracketing search, also when resumed from a partly filled results directory.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from earlyphase.core import Trajectory
from earlyphase.empirical.ensemble.sweep import ensemble_tasks
from earlyphase.empirical.sweep import LocalExecutor, run_sweep, spec_from_mapping
from earlyphase.empirical.sweep.spec import merge
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)

TINY_SWEEP = {
    "model": {"arch": "fcn", "depths": [2], "widths": [8]},
    "data": {"dataset": "digits", "n_train": 64, "measure_size": 32},
    "protocol": {"batch_size": 16, "steps": 3},
    "seeds": {"init": [0, 1], "sgd": [0]},
    "search": {"x_min": 2.0, "x_max": 5.0, "x_step": 0.25, "x_start": 3.0, "expand_step": 3},
    "execution": {"dtype": "float64"},
}


def sweep(root: Path, method: str, ensemble: int) -> Path:
    spec = spec_from_mapping(merge(TINY_SWEEP, {"search": {"method": method}, "execution": {"ensemble": ensemble}}))
    run_sweep(spec, root, LocalExecutor(jobs=1, threads=1), progress=False, force_spec=True)
    return root


def searches(root: Path) -> dict[str, dict]:
    """Each stored search summary without its timing and run counters."""
    out = {}
    for path in sorted((root / "searches").glob("*.json")):
        summary = json.loads(path.read_text())
        for key in ("seconds", "runs_computed", "runs_loaded", "hvps"):  # the work of this invocation
            summary.pop(key)
        out[path.name] = summary
    return out


def records(root: Path) -> dict[str, Trajectory]:
    return {p.relative_to(root).as_posix(): Trajectory.load(p) for p in sorted((root / "runs").rglob("*.json"))}


def assert_close(ours, theirs, path="summary"):
    """Equal structure and values, floats (flag margins) to 1e-9 relative."""
    if isinstance(theirs, dict):
        assert ours.keys() == theirs.keys(), path
        for key in theirs:
            assert_close(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), path
        for number, (a, b) in enumerate(zip(ours, theirs)):
            assert_close(a, b, f"{path}[{number}]")
    elif isinstance(theirs, float) and not isinstance(ours, bool):
        assert ours == pytest.approx(theirs, rel=1e-9, nan_ok=True), path
    else:
        assert ours == theirs, path


def assert_same_sweep(ensemble_root: Path, reference_root: Path) -> None:
    assert_close(searches(ensemble_root), searches(reference_root))  # order, flags, critical values
    table, expected = (pd.read_csv(root / "critical_values.csv") for root in (ensemble_root, reference_root))
    pd.testing.assert_frame_equal(table, expected, rtol=1e-12)
    ours, theirs = records(ensemble_root), records(reference_root)
    assert ours.keys() == theirs.keys()  # no speculative run is stored
    for name, record in ours.items():
        np.testing.assert_allclose(record.steps.to_numpy(), theirs[name].steps.to_numpy(), rtol=1e-10, equal_nan=True)


@pytest.fixture(scope="module")
def references(tmp_path_factory):
    root = tmp_path_factory.mktemp("reference")
    return {method: sweep(root / method, method, 0) for method in ("grid", "bisect")}


@pytest.mark.parametrize("method, lookahead", [("grid", 4), ("bisect", 1), ("bisect", 3)])
def test_ensemble_sweep_equals_one_run_at_a_time(tmp_path, references, method, lookahead):
    assert_same_sweep(sweep(tmp_path / "ensemble", method, lookahead), references[method])


def test_resumed_ensemble_sweep_equals_one_run_at_a_time(tmp_path, references):
    root = tmp_path / "resumed"
    shutil.copytree(references["bisect"], root)
    shutil.rmtree(root / "searches")  # searches unfinished, half of their runs kept
    for number, path in enumerate(sorted((root / "runs").rglob("*.json"))):
        if number % 2:
            path.unlink()
    assert_same_sweep(sweep(root, "bisect", 2), references["bisect"])


def test_one_task_per_depth_and_width():
    spec = spec_from_mapping(
        merge(TINY_SWEEP, {"model": {"depths": [2, 3], "widths": [8, 16]}, "execution": {"ensemble": 2}})
    )
    tasks = ensemble_tasks("root", spec, spec.points(), threads=1)
    assert [(t.points[0].depth, t.points[0].width) for t in tasks] == [(2, 8), (2, 16), (3, 8), (3, 16)]
    assert all(
        len(t.points) == 2 and {(p.depth, p.width) for p in t.points} == {(t.points[0].depth, t.points[0].width)}
        for t in tasks
    )
