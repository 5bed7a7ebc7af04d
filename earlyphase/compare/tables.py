"""Tables of critical values, measured or predicted, in one long format.

A *boundary table* has one row per (source, arch, depth, width, boundary) with the seed
statistics of that critical value (``earlyphase.core.SeedSummary``):

    source, arch, depth, width, d_over_w, boundary, mean, std, low, high, found, seeds, median, median_bound

(mean, std, low and high over the ``found`` seeds; median over all ``seeds``, censored.)

``source`` says who produced the row ("measured", or the theory model's name). Both the
sweep's per-seed ``critical_values.csv`` and the theory's ``SeedSummary`` objects are
turned into this format, so every comparison and figure reads one schema.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from earlyphase.core import CRITICAL_NAMES, SeedSummary, Threshold, summarize_seeds
from earlyphase.core.validate import ConfigError

BOUNDARY_COLUMNS = (
    "source",
    "arch",
    "depth",
    "width",
    "d_over_w",
    "boundary",
    "mean",
    "std",
    "low",
    "high",
    "found",
    "seeds",
    "median",
    "median_bound",
)
MEASURED = "measured"
CRITICAL_VALUES_FILE = "critical_values.csv"
PER_SEED_KEYS = ("arch", "depth", "width")


def read_critical_values(results_dir: str | Path) -> pd.DataFrame:
    """The per-seed table ``RESULTS_DIR/critical_values.csv`` written by ``earlyphase sweep``.

    One row per (arch, depth, width, seeds) with c_loss, c_sharp, c_max, c_barrier and their
    ``_low``/``_high`` brackets. Raises ConfigError when the file or a needed column is missing.
    """
    path = Path(results_dir) / CRITICAL_VALUES_FILE
    if not path.is_file():
        raise ConfigError(
            f"results_dir must hold {CRITICAL_VALUES_FILE} (a finished `earlyphase sweep`), got {results_dir}",
            "results_dir",
        )
    table = pd.read_csv(path)
    check_per_seed(table)
    return table


def check_per_seed(table: pd.DataFrame) -> None:
    """Raise ConfigError unless ``table`` has the key columns and every c_* bracket column."""
    needed = [*PER_SEED_KEYS] + [f"{name}{suffix}" for name in CRITICAL_NAMES for suffix in ("", "_low", "_high")]
    missing = [column for column in needed if column not in table.columns]
    if missing:
        raise ConfigError(f"critical-value table is missing columns {missing}", "results_dir")


def seed_average(per_seed: pd.DataFrame, source: str = MEASURED) -> pd.DataFrame:
    """Boundary table of a per-seed table: ``summarize_seeds`` over the rows of each (arch, d, w)."""
    check_per_seed(per_seed)
    rows = []
    for (arch, depth, width), group in per_seed.groupby(list(PER_SEED_KEYS), sort=True):
        for name in CRITICAL_NAMES:
            thresholds = [
                Threshold(name, _none(r[name]), _none(r[f"{name}_low"]), _none(r[f"{name}_high"]))
                for r in group.to_dict("records")
            ]
            rows.append(boundary_row(source, arch, depth, width, name, summarize_seeds(thresholds)))
    return pd.DataFrame(rows, columns=list(BOUNDARY_COLUMNS))


def summaries_to_table(
    summaries: Mapping[tuple[int, int], Mapping[str, SeedSummary]], source: str, arch: str | None = None
) -> pd.DataFrame:
    """Boundary table of {(depth, width): {boundary name: SeedSummary}} (e.g. a theory ensemble)."""
    rows = [
        boundary_row(source, arch or source, depth, width, name, summary)
        for (depth, width), by_name in sorted(summaries.items())
        for name, summary in by_name.items()
    ]
    return pd.DataFrame(rows, columns=list(BOUNDARY_COLUMNS))


def boundary_row(source: str, arch: str, depth: int, width: int, name: str, summary: SeedSummary) -> dict:
    """One row of a boundary table; d_over_w = depth / width."""
    return {
        "source": source,
        "arch": arch,
        "depth": int(depth),
        "width": int(width),
        "d_over_w": depth / width,
        "boundary": name,
        **{key: (np.nan if value is None else value) for key, value in summary.as_dict().items()},
    }


def boundary_view(table: pd.DataFrame, boundary: str) -> pd.DataFrame:
    """Rows of one boundary, sorted by d/w then depth."""
    return table[table["boundary"] == boundary].sort_values(["d_over_w", "depth"]).reset_index(drop=True)


def _none(value: object) -> float | None:
    """NaN / None / empty cell -> None, anything else -> float."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]  # a table cell: a number or numeric text
    return None if math.isnan(number) else number
