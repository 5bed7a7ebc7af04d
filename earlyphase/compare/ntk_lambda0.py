"""The infinite-width NTK's lambda_H0 against the measured one (docs/PROTOCOL.md sections 1, 5 and 7).

For a fully connected network of depth d and width w in standard parameterisation without
biases (``earlyphase.empirical.models``: hidden layers with sigma_w^2, readout variance 1/fan_in),
on the measurement batch X (n examples, per-sample standardised, flattened; k outputs) and the
MSE L = |f - y|^2 / (2 n k), ``earlyphase.theory.ntk.predicted_sharpness0`` gives

    lambda_H0 ~ lambda_max(Theta_w) / (n k),   Theta_w = sum_l (fan_in_l / sigma_l^2) Theta^(l),

the top eigenvalue of the Gauss-Newton part J^T J / (n k) with the kernel at its infinite-width
value (leading order in w; it grows like w, fan_in_1 = d_in, the others w). The measured
lambda_H0 adds what this leaves out: the kernel's finite-width fluctuations (relative size
~ sqrt(d / w), and the top eigenvalue of a noisy kernel is biased upwards) and the Hessian's
residual term sum_ia r_ia grad^2 f_ia / (n k), O(d / w) relative. So the ratio measured /
predicted should approach 1 as w grows at fixed d, and deviate most at large d / w.

``predicted_edge`` is the first finite-width correction of the kernel
(``earlyphase.theory.ntk.predicted_sharpness0_readout_edge``): with k outputs the infinite-width
top eigenvalue is k-fold degenerate, and a finite readout splits it; the top one gains the
Marchenko-Pastur edge (1 + sqrt(k / w))^2 on every layer below the readout.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from earlyphase.core.validate import require_int
from earlyphase.empirical.data.dataset import Dataset
from earlyphase.theory.ntk import (
    predicted_sharpness0,
    predicted_sharpness0_readout_edge,
)

NTK_LAMBDA0_COLUMNS = (
    "depth",
    "width",
    "d_over_w",
    "predicted",
    "predicted_edge",
    "measured_mean",
    "measured_std",
    "seeds",
    "ratio",
    "ratio_edge",
)


def measurement_inputs(dataset: Dataset) -> np.ndarray:
    """The measurement batch's inputs as the (n x d_in) float64 matrix the kernel recursion takes."""
    x = dataset.x_measure
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1)


def predicted_lambda0(
    x: np.ndarray, outputs: int, depth: int, width: int, activation: str = "relu", sigma_w2: float | None = None
) -> float:
    """lambda_max(Theta_w) / (n k) of a depth-d, width-w FCN in standard parameterisation (readout
    variance 1) on inputs x (module docstring)."""
    return predicted_sharpness0(
        x,
        outputs,
        require_int("depth", depth, 1),
        activation,
        "standard",
        sigma_w2,
        1.0,
        require_int("width", width, 1),
    )


def ntk_lambda0_table(
    per_seed: pd.DataFrame, x: np.ndarray, outputs: int, activation: str = "relu", sigma_w2: float | None = None
) -> pd.DataFrame:
    """Per (d, w) of a per-seed table (columns depth, width, lambda0; FCN rows only where it has an
    ``arch`` column): the predicted lambda_H0, the measured seed mean and std (ddof = 0), the
    number of seeds, ratio = measured mean / predicted; the same for the readout-edge correction
    (``predicted_edge``, ``ratio_edge``); sorted by d, then w."""
    for column in ("depth", "width", "lambda0"):
        if column not in per_seed.columns:
            raise ValueError(f"per-seed table needs a {column!r} column to compare lambda_H0")
    rows = per_seed if "arch" not in per_seed.columns else per_seed[per_seed["arch"] == "fcn"]
    table = []
    for (depth, width), group in rows.groupby(["depth", "width"], sort=True):
        measured = group["lambda0"].to_numpy(float)
        predicted = predicted_lambda0(x, outputs, int(depth), int(width), activation, sigma_w2)
        edge = predicted_sharpness0_readout_edge(x, outputs, int(depth), int(width), activation, "standard", sigma_w2)
        table.append(
            {
                "depth": int(depth),
                "width": int(width),
                "d_over_w": depth / width,
                "predicted": predicted,
                "predicted_edge": edge,
                "measured_mean": float(measured.mean()),
                "measured_std": float(measured.std()),
                "seeds": int(measured.size),
                "ratio": float(measured.mean()) / predicted,
                "ratio_edge": float(measured.mean()) / edge,
            }
        )
    return pd.DataFrame(table, columns=list(NTK_LAMBDA0_COLUMNS))


def format_ntk_lambda0(table: pd.DataFrame) -> str:
    """A Markdown table: d, w, d/w, the two predictions, measured mean +- std (seeds), the two ratios."""
    lines = [
        "| d | w | d/w | predicted | measured | ratio | readout edge | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples(index=False):
        lines.append(
            f"| {row.depth} | {row.width} | {row.d_over_w:.3g} | {row.predicted:.4g} | "
            f"{row.measured_mean:.4g} ± {row.measured_std:.2g} ({row.seeds}) | {row.ratio:.3f} | "
            f"{row.predicted_edge:.4g} | {row.ratio_edge:.3f} |"
        )
    return "\n".join(lines)


__all__ = ["NTK_LAMBDA0_COLUMNS", "format_ntk_lambda0", "measurement_inputs", "ntk_lambda0_table", "predicted_lambda0"]
