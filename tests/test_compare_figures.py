"""Figures are produced and hold the expected elements (inspected as matplotlib objects)."""

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.patches import Rectangle
from PIL import Image

from earlyphase.compare.long_run import long_run_figure, regimes_figure, sharpness_at_tau
from earlyphase.compare.phase_diagram import PHASES, phase_diagram_figure
from earlyphase.compare.regimes import detect_regimes
from earlyphase.compare.style import BOUNDARY_LABELS, save_figure
from earlyphase.compare.tables import summaries_to_table
from earlyphase.compare.trajectories import (
    early_trajectories_figure,
    final_sharpness_ratio,
    sharpness_ratio_figure,
    trajectory_table,
)
from earlyphase.core import CRITICAL_NAMES, SeedSummary, Trajectory

PAIRS = [(2, 256), (2, 64), (4, 128), (2, 16), (8, 64), (4, 16)]


def measured_table():
    def summary(value):
        return SeedSummary(value, 0.1 * value, value / 1.07, value, 3, 3)

    values = {
        p: {
            "c_loss": 2 + 20 * p[0] / p[1],
            "c_sharp": 3 + 30 * p[0] / p[1],
            "c_max": 12.0,
            "c_barrier": 3 + 25 * p[0] / p[1],
        }
        for p in PAIRS
    }
    return summaries_to_table(
        {p: {n: summary(v) for n, v in by.items()} for p, by in values.items()}, "measured", "fcn"
    )


def theory_table():
    values = {
        p: {"c_loss": 2 + 5 * p[0] / p[1], "c_sharp": 2.5 + 8 * p[0] / p[1], "c_max": 4.0 + p[0] / p[1]} for p in PAIRS
    }
    return summaries_to_table(
        {p: {n: SeedSummary(v, 0.0, v, v, 4, 4) for n, v in by.items()} for p, by in values.items()}, "linear"
    )


def test_phase_diagram_elements(tmp_path):
    measured, theory = measured_table(), theory_table()
    fig = phase_diagram_figure(measured, [theory], width_panel_depth=2)
    d_over_w_ax, width_ax = fig.axes
    for ax in (d_over_w_ax, width_ax):
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        assert ax.yaxis.get_transform().base == 2
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert [b.get_label() for b in bands] == [f"phase: {name}" for name, _ in PHASES]
        errorbars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert [c.get_label() for c in errorbars] == [f"measured {BOUNDARY_LABELS[n]}" for n in CRITICAL_NAMES]
        horizontal = {
            line.get_ydata()[0] for line in ax.lines if len(set(line.get_ydata())) == 1 and line.get_linestyle() == "--"
        }
        assert {2.0, 4.0} <= horizontal
        assert "c = " in ax.get_ylabel() or "eta" in ax.get_ylabel()
    # measured markers sit at d/w and the seed means
    c_loss_bar = [c for c in d_over_w_ax.containers if "c_{loss}" in c.get_label()][0]
    x, y = c_loss_bar.lines[0].get_data()
    rows = measured[measured["boundary"] == "c_loss"].sort_values("d_over_w")
    assert np.allclose(x, rows["d_over_w"]) and np.allclose(y, rows["mean"])
    # one theory curve per predicted boundary, at the theory's values (pairs at equal d/w averaged)
    theory_lines = [line for line in d_over_w_ax.lines if line.get_linestyle() == "-."]
    assert len(theory_lines) == 3
    c_max_line = [line for line in theory_lines if line.get_label().endswith("c_max")][0]
    expected = theory[theory["boundary"] == "c_max"].groupby("d_over_w")["mean"].mean()
    assert np.allclose(c_max_line.get_xdata(), expected.index) and np.allclose(c_max_line.get_ydata(), expected)
    # the 1/w panel shows depth 2 only
    c_loss_width = [c for c in width_ax.containers if "c_{loss}" in c.get_label()][0]
    assert np.allclose(sorted(c_loss_width.lines[0].get_xdata()), sorted(1 / w for d, w in PAIRS if d == 2))
    # the loss-catapult band lies between the measured c_loss and c_sharp curves
    band = [c for c in d_over_w_ax.collections if c.get_label() == "phase: loss catapult"][0]
    heights = set(np.round(band.get_paths()[0].vertices[:, 1], 9))
    for name in ("c_loss", "c_sharp"):
        assert set(np.round(measured[measured["boundary"] == name].groupby("d_over_w")["mean"].mean(), 9)) <= heights
    # two depths share d/w = 1/32: markers only on the d/w panel, lines on the single-depth 1/w panel
    assert c_loss_bar.lines[0].get_linestyle() == "None" and c_loss_width.lines[0].get_linestyle() == "-"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("deep linear" in label for label in labels) and "phase: divergent" in labels
    path = save_figure(fig, tmp_path / "phase.png")
    assert Image.open(path).size[0] > 800


def early_records():
    records = []
    for depth, width in [(2, 256), (8, 32)]:
        for c in 2.0 ** np.arange(0.0, 3.01, 0.5):
            t = np.arange(11)
            loss = np.exp(-0.3 * t) * (1 + max(c - 2, 0) * np.sin(t / 3))
            sharpness = 1.0 + 0.1 * (c - 2) * np.sin(t / 4) - (depth / width) * t / 10
            records.append(
                Trajectory.from_arrays(
                    c,
                    c,
                    loss,
                    "mse",
                    sharpness=sharpness,
                    config={"depth": depth, "width": width},
                    seeds={"init": 0, "sgd": 1},
                )
            )
    return records


def test_early_trajectory_and_ratio_figures(tmp_path):
    records = early_records()
    table = trajectory_table(records)
    assert len(table) == 11 * len(records)
    fig = early_trajectories_figure(table, [(2, 256), (8, 32)])
    assert len(fig.axes) == 5  # 2 x 2 panels and the colour bar
    colorbar = fig.axes[-1]
    assert "c" in colorbar.get_ylabel()
    for ax in fig.axes[:4]:
        lines = [line for line in ax.lines if line.get_linestyle() == "-"]
        assert len(lines) == 7  # one per c
        assert lines[0].get_color() != lines[-1].get_color()
    save_figure(fig, tmp_path / "early.svg")
    assert (tmp_path / "early.svg").read_text().startswith("<?xml")

    ratios = final_sharpness_ratio(table)
    for record in records:
        row = ratios[(ratios["width"] == record.config["width"]) & np.isclose(ratios["c"], record.c)].iloc[0]
        assert row["ratio"] == pytest.approx(record.sharpness[-1] / record.sharpness[0])
    fig = sharpness_ratio_figure(table)
    bars = [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2 and all("d/w" in bar.get_label() for bar in bars)
    assert fig.axes[0].xaxis.get_transform().base == 2
    save_figure(fig, tmp_path / "ratio.pdf")
    assert (tmp_path / "ratio.pdf").read_bytes()[:4] == b"%PDF"


def long_run_table():
    rows = []
    steps = np.arange(0, 3001)
    for depth, width in [(2, 256), (8, 32)]:
        for c in (1.0, 2.0, 4.0):
            eta = c / 4.0
            lam = np.maximum(4.0 + 0.2 * (30 - steps), 4.0)
            lam = np.where(steps < 300, lam, np.minimum(4.0 * np.exp((steps - 300) / 600), 2 / eta))
            rows.append(
                pd.DataFrame(
                    {
                        "depth": depth,
                        "width": width,
                        "d_over_w": depth / width,
                        "c": c,
                        "eta": eta,
                        "seed_init": 0,
                        "seed_sgd": 0,
                        "step": steps,
                        "loss": 1.0,
                        "sharpness": lam,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def test_sharpness_at_tau_reads_the_nearest_step():
    table = long_run_table()
    at_tau = sharpness_at_tau(table, k=200)
    assert len(at_tau) == 6
    row = at_tau[(at_tau["width"] == 256) & (at_tau["c"] == 4.0)].iloc[0]  # tau = 50: on the plateau at 4.0
    first = 4.0 + 0.2 * 30
    assert row["tau"] == 50 and row["ratio"] == pytest.approx(4.0 / first)


def test_long_run_figure_marks_every_detected_regime(tmp_path):
    table = long_run_table()
    run = table[(table["width"] == 256) & (table["c"] == 1.0)]
    fig = long_run_figure(run, table, k=200)
    regimes_ax, saturation_ax = fig.axes[:2]
    regimes = detect_regimes(run["step"], run["sharpness"], eta=0.25)
    spans = [p for p in regimes_ax.patches if isinstance(p, Rectangle)]
    assert len(spans) == sum(span is not None for _, span in regimes.items()) == 4
    assert any(np.allclose(line.get_ydata(), 2 / 0.25) for line in regimes_ax.lines)
    assert len([c for c in saturation_ax.containers if isinstance(c, ErrorbarContainer)]) == 2
    save_figure(fig, tmp_path / "long.png")
    with pytest.raises(ValueError, match="exactly one run"):
        long_run_figure(table, table, k=200)


def test_regimes_figure_shades_the_same_regimes_on_both_panels(tmp_path):
    table = long_run_table()
    run = table[(table["width"] == 256) & (table["c"] == 1.0)]
    fig = regimes_figure(run, run_label="(synthetic)")
    regimes = detect_regimes(run["step"], run["sharpness"], eta=0.25)
    present = [span for _, span in regimes.items() if span is not None]
    for ax in fig.axes[:2]:
        spans = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert len(spans) == len(present) == 4
    assert "edge of stability: steps" in fig._suptitle.get_text()
    save_figure(fig, tmp_path / "regimes.png")
    with pytest.raises(ValueError, match="exactly one run"):
        regimes_figure(table)


def test_save_figure_rejects_unknown_suffix(tmp_path):
    fig = sharpness_ratio_figure(trajectory_table(early_records()))
    with pytest.raises(ValueError, match="png"):
        save_figure(fig, tmp_path / "figure.jpg")


def test_boundary_above_the_scanned_range_is_marked_at_the_top():
    measured = measured_table()
    above = (measured["boundary"] == "c_max") & (measured["width"] == 256)
    measured.loc[above, ["mean", "std", "high", "found"]] = [np.nan, np.nan, np.nan, 0]
    measured.loc[above, "low"] = 64.0
    ax = phase_diagram_figure(measured).axes[0]
    marks = [line for line in ax.lines if line.get_label() == "c_max above the scanned c range"]
    assert len(marks) == 1 and marks[0].get_marker() == "^"
    assert np.allclose(marks[0].get_xdata(), [2 / 256]) and marks[0].get_ydata()[0] > measured["mean"].max()
