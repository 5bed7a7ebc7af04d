"""Figure: a critical value against d/w, one marker per depth, one style per readout (or any label).

Each point is the censored seed median of ``boundary`` at one (d, w) of a boundary table
(``earlyphase.compare.tables.seed_average``), with the seed standard deviation as an error bar;
points of one depth share a marker, and each labelled table (e.g. the standard readout and the
zero-readout control) has its own colour. If the critical value depends on d and w only through
d/w, the depths fall on one curve.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from earlyphase.compare.style import BOUNDARY_LABELS, log2_c_axis, new_figure, reference_lines, save_figure
from earlyphase.compare.tables import boundary_view

DEPTH_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
SERIES_COLORS = ("tab:blue", "tab:green", "tab:orange", "tab:purple")


def collapse_figure(tables: Mapping[str, pd.DataFrame], path: str | Path, boundary: str = "c_loss") -> Path:
    """Draw ``boundary`` against d/w for each labelled boundary table to ``path``; return the path."""
    fig, (ax,) = new_figure(width=6.4, height=4.8)
    depths = sorted({int(d) for table in tables.values() for d in boundary_view(table, boundary)["depth"]})
    for color, (label, table) in zip(SERIES_COLORS, tables.items()):
        view = boundary_view(table, boundary)
        centre = view["median"] if "median" in view else view["mean"]
        for marker, depth in zip(DEPTH_MARKERS, depths):
            rows = (view["depth"] == depth).to_numpy() & np.isfinite(centre.to_numpy(float))
            if not rows.any():
                continue
            order = np.argsort(view["d_over_w"].to_numpy(float)[rows])
            x = view["d_over_w"].to_numpy(float)[rows][order]
            y = centre.to_numpy(float)[rows][order]
            spread = np.nan_to_num(view["std"].to_numpy(float)[rows][order])
            ax.errorbar(
                x,
                y,
                yerr=spread,
                color=color,
                marker=marker,
                linestyle="-",
                linewidth=0.8,
                capsize=2,
                label=f"{label}, d = {depth}",
            )
    reference_lines(ax, (2.0,))
    ax.set_xscale("log", base=2)
    log2_c_axis(ax)
    ax.set_xlabel("depth / width  d/w  (log2 scale)")
    ax.set_ylabel(f"{boundary} (seed median, ± std)")
    ax.set_title(f"{BOUNDARY_LABELS[boundary]} against d/w: do the depths collapse?", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return save_figure(fig, path)
