"""earlyphase.compare.protocol_gap and benchmarks/protocol_gap.py on two small hand-made tables.

Oracle: deltas written in by hand as powers of 2 (c_B = c_A 2^(0.1 k) is k grid steps)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from earlyphase.compare.protocol_gap import protocol_gap, read_protocol_gap
from earlyphase.core.critical import CRITICAL_NAMES

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
NAN = math.nan


def table(seeds, critical, loss0, lambda0):
    """A critical_values.csv table for d = 8, w = 256: ``critical[name]`` per seed (brackets alike)."""
    rows = []
    for position, seed in enumerate(seeds):
        row = {"arch": "fcn", "depth": 8, "width": 256, "d_over_w": 8 / 256, "seed_init": seed, "seed_sgd": 0}
        row.update({"loss0": loss0[position], "lambda0": lambda0[position]})
        for name in CRITICAL_NAMES:
            value = critical[name][position]
            row.update(
                {name: value, f"{name}_low": value, f"{name}_high": value, f"{name}_found": not math.isnan(value)}
            )
        rows.append(row)
    return pd.DataFrame(rows)


STEP = 2**0.1
A = table(
    seeds=[0, 1, 2],
    critical={
        "c_loss": [3.0, 4.0, 4.0],
        "c_sharp": [5.0, 6.0, 8.0],
        "c_max": [9.0, NAN, 12.0],
        "c_barrier": [5.0, 6.0, 7.0],
    },
    loss0=[0.5, 0.6, 0.7],
    lambda0=[10.0, 11.0, 12.0],
)
B = table(
    seeds=[1, 2, 3],  # seed 0 only in A, seed 3 only in B: neither is compared
    critical={
        "c_loss": [4.0 * STEP, 4.0, 99.0],
        "c_sharp": [NAN, 8.0 * STEP**-3, 99.0],
        "c_max": [NAN, 12.0 * STEP**2, 99.0],
        "c_barrier": [6.0 * STEP**4, 7.0 * STEP**-1, 99.0],
    },
    loss0=[0.3, 0.35, 0.4],
    lambda0=[20.0, 21.0, 22.0],
)


def test_deltas_in_grid_steps_per_matched_seed():
    gap = protocol_gap(A, B)
    assert gap.per_seed["seed_init"].tolist() == [1, 2]
    expected = {"c_loss": [1, 0], "c_sharp": [NAN, -3], "c_max": [NAN, 2], "c_barrier": [4, -1]}
    for name, steps in expected.items():
        np.testing.assert_allclose(gap.per_seed[f"{name}_steps"], steps, atol=1e-9)
    assert gap.per_seed["loss0_a"].tolist() == [0.6, 0.7] and gap.per_seed["lambda0_b"].tolist() == [20.0, 21.0]


def test_summary_counts_and_statistics():
    summary = protocol_gap(A, B).summary.set_index("critical")
    assert summary.loc["c_loss", ["seeds", "missing", "within_0", "within_1", "within_2"]].tolist() == [2, 0, 1, 2, 2]
    assert summary.loc["c_loss", "median_steps"] == pytest.approx(0.5)
    assert summary.loc["c_sharp", ["seeds", "missing", "one_sided", "within_2"]].tolist() == [1, 1, 1, 0]
    assert summary.loc["c_max", ["missing", "one_sided"]].tolist() == [1, 0]  # neither found it for seed 1
    assert summary.loc["c_barrier", "mean_steps"] == pytest.approx(1.5)
    assert summary.loc["c_barrier", ["within_0", "within_1", "within_2"]].tolist() == [0, 1, 1]


def test_the_script_reads_two_results_directories(tmp_path, capsys):
    for name, frame in (("toolkit", A), ("authors", B)):
        (tmp_path / name).mkdir()
        frame.to_csv(tmp_path / name / "critical_values.csv", index=False)
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import protocol_gap as script
    finally:
        sys.path.remove(str(BENCHMARKS))
    csv = tmp_path / "gap.csv"
    gap = script.main(
        ["--sweep-a", str(tmp_path / "toolkit"), "--sweep-b", str(tmp_path / "authors"), "--csv", str(csv)]
    )
    printed = capsys.readouterr().out
    assert "log2(c_authors / c_toolkit)" in printed and "| c_sharp | 1 | 1 (1) |" in printed
    pd.testing.assert_frame_equal(pd.read_csv(csv), gap.per_seed, check_dtype=False)
    pd.testing.assert_frame_equal(gap.summary, read_protocol_gap(tmp_path / "toolkit", tmp_path / "authors").summary)
