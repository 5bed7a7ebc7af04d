"""Predicted against measured critical values, seed by seed, in log2 units (docs/PROTOCOL.md section 7).

A per-seed table has one row per (arch, d, w, init seed, SGD seed, predictor, boundary) with the
``predicted`` and ``measured`` critical values (NaN where not found). For each predictor and
boundary the summary gives, over the rows where both are found:

    delta          = log2 c_predicted - log2 c_measured          (one grid step = 0.1)
    median, rms    of delta;  median |delta|
    within 1 / 2   fraction of seeds with |delta| <= 0.1 / 0.2   (one / two grid steps)
    spearman_all   Spearman rho of predicted and measured across every seed
    spearman_within  median over the (d, w) points of rho across that point's seeds
                   (points with at least 3 seeds and both sides non-constant)

``missing`` = rows where either side was not found (never counted as agreeing), of which
``one_sided`` = rows where exactly one side found it (a disagreement about whether the threshold
lies in the scanned range at all).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from earlyphase.compare.agreement import ROUNDING, rank_correlation
from earlyphase.core.grid import DEFAULT_X_STEP

PER_SEED_COLUMNS = (
    "arch",
    "depth",
    "width",
    "d_over_w",
    "seed_init",
    "seed_sgd",
    "predictor",
    "boundary",
    "predicted",
    "measured",
)
SUMMARY_COLUMNS = (
    "predictor",
    "boundary",
    "seeds",
    "missing",
    "one_sided",
    "median_delta",
    "rms_delta",
    "median_abs_delta",
    "within_1",
    "within_2",
    "spearman_all",
    "spearman_within",
)


def log2_ratio(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """delta = log2(predicted / measured); NaN where either is missing or not positive."""
    predicted = np.asarray(predicted, dtype=float)
    measured = np.asarray(measured, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.log2(predicted) - np.log2(measured)
    return np.where(np.isfinite(delta), delta, np.nan)


def per_seed_summary(table: pd.DataFrame, grid_step: float = DEFAULT_X_STEP) -> pd.DataFrame:
    """One row per (predictor, boundary): the statistics of the module docstring."""
    missing_columns = set(PER_SEED_COLUMNS) - set(table.columns)
    if missing_columns:
        raise ValueError(f"per-seed table lacks the columns {sorted(missing_columns)}")
    rows = []
    for (predictor, boundary), group in table.groupby(["predictor", "boundary"], sort=False):
        delta = log2_ratio(group["predicted"].to_numpy(), group["measured"].to_numpy())
        known = np.isfinite(delta)
        both = group[known]
        within = [
            rank_correlation(point["predicted"], point["measured"])
            for _, point in both.groupby(["arch", "depth", "width"], sort=False)
        ]
        within = [rho for rho in within if np.isfinite(rho)]
        rows.append(
            {
                "predictor": predictor,
                "boundary": boundary,
                "seeds": int(known.sum()),
                "missing": int((~known).sum()),
                "one_sided": int(
                    np.sum(
                        np.isfinite(group["predicted"].to_numpy(float))
                        != np.isfinite(group["measured"].to_numpy(float))
                    )
                ),
                "median_delta": _stat(np.median, delta[known]),
                "rms_delta": _stat(lambda d: np.sqrt(np.mean(d**2)), delta[known]),
                "median_abs_delta": _stat(np.median, np.abs(delta[known])),
                "within_1": _stat(lambda d: np.mean(np.abs(d) <= grid_step + ROUNDING), delta[known]),
                "within_2": _stat(lambda d: np.mean(np.abs(d) <= 2 * grid_step + ROUNDING), delta[known]),
                "spearman_all": rank_correlation(both["predicted"], both["measured"]),
                "spearman_within": float(np.median(within)) if within else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def format_per_seed_summary(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table (log2 units; 0.1 = one grid step)."""
    header = (
        "| predictor | boundary | seeds | missing (one-sided) | median δ | rms δ | median abs δ | within 1 step | within 2 steps"
        " | Spearman (all) | Spearman (within d, w) |"
    )
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in summary.itertuples(index=False):
        lines.append(
            f"| {row.predictor} | {row.boundary} | {row.seeds} | {row.missing} ({row.one_sided}) | {_num(row.median_delta, '+.2f')}"
            f" | {_num(row.rms_delta, '.2f')} | {_num(row.median_abs_delta, '.2f')} | {_num(row.within_1, '.0%')}"
            f" | {_num(row.within_2, '.0%')} | {_num(row.spearman_all, '+.2f')} | {_num(row.spearman_within, '+.2f')} |"
        )
    return "\n".join(lines)


def _stat(function, values: np.ndarray) -> float:
    return float(function(values)) if values.size else float("nan")


def _num(value: float, spec: str) -> str:
    return "n/a" if not np.isfinite(value) else format(value, spec)
