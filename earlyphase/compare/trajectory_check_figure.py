"""Figure: predicted against measured early trajectories, one row per network, one column per c.

Each panel shows L_t / L_0 (or lambda_t / lambda_0) against the step t on a log scale: the
measured run (black, solid), the multi-step predictors (dashed lines: ``calibrated_uv``, ``lazy``)
and the one-step predictors (markers at t = 1: ``lookahead``, ``analytic``,
``analytic_theta0_gates``). A grey line marks the ratio 1 (a catapult is a rise above it); a curve
that stops before the last step diverged there (the y axis ends ``CLIP_ABOVE`` times above the
largest measured value, so a diverging prediction leaves the panel). Rows are ordered by d/w, then seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from earlyphase.compare.per_seed_figure import PREDICTOR_COLORS
from earlyphase.compare.style import new_figure, save_figure
from earlyphase.compare.trajectory_check import MEASURED, ONE_STEP, PREDICTORS

NETWORK_COLUMNS = ("depth", "width", "seed_init")
CLIP_ABOVE = {"loss_ratio": 10.0, "sharpness_ratio": 1.5}
"""The y axis ends this factor above the largest measured (or one-step) value: diverging predictions leave the panel."""
NARROW_RANGE = 5.0
"""A panel whose y range spans less than this factor gets evenly spaced ticks instead of 1-2-5 ones."""
QUANTITIES = {
    "loss_ratio": "$L_t / L_0$",
    "sharpness_ratio": "$\\lambda^H_t / \\lambda^H_0$",
}
STYLES = {
    MEASURED: {"color": "black", "linestyle": "-", "linewidth": 2.0, "marker": "o", "markersize": 3},
    "calibrated_uv": {"color": PREDICTOR_COLORS["calibrated_uv"], "linestyle": "--", "linewidth": 1.5},
    "lazy": {"color": PREDICTOR_COLORS["lazy"], "linestyle": "--", "linewidth": 1.5},
    "lookahead": {"color": PREDICTOR_COLORS["lookahead"], "linestyle": "none", "marker": "s", "markersize": 8},
    "analytic": {"color": PREDICTOR_COLORS["analytic"], "linestyle": "none", "marker": "x", "markersize": 9, "mew": 2},
    "analytic_theta0_gates": {
        "color": PREDICTOR_COLORS["analytic"],
        "linestyle": "none",
        "marker": "+",
        "markersize": 10,
        "mew": 1.5,
        "alpha": 0.6,
    },
}
LABELS = {
    MEASURED: "measured (SGD run)",
    "lookahead": "lookahead (t = 1: the first step's ray)",
    "analytic": "analytic (t = 1: frozen-gate ray polynomial, last anchor)",
    "analytic_theta0_gates": "analytic, gates of $\\theta_0$ (t = 1)",
    "calibrated_uv": "calibrated_uv (uv map from $\\theta_0$, T steps)",
    "lazy": "lazy (network linearised at $\\theta_0$, same SGD)",
}


def trajectory_check_figure(table: pd.DataFrame, quantity: str, path: str | Path, networks_label: str = "") -> Path:
    """Draw ``quantity`` ("loss_ratio" or "sharpness_ratio") of a trajectory-check table (columns
    depth, width, seed_init, source, c, step and the ratios; ``TrajectoryCheck.table`` per network)
    to ``path``; return the path. ``networks_label`` (e.g. "ReLU FCNs on digits") goes into the title."""
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {tuple(QUANTITIES)}, got {quantity!r}")
    networks = table[list(NETWORK_COLUMNS)].drop_duplicates()
    networks = networks.assign(order=networks["depth"] / networks["width"]).sort_values(["order", "seed_init"])
    c_values = sorted(table["c"].unique())
    fig, axes = new_figure(
        columns=len(c_values), rows=len(networks), width=3.6, height=2.7, sharex=True, layout="constrained"
    )
    steps = int(table["step"].max())
    for row, network in enumerate(networks.itertuples(index=False)):
        rows = table[
            (table["depth"] == network.depth)
            & (table["width"] == network.width)
            & (table["seed_init"] == network.seed_init)
        ]
        for column, c in enumerate(c_values):
            ax = axes[row * len(c_values) + column]
            ax.axhline(1.0, color="0.7", linewidth=1, zorder=0)
            low, high = 1.0, 1.0
            for source in (MEASURED, *PREDICTORS):
                curve = rows[(rows["source"] == source) & (rows["c"] == c)].sort_values("step")
                values = curve[quantity].to_numpy(float)
                shown = curve[np.isfinite(values) & (values > 0)]
                if source in ONE_STEP:
                    shown = shown[shown["step"] == 1]
                if shown.empty:
                    continue
                ax.plot(shown["step"], shown[quantity], label=LABELS[source], **STYLES[source])
                low = min(low, float(shown[quantity].min()))
                if source == MEASURED or source in ONE_STEP:
                    high = max(high, float(shown[quantity].max()))
            ax.set_yscale("log")
            bottom, top = low / 1.3, high * CLIP_ABOVE[quantity]
            ax.set_ylim(bottom, top)
            narrow = top / bottom < NARROW_RANGE  # too few 1-2-5 ticks: evenly spaced ones
            ax.yaxis.set_major_locator(MaxNLocator(5) if narrow else LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_xlim(-0.3, steps + 0.3)
            ax.grid(alpha=0.3, which="major")
            d_over_w = network.depth / network.width
            ax.set_title(
                f"d={network.depth}, w={network.width}, seed {network.seed_init} (d/w={d_over_w:.3g}); c = {c:g}",
                fontsize=8,
            )
            if column == 0:
                ax.set_ylabel(QUANTITIES[quantity])
            if row == len(networks) - 1:
                ax.set_xlabel("step t")
    legend: dict[str, Artist] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(list(legend.values()), list(legend), loc="outside lower center", ncol=3, fontsize=9, frameon=False)
    name = "loss" if quantity == "loss_ratio" else "sharpness"
    fig.suptitle(
        f"Predicted vs measured {name} trajectories {QUANTITIES[quantity]}"
        f"{f' of {networks_label}' if networks_label else ''}\n(a line that stops early, or leaves the panel, diverges)",
    )
    return save_figure(fig, path)


__all__ = ["trajectory_check_figure"]
