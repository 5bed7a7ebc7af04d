"""Seed-to-seed spread of critical values against the initial loss L_0.

The output scale at initialisation varies from seed to seed, and the catapult is driven by
the non-zero initial output (docs/PROTOCOL.md section 4), so per-seed critical values are read
against L_0. For each (d, w) of a per-seed table (columns depth, width, loss0 and the
boundary) the least-squares line and Pearson correlation over seeds are

    c_b = intercept + slope * L_0,        r = cov(L_0, c_b) / (std(L_0) std(c_b)).

Seeds where the boundary was not found are left out. Fewer than 3 seeds, or a constant
L_0 or c_b, give NaN for r (and for the line when L_0 is constant).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPREAD_COLUMNS = (
    "depth",
    "width",
    "d_over_w",
    "boundary",
    "seeds",
    "loss0_min",
    "loss0_max",
    "c_min",
    "c_max",
    "pearson_r",
    "slope",
    "intercept",
)

MIN_SEEDS_FOR_R = 3
"""Pearson r over fewer seeds is not computed (two points always lie on a line: |r| = 1)."""


def seed_spread(per_seed: pd.DataFrame, boundary: str = "c_loss") -> pd.DataFrame:
    """Per (d, w): seeds, L_0 and c_b ranges, Pearson r and the fitted line c_b = a + b L_0."""
    for column in ("depth", "width", "loss0", boundary):
        if column not in per_seed.columns:
            raise ValueError(f"per-seed table needs a {column!r} column for the seed-spread analysis")
    rows = []
    for (depth, width), group in per_seed.groupby(["depth", "width"], sort=True):
        found = group.dropna(subset=["loss0", boundary])
        loss0 = found["loss0"].to_numpy(float)
        value = found[boundary].to_numpy(float)
        slope, intercept, r = linear_trend(loss0, value)
        rows.append(
            {
                "depth": int(depth),
                "width": int(width),
                "d_over_w": depth / width,
                "boundary": boundary,
                "seeds": int(loss0.size),
                "loss0_min": float(loss0.min()) if loss0.size else np.nan,
                "loss0_max": float(loss0.max()) if loss0.size else np.nan,
                "c_min": float(value.min()) if value.size else np.nan,
                "c_max": float(value.max()) if value.size else np.nan,
                "pearson_r": r,
                "slope": slope,
                "intercept": intercept,
            }
        )
    return pd.DataFrame(rows, columns=list(SPREAD_COLUMNS)).sort_values(["d_over_w", "depth"]).reset_index(drop=True)


def linear_trend(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(slope, intercept, r) of the least-squares line y = intercept + slope x and Pearson r."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size < 2 or np.ptp(x) == 0:
        return float("nan"), float("nan"), float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    slope = float(dx @ dy / (dx @ dx))
    intercept = float(y.mean() - slope * x.mean())
    r = float(dx @ dy / np.sqrt((dx @ dx) * (dy @ dy))) if x.size >= MIN_SEEDS_FOR_R and np.ptp(y) > 0 else float("nan")
    return slope, intercept, r


def format_seed_spread(spread: pd.DataFrame) -> str:
    """Plain-text table: one line per (d, w). Where r (or the slope) is NaN the cell reads "n/a",
    and a note under the table says why: fewer than ``MIN_SEEDS_FOR_R`` seeds found the boundary,
    or L_0 or c is the same for every seed."""
    lines = [f"{'d':>3} {'w':>5} {'d/w':>7} {'seeds':>5} {'L0 range':>17} {'c range':>15} {'r':>6} {'dc/dL0':>8}"]
    reasons = set()
    for row in spread.itertuples(index=False):
        if np.isnan(row.pearson_r):
            few = row.seeds < MIN_SEEDS_FOR_R
            reasons.add(
                f"r n/a: needs >= {MIN_SEEDS_FOR_R} seeds" if few else "r n/a: L0 or c is the same for every seed"
            )
        r = "n/a" if np.isnan(row.pearson_r) else f"{row.pearson_r:+.2f}"
        slope = "n/a" if np.isnan(row.slope) else f"{row.slope:+.3g}"
        lines.append(
            f"{row.depth:>3d} {row.width:>5d} {row.d_over_w:>7.4f} {row.seeds:>5d} "
            f"{row.loss0_min:>8.3g}..{row.loss0_max:<8.3g} {row.c_min:>7.3g}..{row.c_max:<6.3g} "
            f"{r:>6} {slope:>8}"
        )
    return "\n".join(lines + [f"({reason})" for reason in sorted(reasons)])
