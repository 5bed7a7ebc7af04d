"""Two sweeps of the same seeds under two measurement protocols, seed by seed (docs/PROTOCOL.md section 2).

Sweep A (e.g. the toolkit's protocol) and sweep B (e.g. the authors', ``earlyphase.empirical.
authors_protocol``) are matched on (arch, d, w, init seed, SGD seed). For each critical value

    delta = log2(c_B / c_A) / x_step        (in grid steps; x_step = 0.1: one step is 7.2 % in c)

and over the seeds where both found it: its median and mean, and how many seeds lie within
|delta| <= 0, 1, 2 steps. ``missing``: matched seeds where either side did not find it, of which
``one_sided``: where exactly one did. The per-seed table also holds L_0 and lambda_H0 of both
sweeps (the protocols measure them on different sets).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from earlyphase.compare.agreement import ROUNDING
from earlyphase.compare.per_seed import log2_ratio
from earlyphase.compare.tables import read_critical_values
from earlyphase.core.critical import CRITICAL_NAMES
from earlyphase.core.grid import DEFAULT_X_STEP

MATCH_KEYS = ("arch", "depth", "width", "seed_init", "seed_sgd")
SCALARS = ("loss0", "lambda0")
WITHIN_STEPS = (0, 1, 2)
SUMMARY_COLUMNS = (
    "critical",
    "seeds",
    "missing",
    "one_sided",
    "median_steps",
    "mean_steps",
    *(f"within_{k}" for k in WITHIN_STEPS),
)


@dataclass(frozen=True)
class ProtocolGap:
    """``per_seed``: one row per matched seed (MATCH_KEYS, ``loss0_a/_b``, ``lambda0_a/_b``, and per
    critical value ``c_*_a``, ``c_*_b``, ``c_*_steps``); ``summary``: one row per critical value."""

    per_seed: pd.DataFrame
    summary: pd.DataFrame


def protocol_gap(table_a: pd.DataFrame, table_b: pd.DataFrame, x_step: float = DEFAULT_X_STEP) -> ProtocolGap:
    """The module docstring's comparison of two per-seed critical-value tables (``critical_values.csv``)."""
    columns = [*MATCH_KEYS, *SCALARS, *CRITICAL_NAMES]
    merged = table_a[columns].merge(table_b[columns], on=list(MATCH_KEYS), suffixes=("_a", "_b"))
    for name in CRITICAL_NAMES:
        merged[f"{name}_steps"] = log2_ratio(merged[f"{name}_b"].to_numpy(), merged[f"{name}_a"].to_numpy()) / x_step
    ordered = [*MATCH_KEYS, *(f"{s}_{side}" for s in SCALARS for side in "ab")]
    ordered += [f"{name}{suffix}" for name in CRITICAL_NAMES for suffix in ("_a", "_b", "_steps")]
    per_seed = merged[ordered].sort_values(list(MATCH_KEYS), ignore_index=True)
    return ProtocolGap(per_seed, pd.DataFrame([_summary_row(per_seed, name) for name in CRITICAL_NAMES]))


def _summary_row(per_seed: pd.DataFrame, name: str) -> dict:
    steps = per_seed[f"{name}_steps"].to_numpy(dtype=float)
    known = steps[np.isfinite(steps)]
    found_a = np.isfinite(per_seed[f"{name}_a"].to_numpy(dtype=float))
    found_b = np.isfinite(per_seed[f"{name}_b"].to_numpy(dtype=float))
    row = {
        "critical": name,
        "seeds": int(known.size),
        "missing": int(steps.size - known.size),
        "one_sided": int(np.sum(found_a != found_b)),
        "median_steps": float(np.median(known)) if known.size else np.nan,
        "mean_steps": float(np.mean(known)) if known.size else np.nan,
    }
    row.update({f"within_{k}": int(np.sum(np.abs(known) <= k + ROUNDING)) for k in WITHIN_STEPS})
    return row


def read_protocol_gap(sweep_a: str | Path, sweep_b: str | Path, x_step: float = DEFAULT_X_STEP) -> ProtocolGap:
    """``protocol_gap`` of two sweep results directories (their ``critical_values.csv``)."""
    return protocol_gap(read_critical_values(sweep_a), read_critical_values(sweep_b), x_step)


def format_protocol_gap(gap: ProtocolGap, name_a: str = "A", name_b: str = "B") -> str:
    """Both tables as Markdown: per seed (delta in grid steps, '-' where either side is missing), then the summary."""
    names = " | ".join(f"δ {name}" for name in CRITICAL_NAMES)
    lines = [
        f"δ = log2(c_{name_b} / c_{name_a}) in grid steps",
        "",
        f"| d | w | seed | L₀ {name_a} | L₀ {name_b} | λᴴ₀ {name_a} | λᴴ₀ {name_b} | {names} |",
        "|---:|---:|---|---:|---:|---:|---:|" + "---:|" * len(CRITICAL_NAMES),
    ]
    for row in gap.per_seed.to_dict("records"):
        deltas = " | ".join(_number(row[f"{name}_steps"], "+.1f") for name in CRITICAL_NAMES)
        lines.append(
            f"| {row['depth']} | {row['width']} | {row['seed_init']}/{row['seed_sgd']} | {row['loss0_a']:.4g}"
            f" | {row['loss0_b']:.4g} | {row['lambda0_a']:.4g} | {row['lambda0_b']:.4g} | {deltas} |"
        )
    within = " | ".join(f"within {k}" for k in WITHIN_STEPS)
    lines += ["", f"| critical | seeds | missing (one-sided) | median δ | mean δ | {within} |"]
    lines.append("|---|---:|---:|---:|---:|" + "---:|" * len(WITHIN_STEPS))
    for row in gap.summary.to_dict("records"):
        counts = " | ".join(str(row[f"within_{k}"]) for k in WITHIN_STEPS)
        lines.append(
            f"| {row['critical']} | {row['seeds']} | {row['missing']} ({row['one_sided']})"
            f" | {_number(row['median_steps'], '+.1f')} | {_number(row['mean_steps'], '+.2f')} | {counts} |"
        )
    return "\n".join(lines)


def _number(value: float, spec: str) -> str:
    return "-" if not np.isfinite(value) else format(value, spec)
