"""Plain-text report of a comparison: critical values, agreement, d/w collapse, seed spread."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from earlyphase.compare.agreement import agreement_summary, agreement_table, format_agreement
from earlyphase.compare.collapse import collapse_ratio
from earlyphase.compare.controls import Control
from earlyphase.compare.seed_spread import format_seed_spread, seed_spread
from earlyphase.compare.theory_overlay import THEORY_NAMES, TheoryTables
from earlyphase.core import CRITICAL_NAMES


def format_critical_values(table: pd.DataFrame) -> str:
    """One line per (d, w): each boundary's seed mean ± std over the seeds where it was found (found/seeds,
    the seeds of the sweep's spec where the table has expected_seeds),
    then its censored median over all seeds ("> c" when above the scanned range), where the table has one."""
    names = [name for name in CRITICAL_NAMES if name in set(table["boundary"])]
    cell_width = 30 if "median" in table.columns else 22
    lines = [f"{'d':>3} {'w':>5} {'d/w':>7} " + " ".join(f"{name:>{cell_width}}" for name in names)]
    for (d_over_w, depth, width), group in table.groupby(["d_over_w", "depth", "width"]):
        rows = group.set_index("boundary")
        cells = []
        for name in names:
            row = rows.loc[name]
            cell = "not found" if not np.isfinite(row["mean"]) else f"{row['mean']:.3g} ± {row['std']:.2g}"
            seeds = row["expected_seeds"] if "expected_seeds" in row.index else row["seeds"]  # the spec's, where known
            cell += f" ({int(row['found'])}/{int(seeds)})"
            if "median" in row.index:
                cell += f" med {_median_text(row['median'], row.get('median_bound'))}"
            cells.append(f"{cell:>{cell_width}}")
        lines.append(f"{depth:>3d} {width:>5d} {d_over_w:>7.4f} " + " ".join(cells))
    return "\n".join(lines)


def _median_text(median: float, bound: float | None) -> str:
    if median is None or np.isnan(median):
        return "-"
    if np.isinf(median):
        return f"{'>' if median > 0 else '<'} {bound:.3g}"
    return f"{median:.3g}"


def comparison_report(
    measured: pd.DataFrame,
    per_seed: pd.DataFrame | None = None,
    theories: Sequence[TheoryTables] = (),
    controls: Sequence[Control] = (),
) -> str:
    """Measured critical values; per theory its predictions, the agreement table and the seed
    spread in its own ensemble; per control sweep its critical values and d/w collapse; the d/w
    collapse of c_loss; the measured seed spread."""
    sections = [
        "Measured critical values (mean ± std over the seeds where found (found/seeds), censored median over all seeds; grid step 7.2 % in c):",
        format_critical_values(measured),
    ]
    for theory in theories:
        name = THEORY_NAMES[theory.model]
        table = agreement_table(measured, theory.boundaries)
        sections += [
            "",
            f"Predicted by the {name} at the same (d, w):",
            format_critical_values(theory.boundaries),
            "",
            f"Agreement ({name} vs measured, log2 units):",
            format_agreement(table, agreement_summary(table), name),
        ]
        if not theory.per_seed.empty:
            sections += [
                "",
                f"Seed spread of c_loss against L0 in the {name} ensemble (its own output scale, per model size):",
                format_seed_spread(seed_spread(theory.per_seed, "c_loss")),
            ]
    for control in controls:
        sections += ["", f"Control sweep ({control.label}): measured critical values:"]
        sections += [format_critical_values(control.measured)]
        if control.measured["d_over_w"].nunique() >= 2:
            sections += [f"Control ({control.label}): " + collapse_ratio(control.measured, "c_loss").describe()]
    if measured["d_over_w"].nunique() >= 2:
        sections += ["", collapse_ratio(measured, "c_loss").describe()]
    if per_seed is not None and "loss0" in per_seed.columns:
        sections += [
            "",
            "Seed spread of measured c_loss against the initial loss L0 (per (d, w); r = Pearson correlation):",
            format_seed_spread(seed_spread(per_seed, "c_loss")),
        ]
    return "\n".join(sections)
