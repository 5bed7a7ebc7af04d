"""Shared figure conventions: colours and labels of boundaries and phases, the c axis, saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from earlyphase.core.validate import ConfigError  # noqa: E402

BOUNDARY_COLORS = {"c_loss": "tab:blue", "c_sharp": "tab:orange", "c_max": "tab:red", "c_barrier": "tab:purple"}
BOUNDARY_LABELS = {
    "c_loss": "$c_{loss}$ (loss catapults)",
    "c_sharp": "$c_{sharp}$ (sharpness catapults)",
    "c_max": "$c_{max}$ (last trainable c)",
    "c_barrier": "$c_{barrier}$ (loss barrier on $\\theta_0\\to\\theta_T$)",
}
BOUNDARY_MARKERS = {"c_loss": "o", "c_sharp": "s", "c_max": "^", "c_barrier": "D"}
THEORY_STYLES = {"uv": ":", "linear": "-.", "deep_linear": "-."}
THEORY_LABELS = {"uv": "uv model", "linear": "deep linear net", "deep_linear": "deep linear net"}
SAVE_FORMATS = (".png", ".svg", ".pdf")
C_AXIS_LABEL = "$c = \\eta\\,\\lambda^H_0$ (log$_2$ scale)"


def new_figure(
    columns: int = 1, rows: int = 1, width: float = 6.4, height: float = 4.8, **kwargs
) -> tuple[Figure, list]:
    """A figure with a rows x columns grid of axes (flattened list), sized per panel."""
    fig, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows), squeeze=False, **kwargs)
    return fig, list(axes.ravel())


def log2_c_axis(ax: Axes, axis: str = "y") -> None:
    """A base-2 logarithmic c axis with plain-number tick labels (1, 2, 4, 8, ...)."""
    setter = ax.set_yscale if axis == "y" else ax.set_xscale
    setter("log", base=2)
    formatter = FuncFormatter(lambda value, _: f"{value:g}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(formatter)


def reference_lines(ax: Axes, values: tuple[float, ...] = (2.0, 4.0), axis: str = "y") -> None:
    """Dashed grey lines at c = 2 (NTK-scale / lazy bound) and c = 4 (uv-model c_max at w -> inf)."""
    labels = {2.0: "c = 2: NTK-scale divergence, lazy $c_{loss}$", 4.0: "c = 4: uv-model $c_{max}$ ($w\\to\\infty$)"}
    draw = ax.axhline if axis == "y" else ax.axvline
    for value, color in zip(values, ("0.35", "0.6")):
        draw(value, color=color, linestyle="--", linewidth=1.2, label=labels.get(value, f"c = {value:g}"), zorder=1)


def figure_path(path: str | Path) -> Path:
    """``path`` as a Path if it ends in .png, .svg or .pdf, else ConfigError."""
    path = Path(path)
    if path.suffix.lower() not in SAVE_FORMATS:
        raise ConfigError(f"figure file must end in one of {list(SAVE_FORMATS)}, got {path.name!r}", "path")
    return path


def save_figure(fig: Figure, path: str | Path, dpi: int = 130) -> Path:
    """Write ``fig`` as PNG, SVG or PDF by the suffix of ``path``; close it; return the path."""
    path = figure_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path
