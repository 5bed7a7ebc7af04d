"""Figure 1: the early-training phase diagram, measured boundaries with theory overlaid.

c (log2 axis) against d/w (log axis), or against 1/w at one depth. The measured c_loss,
c_sharp, c_max, c_barrier of each (d, w) are drawn at their censored seed median (over all
seeds, "not found above the scanned range" counted as +inf: ``earlyphase.core.SeedSummary``),
with the seed std of the found estimates as error bars (joined by lines where each x holds
one (d, w)); a hollow triangle at the top (bottom) marks a median above (below) the scanned c
range, and a black ring a point with fewer seeds than its sweep's spec (column
``expected_seeds``). The phases between the measured medians are shaded:

    c < c_loss                lazy / sharpness reduction (the loss falls monotonically)
    c_loss < c < c_sharp      loss catapult
    c_sharp < c < c_max       loss and sharpness catapult
    c > c_max                 divergent

(a boundary not found in the scanned range is clipped to c_max for the shading). Theory
predictions (boundary tables of the uv model or deep linear nets at the same d and w) are
curves in the colour of their boundary (pairs at equal x averaged); dashed lines mark c = 2 (the NTK-scale prediction:
lazy below, divergent above) and c = 4 (the uv model's c_max as w -> infinity). Control sweeps
(``earlyphase.compare.controls``, e.g. the zero readout) are drawn unshaded over the main
measurement: hollow markers at their censored seed medians joined by dotted lines, labelled with
the settings they change.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from earlyphase.compare.controls import Control
from earlyphase.compare.style import (
    BOUNDARY_COLORS,
    BOUNDARY_LABELS,
    BOUNDARY_MARKERS,
    C_AXIS_LABEL,
    THEORY_LABELS,
    THEORY_STYLES,
    log2_c_axis,
    new_figure,
    reference_lines,
)
from earlyphase.core import CRITICAL_NAMES
from earlyphase.core.validate import ConfigError

PHASES = (
    ("lazy / sharpness reduction", "#d9ead3"),
    ("loss catapult", "#fff2cc"),
    ("loss and sharpness catapult", "#cfe2f3"),
    ("divergent", "#f4cccc"),
)
CONTROL_STYLES = (":", (0, (5, 2, 1, 2)), (0, (1, 3)))
"""Line styles of the first, second, third control sweep (then repeated)."""
X_AXES = {"d_over_w": "depth / width  $d/w$  (log scale)", "inverse_width": "1 / width  $1/w$  (log scale)"}


def x_values(table: pd.DataFrame, x: str) -> np.ndarray:
    """The horizontal coordinate of each row: d/w, or 1/w."""
    if x == "d_over_w":
        return table["d_over_w"].to_numpy(float)
    if x == "inverse_width":
        return 1.0 / table["width"].to_numpy(float)
    raise ConfigError(f"x must be one of {sorted(X_AXES)}, got {x!r}", "x")


def centre(table: pd.DataFrame) -> pd.Series:
    """The value a boundary is drawn at: the censored seed median (+-inf outside the scanned range);
    where a row has no median (a table written without medians, e.g. a stored theory table), the
    seed mean, or +inf when its bracket is open above (not found above the scanned range)."""
    value = table["median"].fillna(table["mean"]) if "median" in table.columns else table["mean"]
    return value.mask(value.isna() & table["low"].notna() & table["high"].isna(), np.inf)


def boundary_curves(table: pd.DataFrame, x: str) -> pd.DataFrame:
    """Boundary values (``centre``) per x value (pairs sharing x averaged), one column per boundary, sorted by x."""
    frame = table.assign(x=x_values(table, x), value=centre(table))
    return frame.pivot_table(index="x", columns="boundary", values="value", aggfunc="mean").sort_index()


def shade_phases(ax: Axes, measured: pd.DataFrame, x: str, c_top: float, c_bottom: float) -> None:
    """Fill the four phase bands between the measured c_loss, c_sharp and c_max (labelled for the legend)."""
    curves = boundary_curves(measured, x).reindex(columns=list(CRITICAL_NAMES))
    xs = curves.index.to_numpy(float)
    if xs.size == 1:  # one column of points: give the band a visible width
        xs = np.array([xs[0] / 1.3, xs[0] * 1.3])
        curves = pd.concat([curves, curves])
    curves = curves.clip(lower=c_bottom, upper=c_top)  # medians outside the scanned range: at the edges
    top = curves["c_max"].fillna(c_top).to_numpy(float)
    loss = np.fmin(curves["c_loss"].fillna(c_top).to_numpy(float), top)
    sharp = np.clip(curves["c_sharp"].fillna(c_top).to_numpy(float), loss, top)
    bands = ((np.full_like(loss, c_bottom), loss), (loss, sharp), (sharp, top), (top, np.full_like(top, c_top)))
    for (label, color), (lower, upper) in zip(PHASES, bands):
        ax.fill_between(xs, lower, upper, color=color, linewidth=0, label=f"phase: {label}", zorder=0)


def plot_phase_diagram(
    ax: Axes,
    measured: pd.DataFrame,
    theories: Sequence[pd.DataFrame] = (),
    x: str = "d_over_w",
    depth: int | None = None,
    boundaries: Sequence[str] = CRITICAL_NAMES,
    controls: Sequence[Control] = (),
) -> Axes:
    """Draw one phase-diagram panel on ``ax`` (module docstring); ``depth`` filters all tables."""
    if depth is not None:
        measured = measured[measured["depth"] == depth]
        theories = [t[t["depth"] == depth] for t in theories]
        controls = [Control(c.label, c.measured[c.measured["depth"] == depth]) for c in controls]
    if measured.empty:
        raise ConfigError(
            "no measured critical values to draw" + ("" if depth is None else f" at depth {depth}"), "results_dir"
        )
    values = (
        pd.concat(
            [
                centre(measured),
                *(t["mean"] for t in theories),
                *(centre(c.measured) for c in controls if not c.measured.empty),
            ]
        )
        .replace([np.inf, -np.inf], np.nan)
        .dropna()
    )
    if values.empty:
        values = pd.Series([1.0, 8.0])
    c_bottom = min(1.0, float(values.min()) / 1.2)
    c_top = max(8.0, float(values.max()) * 1.6)
    shade_phases(ax, measured, x, c_top, c_bottom)
    one_curve = x == "inverse_width" or measured["d_over_w"].nunique() == len(
        measured.drop_duplicates(["depth", "width"])
    )
    for name in boundaries:
        rows = measured[measured["boundary"] == name].assign(x=lambda f: x_values(f, x), value=centre).sort_values("x")
        found = rows[np.isfinite(rows["value"].to_numpy(float))]
        if not found.empty:
            ax.errorbar(
                found["x"],
                found["value"],
                yerr=found["std"].fillna(0.0),
                color=BOUNDARY_COLORS[name],
                marker=BOUNDARY_MARKERS[name],
                markersize=8 if name == "c_barrier" else 6,
                markerfacecolor="none" if name == "c_barrier" else BOUNDARY_COLORS[name],
                linestyle="-" if one_curve else "none",
                linewidth=0.8,
                capsize=3,
                label=f"measured {BOUNDARY_LABELS[name]}",
                zorder=4,
            )
        for side, marker, level in (("above", "^", c_top / 1.12), ("below", "v", c_bottom * 1.12)):
            outside = rows[rows["value"] == (np.inf if side == "above" else -np.inf)]
            if not outside.empty:
                ax.plot(
                    outside["x"],
                    np.full(len(outside), level),
                    linestyle="none",
                    marker=marker,
                    markersize=9,
                    markerfacecolor="none",
                    color=BOUNDARY_COLORS[name],
                    label=f"{name} {side} the scanned c range",
                    zorder=4,
                )
        if "expected_seeds" in rows.columns:
            short = found[found["seeds"] < found["expected_seeds"]]
            if not short.empty:
                ax.plot(
                    short["x"],
                    short["value"],
                    linestyle="none",
                    marker="o",
                    markersize=13,
                    markerfacecolor="none",
                    color="black",
                    label="fewer seeds than the sweep's spec",
                    zorder=5,
                )
    for control, style in zip(controls, CONTROL_STYLES * len(controls)):
        plot_control(ax, control, x, boundaries, style)
    for theory in theories:
        for source, rows_of_source in theory.groupby("source", sort=False):
            for name in boundaries:
                rows = rows_of_source[rows_of_source["boundary"] == name].dropna(subset=["mean"])
                rows = rows.assign(x=x_values(rows, x)).groupby("x")["mean"].mean().sort_index()
                if rows.empty:
                    continue
                ax.plot(
                    rows.index,
                    rows.to_numpy(),
                    color=BOUNDARY_COLORS[name],
                    linestyle=THEORY_STYLES.get(source, "--"),
                    linewidth=2.0,
                    marker="x" if rows.size == 1 else None,
                    label=f"{THEORY_LABELS.get(source, source)}: {name}",
                    zorder=3,
                )
    reference_lines(ax)
    ax.set_xscale("log")
    log2_c_axis(ax)
    ax.set_ylim(c_bottom, c_top)
    ax.set_xlabel(X_AXES[x])
    ax.set_ylabel(C_AXIS_LABEL)
    return ax


def plot_control(ax: Axes, control: Control, x: str, boundaries: Sequence[str], linestyle: object) -> None:
    """A control sweep's found boundaries: hollow markers at their censored seed medians, joined
    in x order by ``linestyle`` (pairs sharing x averaged), no error bars, no shading."""
    curves = boundary_curves(control.measured, x) if not control.measured.empty else pd.DataFrame()
    for name in boundaries:
        if name not in curves.columns:
            continue
        found = curves[name][np.isfinite(curves[name].to_numpy(float))]
        if found.empty:
            continue
        ax.plot(
            found.index,
            found.to_numpy(float),
            color=BOUNDARY_COLORS[name],
            marker=BOUNDARY_MARKERS[name],
            markersize=7,
            markerfacecolor="white",
            linestyle=linestyle,
            linewidth=1.4,
            label=f"{control.label}: {BOUNDARY_LABELS[name]}",
            zorder=4,
        )


def phase_diagram_figure(
    measured: pd.DataFrame,
    theories: Sequence[pd.DataFrame] = (),
    width_panel_depth: int | None = None,
    title: str = "Early-training phase diagram",
    controls: Sequence[Control] = (),
) -> Figure:
    """Figure 1: c against d/w, and (when ``width_panel_depth`` is given) c against 1/w at that
    depth; ``controls`` drawn over both panels."""
    panels = 1 if width_panel_depth is None else 2
    fig, axes = new_figure(columns=panels, width=7.6, height=5.0)
    plot_phase_diagram(axes[0], measured, theories, x="d_over_w", controls=controls)
    axes[0].set_title("c against d/w (all depths)")
    if width_panel_depth is not None:
        plot_phase_diagram(axes[1], measured, theories, x="inverse_width", depth=width_panel_depth, controls=controls)
        axes[1].set_title(f"c against 1/w at depth d = {width_panel_depth}")
    handles: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(
        handles.values(), handles.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False
    )
    theory_names = ", ".join(THEORY_LABELS.get(s, s) for t in theories for s in t["source"].unique())
    overlay = f" — lines: {theory_names} at the same (d, w)" if theory_names else ""
    if controls:
        overlay += "; hollow markers, dotted: control sweeps (" + "; ".join(c.label for c in controls) + ")"
    fig.suptitle(f"{title}: markers = measured seed median (censored) ± std{overlay}", fontsize=11)
    fig.tight_layout()
    return fig
