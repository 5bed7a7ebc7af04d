"""Figure: predicted against measured critical values, one point per seed, one panel per boundary; each panel lists the fraction of seeds within two grid steps per predictor.

Both axes are c on a log2 scale. The diagonal is perfect agreement; the shaded bands are
|log2(predicted / measured)| <= one grid step (0.1 in log2, 7.2 %) and two grid steps. One colour
per predictor; the panel title gives each predictor's fraction of seeds within two steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from earlyphase.compare.per_seed import log2_ratio
from earlyphase.compare.style import BOUNDARY_LABELS, log2_c_axis, new_figure, save_figure
from earlyphase.core import CRITICAL_NAMES
from earlyphase.core.grid import DEFAULT_X_STEP

PREDICTOR_COLORS = {
    "lookahead": "tab:blue",
    "analytic": "tab:green",
    "calibrated_uv": "tab:orange",
    "lazy": "0.5",
    "uv": "tab:pink",
    "linear": "tab:brown",
}


def per_seed_figure(table: pd.DataFrame, path: str | Path, predictors: tuple[str, ...] | None = None) -> Path:
    """Draw the per-seed table (``earlyphase.compare.per_seed``) to ``path``; return the path."""
    boundaries = [name for name in CRITICAL_NAMES if name in set(table["boundary"])]
    if not boundaries:
        raise ValueError("the per-seed table has no boundary rows to draw")
    names = list(predictors) if predictors is not None else list(dict.fromkeys(table["predictor"]))
    columns = min(2, len(boundaries))
    fig, axes = new_figure(columns=columns, rows=-(-len(boundaries) // columns), width=5.2, height=5.2)
    for ax, boundary in zip(axes, boundaries):
        rows = table[table["boundary"] == boundary]
        both = rows[np.isfinite(log2_ratio(rows["predicted"].to_numpy(), rows["measured"].to_numpy()))]
        if both.empty:
            ax.set_title(BOUNDARY_LABELS[boundary], fontsize=10)
            ax.text(
                0.5, 0.5, "no seed where both the prediction\nand the measurement found it", ha="center", va="center"
            )
            ax.axis("off")
            continue
        values = np.concatenate([both["predicted"].to_numpy(float), both["measured"].to_numpy(float)])
        low, high = values.min() / 1.5, values.max() * 1.5
        line = np.geomspace(low, high, 64)
        for steps, alpha in ((2, 0.12), (1, 0.22)):
            factor = 2.0 ** (steps * DEFAULT_X_STEP)
            label = f"within {steps} grid step{'s' if steps > 1 else ''}"
            ax.fill_between(line, line / factor, line * factor, color="0.3", alpha=alpha, lw=0, label=label)
        ax.plot(line, line, color="black", lw=1, label="predicted = measured")
        scores = []
        for name in names:
            points = both[both["predictor"] == name]
            if points.empty:
                continue
            delta = log2_ratio(points["predicted"].to_numpy(), points["measured"].to_numpy())
            within = float(np.mean(np.abs(delta) <= 2 * DEFAULT_X_STEP + 1e-9))
            scores.append(f"{name} {within:.0%}")
            color = PREDICTOR_COLORS.get(name)
            ax.scatter(
                points["measured"], points["predicted"], s=18, alpha=0.75, color=color, label=name, edgecolor="none"
            )
        log2_c_axis(ax, "x")
        log2_c_axis(ax, "y")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_xlabel("measured c (sweep, per seed)")
        ax.set_ylabel("predicted c (from the initialisation)")
        ax.set_title(BOUNDARY_LABELS[boundary], fontsize=10)
        box = dict(boxstyle="round", facecolor="white", alpha=0.85, edgecolor="0.7")
        ax.text(
            0.03,
            0.97,
            "seeds within 2 grid steps:\n" + "\n".join(scores),
            transform=ax.transAxes,
            ha="left",
            va="top",
            fontsize=8,
            bbox=box,
        )
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    for ax in axes[len(boundaries) :]:
        ax.set_visible(False)
    fig.suptitle("critical learning rates predicted from the initialisation vs measured by the sweep", fontsize=11)
    fig.subplots_adjust(bottom=0.1)
    return save_figure(fig, path)
