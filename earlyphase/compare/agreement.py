"""Theory against measurement, boundary by boundary, in log2 units.

For each boundary b and each (d, w) present in both boundary tables
(``earlyphase.compare.tables``):

    delta      = log2 c_b^theory - log2 c_b^measured          (grid steps of 0.1 = 7.2 %)
    sigma      = std / (mean ln 2)                            (seed spread in log2 units)
    tolerance  = grid_step + sqrt(sigma_measured^2 + sigma_theory^2)
    agrees     = |delta| <= tolerance   (up to 1e-9 of rounding)

and per boundary the summary: pairs compared, pairs agreeing, bias = mean(delta),
rms = sqrt(mean(delta^2)), max |delta|, and the Spearman rank correlation of theory and
measurement across (d, w) (does the theory order the (d, w) pairs the way the data do?).
A pair where either side was not found in its scanned range is listed with delta = NaN
and counted separately; it is never counted as agreeing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from earlyphase.core import CRITICAL_NAMES
from earlyphase.core.grid import DEFAULT_X_STEP

AGREEMENT_COLUMNS = (
    "boundary",
    "depth",
    "width",
    "d_over_w",
    "measured",
    "measured_std",
    "theory",
    "theory_std",
    "delta_log2",
    "tolerance_log2",
    "agrees",
)
ROUNDING = 1e-9
"""Slack on |delta| <= tolerance so that grid values one step apart (delta = 0.1 up to rounding) agree."""
SUMMARY_COLUMNS = ("boundary", "pairs", "missing", "agree", "bias_log2", "rms_log2", "max_abs_log2", "spearman")


def log2_spread(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Seed spread in log2 units by the delta method: sigma = std / (mean ln 2); NaN std -> 0."""
    mean = np.asarray(mean, dtype=float)
    std = np.nan_to_num(np.asarray(std, dtype=float), nan=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return std / (mean * np.log(2.0))


def agreement_table(
    measured: pd.DataFrame,
    theory: pd.DataFrame,
    boundaries: tuple[str, ...] = CRITICAL_NAMES,
    grid_step: float = DEFAULT_X_STEP,
) -> pd.DataFrame:
    """One row per (boundary, d, w) in both tables: delta = log2 theory - log2 measured (module docstring)."""
    keys = ["boundary", "depth", "width"]
    left = measured[measured["boundary"].isin(boundaries)][[*keys, "d_over_w", "mean", "std"]]
    right = theory[theory["boundary"].isin(boundaries)][[*keys, "mean", "std"]]
    merged = left.merge(right, on=keys, suffixes=("_m", "_t"), how="inner")
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = np.log2(merged["mean_t"].to_numpy(float)) - np.log2(merged["mean_m"].to_numpy(float))
    spread = np.hypot(log2_spread(merged["mean_m"], merged["std_m"]), log2_spread(merged["mean_t"], merged["std_t"]))
    tolerance = grid_step + np.nan_to_num(spread, nan=0.0)
    table = pd.DataFrame(
        {
            "boundary": merged["boundary"],
            "depth": merged["depth"].astype(int),
            "width": merged["width"].astype(int),
            "d_over_w": merged["d_over_w"],
            "measured": merged["mean_m"],
            "measured_std": merged["std_m"],
            "theory": merged["mean_t"],
            "theory_std": merged["std_t"],
            "delta_log2": delta,
            "tolerance_log2": tolerance,
            "agrees": np.isfinite(delta) & (np.abs(delta) <= tolerance + ROUNDING),
        },
        columns=list(AGREEMENT_COLUMNS),
    )
    order = {name: index for index, name in enumerate(boundaries)}
    return table.sort_values(
        ["boundary", "d_over_w", "depth"], key=lambda s: s.map(order) if s.name == "boundary" else s
    ).reset_index(drop=True)


def agreement_summary(table: pd.DataFrame) -> pd.DataFrame:
    """One line per boundary: pairs, missing, agree, bias, rms, max |delta| (log2) and Spearman rho."""
    rows = []
    for boundary, group in table.groupby("boundary", sort=False):
        delta = group["delta_log2"].to_numpy(float)
        known = np.isfinite(delta)
        rows.append(
            {
                "boundary": boundary,
                "pairs": int(known.sum()),
                "missing": int((~known).sum()),
                "agree": int(group["agrees"].sum()),
                "bias_log2": float(delta[known].mean()) if known.any() else np.nan,
                "rms_log2": float(np.sqrt(np.mean(delta[known] ** 2))) if known.any() else np.nan,
                "max_abs_log2": float(np.abs(delta[known]).max()) if known.any() else np.nan,
                "spearman": rank_correlation(
                    group["measured"].to_numpy(float)[known], group["theory"].to_numpy(float)[known]
                ),
            }
        )
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rho of x and y; NaN with fewer than 3 pairs or a constant side."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def format_agreement(table: pd.DataFrame, summary: pd.DataFrame, theory_name: str = "theory") -> str:
    """Plain-text agreement table followed by one verdict line per boundary."""
    lines = [
        f"{'boundary':<10} {'d':>3} {'w':>5} {'d/w':>7} {'measured':>16} {theory_name:>16} {'delta log2':>10} {'tol':>5}  verdict"
    ]
    for row in table.itertuples(index=False):
        verdict = "n/a (not found)" if not np.isfinite(row.delta_log2) else ("agrees" if row.agrees else "DISAGREES")
        lines.append(
            f"{row.boundary:<10} {row.depth:>3d} {row.width:>5d} {row.d_over_w:>7.4f} "
            f"{_pm(row.measured, row.measured_std):>16} {_pm(row.theory, row.theory_std):>16} "
            f"{row.delta_log2:>+10.2f} {row.tolerance_log2:>5.2f}  {verdict}"
        )
    lines.append("")
    for row in summary.itertuples(index=False):
        if row.pairs == 0:
            lines.append(
                f"{row.boundary}: no (d, w) where both {theory_name} and measurement found it ({row.missing} not comparable)"
            )
            continue
        rank = "n/a (< 3 pairs or constant)" if not np.isfinite(row.spearman) else f"{row.spearman:+.2f}"
        lines.append(
            f"{row.boundary}: {theory_name} agrees with the measurement at {row.agree}/{row.pairs} (d, w)"
            f" ({row.missing} not comparable); bias {row.bias_log2:+.2f}, rms {row.rms_log2:.2f},"
            f" max |delta| {row.max_abs_log2:.2f} (log2 units; 0.1 = one grid step);"
            f" rank correlation across (d, w) {rank}"
        )
    return "\n".join(lines)


def _pm(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return "not found"
    return f"{mean:.3g} ± {0.0 if not np.isfinite(std) else std:.2g}"
