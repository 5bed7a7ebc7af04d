"""Figures 2 and 4: early trajectories and the early sharpness ratio, from a trajectory table.

A *trajectory table* is the long form of many ``earlyphase.core.Trajectory`` records: one row
per (run, step) with columns

    depth, width, d_over_w, c, eta, seed_init, seed_sgd, step, loss, sharpness

(``trajectory_table`` builds it from records; the committed figure data are stored in it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from earlyphase.compare.style import C_AXIS_LABEL, log2_c_axis, new_figure
from earlyphase.core import Trajectory

RUN_KEYS = ("depth", "width", "c", "seed_init", "seed_sgd")
TRAJECTORY_COLUMNS = ("depth", "width", "d_over_w", "c", "eta", "seed_init", "seed_sgd", "step", "loss", "sharpness")


def trajectory_table(trajectories: Iterable[Trajectory]) -> pd.DataFrame:
    """Long table of records; depth and width from ``config``, seeds from ``seeds`` (missing -> -1)."""
    frames = []
    for record in trajectories:
        depth, width = int(record.config["depth"]), int(record.config["width"])
        frames.append(
            pd.DataFrame(
                {
                    "depth": depth,
                    "width": width,
                    "d_over_w": depth / width,
                    "c": record.c,
                    "eta": record.eta,
                    "seed_init": int(record.seeds.get("init", -1)),
                    "seed_sgd": int(record.seeds.get("sgd", -1)),
                    "step": record.steps["step"].to_numpy(int),
                    "loss": record.loss,
                    "sharpness": record.sharpness,
                }
            )
        )
    if not frames:
        raise ValueError("no trajectories given")
    return pd.concat(frames, ignore_index=True)[list(TRAJECTORY_COLUMNS)]


def with_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Add loss_ratio = L_t / L_0 and sharpness_ratio = lambda_t / lambda_0 per run."""
    table = table.sort_values([*RUN_KEYS, "step"])
    first = table.groupby(list(RUN_KEYS))[["loss", "sharpness"]].transform("first")
    return table.assign(
        loss_ratio=table["loss"] / first["loss"], sharpness_ratio=table["sharpness"] / first["sharpness"]
    )


def final_sharpness_ratio(table: pd.DataFrame, step: int | None = None) -> pd.DataFrame:
    """lambda_T / lambda_0 per (depth, width, c), seed mean and std; T = last step (or ``step``).

    A run that diverged before T has no lambda_T and is left out of the mean.
    """
    table = with_ratios(table)
    final = int(table["step"].max()) if step is None else step
    at_t = table[table["step"] == final]
    grouped = at_t.groupby(["depth", "width", "d_over_w", "c"])["sharpness_ratio"]
    return grouped.agg(ratio="mean", std="std", runs="count").reset_index().dropna(subset=["ratio"])


def c_norm(c: np.ndarray) -> LogNorm:
    return LogNorm(vmin=float(np.min(c)), vmax=float(np.max(c)))


def early_trajectories_figure(table: pd.DataFrame, panels: Sequence[tuple[int, int]], cmap: str = "viridis") -> Figure:
    """Figure 2: L_t/L_0 (top) and lambda_t/lambda_0 (bottom) against step, one line per c, per (d, w).

    The first seed of each (d, w, c) is drawn; colour encodes c on a sequential map (colour bar).
    """
    table = with_ratios(table)
    norm, colormap = c_norm(table["c"].to_numpy(float)), plt.get_cmap(cmap)
    fig, axes = new_figure(columns=len(panels), rows=2, width=4.8, height=3.6, sharex=True)
    for column, (depth, width) in enumerate(panels):
        runs = table[(table["depth"] == depth) & (table["width"] == width)]
        if runs.empty:
            raise ValueError(f"no trajectories at depth {depth}, width {width}")
        first_seed = runs[(runs["seed_init"] == runs["seed_init"].min()) & (runs["seed_sgd"] == runs["seed_sgd"].min())]
        top, bottom = axes[column], axes[len(panels) + column]
        for c, run in first_seed.groupby("c"):
            color = colormap(norm(c))
            top.plot(run["step"], run["loss_ratio"], color=color, linewidth=1.2)
            bottom.plot(run["step"], run["sharpness_ratio"], color=color, linewidth=1.2)
        for ax in (top, bottom):
            ax.axhline(1.0, color="0.3", linestyle="--", linewidth=0.8)
        top.set_yscale("log")
        top.set_title(f"d = {depth}, w = {width}  (d/w = {depth / width:.3g})")
        top.set_ylabel("$L_t / L_0$ (log scale)")
        bottom.set_ylabel("$\\lambda^H_t / \\lambda^H_0$")
        bottom.set_xlabel("step t")
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=colormap)
    colorbar = fig.colorbar(mappable, ax=axes, fraction=0.03, pad=0.02)
    colorbar.set_label("$c = \\eta\\,\\lambda^H_0$")
    fig.suptitle("Early trajectories: loss and sharpness relative to initialisation, one line per learning rate c")
    return fig


def plot_ratio_per_network(ax: Axes, ratios: pd.DataFrame, cmap: str = "plasma") -> Axes:
    """``ratio`` (+- ``std``) against c, one line per (d, w), coloured by d/w in ascending order."""
    keys = ratios[["depth", "width", "d_over_w"]].drop_duplicates().sort_values("d_over_w")
    colormap = plt.get_cmap(cmap)
    for index, (depth, width, d_over_w) in enumerate(keys.itertuples(index=False)):
        rows = ratios[(ratios["depth"] == depth) & (ratios["width"] == width)].sort_values("c")
        ax.errorbar(
            rows["c"],
            rows["ratio"],
            yerr=rows["std"].fillna(0.0),
            marker="o",
            markersize=3,
            capsize=2,
            color=colormap(index / max(len(keys) - 1, 1) * 0.85),
            label=f"d/w = {d_over_w:.3g} (d = {depth}, w = {width})",
        )
    return ax


def sharpness_ratio_figure(table: pd.DataFrame, cmap: str = "plasma") -> Figure:
    """Figure 4: lambda_T / lambda_0 against c, one line per (d, w) coloured by d/w (seed mean +- std)."""
    ratios = final_sharpness_ratio(table)
    final = int(table["step"].max())
    fig, axes = new_figure(width=7.0, height=4.8)
    ax = axes[0]
    plot_ratio_per_network(ax, ratios, cmap)
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=0.8, label="$\\lambda^H_T = \\lambda^H_0$")
    for value in (2.0, 4.0):
        ax.axvline(value, color="0.5", linestyle=":", linewidth=0.8)
    log2_c_axis(ax, axis="x")
    ax.set_yscale("log")
    ax.set_xlabel(C_AXIS_LABEL)
    ax.set_ylabel(f"$\\lambda^H_T / \\lambda^H_0$ at T = {final} (log scale)")
    ax.set_title("Early sharpness change after T steps, per d/w (dotted: c = 2, 4)")
    ax.legend(fontsize=8)
    return fig
