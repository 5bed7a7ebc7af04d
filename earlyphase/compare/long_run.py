"""Figure 3: the sharpness over a long run, its four regimes, and the saturation level.

Left: lambda_t against step (log axis) with the stability line 2/eta and the regimes of
``earlyphase.compare.regimes.detect_regimes`` shaded. Right: the intermediate-saturation
level lambda_tau / lambda_0 at the step tau = K / c (docs/PROTOCOL.md section 4) against c, one
line per d/w, with the curve 2/c where lambda = 2/eta. ``regimes_figure``: the regimes of one
long run alone, lambda_t and the loss L_t side by side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from earlyphase.compare.regimes import DEFAULT_EOS_FRACTION, REGIME_LABELS, Regimes, detect_regimes
from earlyphase.compare.style import C_AXIS_LABEL, log2_c_axis, new_figure
from earlyphase.compare.trajectories import plot_ratio_per_network, with_ratios

REGIME_COLORS = {
    "early_transient": "#cfe2f3",
    "intermediate_saturation": "#d9ead3",
    "progressive_sharpening": "#fff2cc",
    "edge_of_stability": "#f4cccc",
}


def sharpness_at_tau(table: pd.DataFrame, k: float) -> pd.DataFrame:
    """lambda_tau / lambda_0 per (depth, width, c) at the measured step nearest tau = K / c (seed mean).

    Runs that diverged (no finite sharpness at tau) are left out; tau beyond the last
    measured step gives no value.
    """
    rows = []
    for (depth, width, c), run in with_ratios(table).groupby(["depth", "width", "c"]):
        measured = run.dropna(subset=["sharpness_ratio"])
        tau = k / c
        if measured.empty or tau > measured["step"].max():
            continue
        nearest = measured.loc[
            (measured["step"] - tau).abs().groupby([measured["seed_init"], measured["seed_sgd"]]).idxmin()
        ]
        rows.append(
            {
                "depth": depth,
                "width": width,
                "d_over_w": depth / width,
                "c": c,
                "tau": tau,
                "ratio": nearest["sharpness_ratio"].mean(),
                "std": nearest["sharpness_ratio"].std(),
            }
        )
    return pd.DataFrame(rows, columns=["depth", "width", "d_over_w", "c", "tau", "ratio", "std"])


def plot_regimes(ax: Axes, step: np.ndarray, sharpness: np.ndarray, eta: float, regimes: Regimes) -> Axes:
    """lambda_t against step with 2/eta, lambda_0 and the regime spans (steps >= 1 on a log axis)."""
    shown = (step >= 1) & np.isfinite(sharpness)
    ax.plot(step[shown], sharpness[shown], color="k", linewidth=1.0, label="$\\lambda^H_t$")
    ax.axhline(2.0 / eta, color="tab:red", linestyle="--", linewidth=1.2, label="$2/\\eta$")
    ax.axhline(sharpness[np.isfinite(sharpness)][0], color="0.4", linestyle=":", linewidth=1.0, label="$\\lambda^H_0$")
    shade_regimes(ax, regimes)
    ax.set_xscale("log")
    ax.set_xlabel("step t (log scale)")
    ax.set_ylabel("sharpness $\\lambda^H_t$")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def shade_regimes(ax: Axes, regimes: Regimes, labels: bool = True) -> Axes:
    """Shade each present regime's step span (from step 1, for a log axis), labelled for a legend."""
    for name, span in regimes.items():
        if span is not None:
            label = REGIME_LABELS[name] if labels else None
            ax.axvspan(max(span[0], 1), span[1], color=REGIME_COLORS[name], alpha=0.8, label=label, zorder=0)
    return ax


def regimes_figure(run: pd.DataFrame, eos_fraction: float = DEFAULT_EOS_FRACTION, run_label: str = "") -> Figure:
    """The regimes of one long ``run`` (a trajectory table of one run): lambda_t with 2/eta (left)
    and the loss L_t (right, log scales), both shaded by ``detect_regimes``'s step ranges."""
    fig, axes = new_figure(columns=2, width=6.4, height=4.6)
    run, regimes = _regimes_panel(axes[0], run, eos_fraction, "Sharpness", run_label)
    step, loss = run["step"].to_numpy(float), run["loss"].to_numpy(float)
    shown = (step >= 1) & np.isfinite(loss)
    axes[1].plot(step[shown], loss[shown], color="k", linewidth=1.0)
    shade_regimes(axes[1], regimes, labels=False)
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("step t (log scale)")
    axes[1].set_ylabel("loss $L_t$ (log scale)")
    axes[1].set_title("Loss on the evaluation set")
    fig.suptitle("Four regimes of a long run: " + regimes.describe(), fontsize=9)
    fig.tight_layout()
    return fig


def _regimes_panel(
    ax: Axes, run: pd.DataFrame, eos_fraction: float, title: str, run_label: str
) -> tuple[pd.DataFrame, Regimes]:
    """``plot_regimes`` of one long run on ``ax``, titled; (the run sorted by step, its regimes)."""
    depth, width, c, eta = _single_run(run)
    run = run.sort_values("step")
    step, sharpness = run["step"].to_numpy(float), run["sharpness"].to_numpy(float)
    regimes = detect_regimes(step, sharpness, eta, eos_fraction=eos_fraction)
    plot_regimes(ax, step, sharpness, eta, regimes)
    ax.set_title(f"{title}: d = {depth}, w = {width}, c = {c:.3g} {run_label}".strip())
    return run, regimes


def _single_run(run: pd.DataFrame) -> tuple[int, int, float, float]:
    """(depth, width, c, eta) of a trajectory table that holds exactly one run."""
    keys = run[["depth", "width", "c", "eta", "seed_init", "seed_sgd"]].drop_duplicates()
    if len(keys) != 1:
        raise ValueError(f"run must hold exactly one run, got {len(keys)}")
    row = keys.iloc[0]
    return int(row["depth"]), int(row["width"]), float(row["c"]), float(row["eta"])


def long_run_figure(
    run: pd.DataFrame,
    saturation_runs: pd.DataFrame,
    k: float,
    eos_fraction: float = DEFAULT_EOS_FRACTION,
    run_label: str = "",
    saturation_label: str = "",
) -> Figure:
    """Figure 3: the regimes of one long ``run`` (a trajectory table of one run) and, from
    ``saturation_runs`` (many c and d/w), lambda_tau / lambda_0 at tau = K / c against c.
    The labels (e.g. the activation and optimiser) are appended to the panel titles."""
    fig, axes = new_figure(columns=2, width=6.4, height=4.6)
    _regimes_panel(axes[0], run, eos_fraction, "Sharpness regimes", run_label)
    plot_saturation(axes[1], sharpness_at_tau(saturation_runs, k), k)
    axes[1].set_title(f"{axes[1].get_title()} {saturation_label}".strip())
    fig.suptitle("Long-run sharpness: early transient, saturation, progressive sharpening, edge of stability")
    fig.tight_layout()
    return fig


def plot_saturation(ax: Axes, at_tau: pd.DataFrame, k: float, cmap: str = "plasma") -> Axes:
    """lambda_tau / lambda_0 against c, one line per (d, w), and the curve 2/c (lambda = 2/eta)."""
    plot_ratio_per_network(ax, at_tau, cmap)
    if at_tau.empty:
        ax.text(0.5, 0.5, f"no run reaches tau = K/c = {k:g}/c", transform=ax.transAxes, ha="center")
    else:
        c = np.geomspace(at_tau["c"].min(), at_tau["c"].max(), 50)
        ax.plot(c, 2.0 / c, color="tab:red", linestyle="--", linewidth=1.0, label="$2/c$  ($\\lambda^H = 2/\\eta$)")
        ax.legend(fontsize=8)
    log2_c_axis(ax, axis="x")
    ax.set_yscale("log")
    ax.set_xlabel(C_AXIS_LABEL)
    ax.set_ylabel("$\\lambda^H_\\tau / \\lambda^H_0$ at $\\tau = K/c$ (log scale)")
    ax.set_title(f"Intermediate saturation level, K = {k:g}")
    return ax
