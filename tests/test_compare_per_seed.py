"""Per-seed agreement statistics against hand-computed values, and the figure."""

import numpy as np
import pandas as pd
import pytest

from earlyphase.compare.per_seed import format_per_seed_summary, per_seed_summary
from earlyphase.compare.per_seed_figure import per_seed_figure


def _rows(predictor, boundary, pairs, depth=4, width=32):
    return [
        {
            "arch": "fcn",
            "depth": depth,
            "width": width,
            "d_over_w": depth / width,
            "seed_init": seed,
            "seed_sgd": 0,
            "predictor": predictor,
            "boundary": boundary,
            "predicted": p,
            "measured": m,
        }
        for seed, (p, m) in enumerate(pairs)
    ]


def test_summary_matches_hand_computed_statistics():
    # deltas: log2(2.0/2.0) = 0, log2(4*2**0.1 / 4) = 0.1, log2(8*2**0.3/8) = 0.3, log2(1/2) = -1; one missing
    pairs = [(2.0, 2.0), (4 * 2**0.1, 4.0), (8 * 2**0.3, 8.0), (1.0, 2.0), (np.nan, 3.0)]
    table = pd.DataFrame(_rows("lookahead", "c_loss", pairs))
    row = per_seed_summary(table).iloc[0]
    deltas = np.array([0.0, 0.1, 0.3, -1.0])
    assert row["seeds"] == 4 and row["missing"] == 1 and row["one_sided"] == 1
    assert row["median_delta"] == pytest.approx(np.median(deltas))
    assert row["rms_delta"] == pytest.approx(np.sqrt(np.mean(deltas**2)))
    assert row["median_abs_delta"] == pytest.approx(0.2)
    assert row["within_1"] == pytest.approx(0.5)  # 0 and 0.1 (one step, up to rounding)
    assert row["within_2"] == pytest.approx(0.5)  # 0.3 is three steps
    # predicted order 2, 4.3, 9.8, 1 vs measured 2, 4, 8, 2: ranks (2,3,4,1) vs (1.5,3,4,1.5)
    assert row["spearman_all"] == pytest.approx(0.9486832980505138)
    assert "| lookahead | c_loss | 4 | 1 (1) |" in format_per_seed_summary(per_seed_summary(table))


def test_within_point_correlation_uses_each_point_alone():
    # point A: perfectly ordered; point B: perfectly reversed -> median of (+1, -1) = 0
    rows = _rows("analytic", "c_max", [(1, 1), (2, 2), (3, 3)], width=32)
    rows += _rows("analytic", "c_max", [(3, 1), (2, 2), (1, 3)], width=64)
    row = per_seed_summary(pd.DataFrame(rows)).iloc[0]
    assert row["spearman_within"] == pytest.approx(0.0)


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match="measured"):
        per_seed_summary(pd.DataFrame({"predictor": ["x"], "boundary": ["c_loss"], "predicted": [1.0]}))


def test_figure_is_written(tmp_path):
    rows = _rows("lookahead", "c_loss", [(2, 2), (4, 4.3), (9, 8)]) + _rows(
        "analytic", "c_loss", [(2.5, 2), (3, 4.3), (6, 8)]
    )
    rows += _rows("lookahead", "c_max", [(10, 12), (20, 18), (np.nan, 30)])
    path = per_seed_figure(pd.DataFrame(rows), tmp_path / "pvm.png")
    assert path.stat().st_size > 10_000


def test_collapse_figure_draws_each_depth_of_each_table(tmp_path):
    from earlyphase.compare.collapse_figure import collapse_figure

    def table(shift):
        return pd.DataFrame(
            [
                {
                    "source": "measured",
                    "arch": "fcn",
                    "depth": d,
                    "width": w,
                    "d_over_w": d / w,
                    "boundary": "c_loss",
                    "mean": shift * d / w * 64,
                    "std": 0.1,
                    "median": shift * d / w * 64,
                }
                for d in (2, 4)
                for w in (32, 64)
            ]
        )

    path = collapse_figure({"standard": table(1.0), "zero readout": table(0.5)}, tmp_path / "collapse.png")
    assert path.stat().st_size > 10_000
