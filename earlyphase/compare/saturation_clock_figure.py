"""Figure: lambda_t / lambda_0 against t and against c t, one row per network, one line per c,
and the spread S(alpha) of the curves against the clock c^alpha t.

If c t is the clock of the intermediate saturation (docs/PROTOCOL.md section 4), the curves of
one network fall on one another in the middle panel and S(alpha) is smallest at alpha = 1. Each panel's title gives the spread
S of ``earlyphase.compare.saturation_clock`` over the runs without a loss catapult (drawn solid;
a run whose loss catapulted is dashed), and a dot marks each run's saturation step tau_c.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from earlyphase.compare.style import new_figure
from earlyphase.compare.trajectories import c_norm, with_ratios

CLOCK_AXIS_LABELS = {"t": "step t (log scale)", "ct": "$c\\,t$ = step x c (log scale)"}


def saturation_clock_figure(
    table: pd.DataFrame,
    per_run: pd.DataFrame,
    per_network: pd.DataFrame,
    scans: pd.DataFrame,
    tolerance: float,
    cmap: str = "viridis",
) -> Figure:
    """The curves of ``table`` (a trajectory table) against t (left) and c t (middle), with
    ``saturation_clock``'s per-run tau, per-network spreads and S(alpha) scans (right);
    ``tolerance`` names tau's rule."""
    table = with_ratios(table)
    networks = per_network.sort_values("d_over_w", ascending=False)
    colormap = plt.get_cmap(cmap)
    fig, axes = new_figure(columns=3, rows=len(networks), width=5.0, height=3.8)
    for row, network in enumerate(networks.itertuples(index=False)):
        runs = table[(table["depth"] == network.depth) & (table["width"] == network.width)]
        network_runs = per_run[(per_run["depth"] == network.depth) & (per_run["width"] == network.width)]
        norm = c_norm(runs["c"].to_numpy(float))
        for column, clock in enumerate(("t", "ct")):
            ax = axes[3 * row + column]
            for c, run in runs.groupby("c"):
                measured = run[(run["step"] >= 1) & np.isfinite(run["sharpness_ratio"])]
                scale = c if clock == "ct" else 1.0
                info = network_runs[network_runs["c"] == c].iloc[0]
                ax.plot(
                    measured["step"] * scale,
                    measured["sharpness_ratio"],
                    color=colormap(norm(c) * 0.9),
                    linestyle="--" if info["catapult"] else "-",
                    linewidth=1.2,
                    label=f"c = {c:g}" + (" (loss catapults)" if info["catapult"] else ""),
                )
                if np.isfinite(info["tau"]):
                    ax.plot(info["tau"] * scale, info["ratio_at_tau"], "o", color=colormap(norm(c) * 0.9), markersize=5)
            spread = network.spread_t if clock == "t" else network.spread_ct
            ax.set_xscale("log")
            ax.set_xlabel(CLOCK_AXIS_LABELS[clock])
            ax.set_ylabel("$\\lambda^H_t / \\lambda^H_0$")
            ax.set_title(
                f"d = {network.depth}, w = {network.width} (d/w = {network.d_over_w:.3g}): "
                f"spread against {'t' if clock == 't' else 'c t'} S = {spread:.3f}",
                fontsize=9,
            )
            ax.legend(fontsize=7)
        scan = scans[(scans["depth"] == network.depth) & (scans["width"] == network.width)]
        ax = axes[3 * row + 2]
        ax.plot(scan["exponent"], scan["spread"], color="k", marker="o", markersize=3)
        ax.axvline(1.0, color="tab:red", linestyle="--", linewidth=1.0, label="$\\alpha = 1$: clock c t")
        ax.axvline(0.0, color="0.5", linestyle=":", linewidth=1.0, label="$\\alpha = 0$: clock t")
        ax.set_xlabel("clock exponent $\\alpha$ (clock $c^\\alpha t$)")
        ax.set_ylabel("spread S of log $\\lambda_t/\\lambda_0$ across c")
        ax.set_title(
            f"best clock: $\\alpha$* = {network.best_exponent:.2f} (S = {network.best_spread:.3f})", fontsize=9
        )
        ax.legend(fontsize=7)
    fig.suptitle(
        "Intermediate saturation: is c t the clock? (dots: saturation step $\\tau_c$, "
        f"$\\lambda$ within {tolerance:.0%} over [$\\tau$, 2$\\tau$]; S = rms over the range of std$_c$ log $\\lambda_t/\\lambda_0$)",
        fontsize=9,
    )
    fig.tight_layout()
    return fig
