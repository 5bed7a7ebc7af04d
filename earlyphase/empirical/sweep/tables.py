"""Tables of a sweep's critical values, from its search summaries.

- ``critical_values.csv``: one row per (arch, depth, width, seed_init, seed_sgd) with d/w,
  lambda_H0, L_0 and, for each of c_loss, c_sharp, c_max, c_barrier, the estimate, the
  bracketing grid values ``_low`` / ``_high`` and ``_found`` (False: outside the scanned range,
  estimate empty, the open side of the bracket empty; e.g. c_sharp above c_max), and
  ``non_monotone``: the thresholds whose flag switched back in c among the search's runs (a
  bisection's answer for them may differ from the grid's by more than one step), and
  ``c_loss_source`` / ``c_sharp_source``: "lookahead" where the search's one-step look-ahead
  prediction passed its check by full runs (``[search] lookahead``;
  ``earlyphase.empirical.sweep.lookahead_search``), "runs" where the bracketing found the value.
- ``critical_values_mean.csv``: one row per (arch, depth, width): seed statistics of each
  threshold by ``earlyphase.core.summarize_seeds`` (mean, std and mean brackets over the seeds
  where it was found, found count; ``_median``: the median over all seeds with "not found
  above the range" as inf and "below" as -inf, ``_median_bound`` the end of the range an
  infinite median lies beyond) and of lambda_H0 and L_0.
- ``index.csv``: one row per run of every finished search with its flags.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from earlyphase.core.critical import CRITICAL_NAMES, Threshold, non_monotone, summarize_seeds
from earlyphase.empirical.sweep.store import INDEX_FILE, write_atomic

CRITICAL_VALUES_FILE = "critical_values.csv"
CRITICAL_MEANS_FILE = "critical_values_mean.csv"
KEY_COLUMNS = ("arch", "depth", "width", "d_over_w")
SEED_COLUMNS = ("seed_init", "seed_sgd")
SOURCE_NAMES = ("c_loss", "c_sharp")
"""The critical values a search can take from the look-ahead; the others, and every value of a
summary without a ``source``, come from the bracketing ("runs")."""


def thresholds(summary: Mapping[str, Any]) -> dict[str, Threshold]:
    """The four ``Threshold`` of one search summary."""
    return {name: Threshold(**summary["critical"][name]) for name in CRITICAL_NAMES}


def per_seed_table(summaries: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per searched point, sorted by arch, depth, width and seeds."""
    rows = []
    for summary in summaries:
        point = summary["point"]
        row: dict[str, Any] = {
            "arch": summary["arch"],
            "depth": point["depth"],
            "width": point["width"],
            "d_over_w": point["depth"] / point["width"],
            "seed_init": point["seed_init"],
            "seed_sgd": point["seed_sgd"],
            "lambda0": summary["lambda0"],
            "loss0": summary["loss0"],
        }
        for name, threshold in thresholds(summary).items():
            row.update({name: threshold.estimate, f"{name}_low": threshold.low, f"{name}_high": threshold.high})
            row[f"{name}_found"] = threshold.found
        row["runs"] = len(summary["runs"])
        row["method"] = summary["search"]["method"]
        row["non_monotone"] = " ".join(non_monotone_in(summary["runs"]))
        for name in SOURCE_NAMES:
            row[f"{name}_source"] = summary.get("source", {}).get(name, "runs")
        rows.append(row)
    columns = [*KEY_COLUMNS, *SEED_COLUMNS, "lambda0", "loss0"]
    columns += [f"{name}{suffix}" for name in CRITICAL_NAMES for suffix in ("", "_low", "_high", "_found")]
    columns += ["runs", "method", "non_monotone", *(f"{name}_source" for name in SOURCE_NAMES)]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values([*KEY_COLUMNS[:3], *SEED_COLUMNS], ignore_index=True)


def non_monotone_in(runs: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    """``earlyphase.core.non_monotone`` of a search's runs (their c and flags)."""
    runs = list(runs)
    return non_monotone(
        [run["c"] for run in runs],
        [run["loss_catapult"] for run in runs],
        [run["sharpness_catapult"] for run in runs],
        [run["diverged"] for run in runs],
        [run.get("barrier") for run in runs],  # type: ignore[arg-type]
    )


def non_monotone_note(per_seed: pd.DataFrame) -> str | None:
    """A line naming the searches whose flags switched back in c (None when there are none);
    for bisection searches it says how to check them against the grid."""
    cells = per_seed["non_monotone"].astype(object)
    flagged = per_seed[cells.notna() & (cells.astype(str) != "")]
    if flagged.empty:
        return None
    names = sorted({name for cell in flagged["non_monotone"] for name in str(cell).split()})
    note = (
        f"note: {len(flagged)} of {len(per_seed)} searches saw flags switch back in c ({', '.join(names)}; "
        "column non_monotone of critical_values.csv)"
    )
    bisected = int((flagged["method"] == "bisect").sum()) if "method" in flagged else 0
    if not bisected:
        return note + ": grid searches, whose thresholds are the grid's by definition"
    return note + (
        f": {bisected} of them by bisection, whose value may then differ from the grid's by more than one step; "
        'check those points with [search] method = "grid" (--search grid) or confirm = 2'
    )


def seed_mean_table(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Seed statistics per (arch, depth, width) via ``summarize_seeds``."""
    rows = []
    for (arch, depth, width), group in per_seed.groupby(list(KEY_COLUMNS[:3]), sort=True):
        row: dict[str, Any] = {
            "arch": arch,
            "depth": depth,
            "width": width,
            "d_over_w": depth / width,
            "seeds": len(group),
        }
        for quantity in ("lambda0", "loss0"):
            values = group[quantity].to_numpy(dtype=float)
            row[f"{quantity}_mean"], row[f"{quantity}_std"] = float(np.mean(values)), float(np.std(values))
        for name in CRITICAL_NAMES:
            summary = summarize_seeds(
                [
                    Threshold(name, _none(r[name]), _none(r[f"{name}_low"]), _none(r[f"{name}_high"]))
                    for r in group.to_dict("records")
                ]
            )
            row.update({f"{name}_mean": summary.mean, f"{name}_std": summary.std, f"{name}_low": summary.low})
            row.update({f"{name}_high": summary.high, f"{name}_found": summary.found})
            row.update({f"{name}_median": summary.median, f"{name}_median_bound": summary.median_bound})
        rows.append(row)
    return pd.DataFrame(rows)


def index_table(summaries: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run: point, grid index, x, c, flags and the record's stem (relative path)."""
    rows = []
    for summary in summaries:
        for run in summary["runs"]:
            rows.append(
                {
                    "arch": summary["arch"],
                    **summary["point"],
                    **run,
                    "record": f"runs/{summary['point_name']}/x{run['x']:+.4f}",
                }
            )
    return pd.DataFrame(rows)


def write_tables(root: str | Path, summaries: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Write critical_values.csv, critical_values_mean.csv and index.csv; return the per-seed table."""
    root = Path(root)
    summaries = list(summaries)
    per_seed = per_seed_table(summaries)
    write_atomic(root / CRITICAL_VALUES_FILE, per_seed.to_csv(index=False))
    write_atomic(root / CRITICAL_MEANS_FILE, seed_mean_table(per_seed).to_csv(index=False))
    write_atomic(root / INDEX_FILE, index_table(summaries).to_csv(index=False))
    return per_seed


def _median_text(row: Mapping[str, Any], name: str) -> str:
    """The censored median of a row of the seed-mean table as text ("3.48", "> 64", "-")."""
    median = _none(row.get(f"{name}_median"))
    if median is None:
        return "-"
    if np.isinf(median):
        return f"{'>' if median > 0 else '<'} {_none(row.get(f'{name}_median_bound')):.3g}"
    return f"{median:.3g}"


def _none(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def format_means(means: pd.DataFrame) -> str:
    """The seed-averaged table as text: mean +- std (found / seeds), then the censored median, per threshold."""
    header = f"{'arch':6} {'depth':>5} {'width':>5} {'d/w':>8} " + " ".join(f"{name:>34}" for name in CRITICAL_NAMES)
    lines = [header]
    for row in means.to_dict("records"):
        cells = []
        for name in CRITICAL_NAMES:
            found, seeds = int(row[f"{name}_found"]), int(row["seeds"])
            mean, std = _none(row[f"{name}_mean"]), _none(row[f"{name}_std"])
            value = "not found" if mean is None else f"{mean:.3g} +- {std:.2g}"
            cells.append(f"{value} ({found}/{seeds}) med {_median_text(row, name)}".rjust(34))
        lines.append(f"{row['arch']:6} {row['depth']:>5} {row['width']:>5} {row['d_over_w']:>8.4f} " + " ".join(cells))
    return "\n".join(lines)
