"""Does a critical value depend on depth and width only through d/w?

The (d, w) pairs are grouped by nearly equal d/w: sorted by log2(d/w), a new group starts
wherever the gap to the previous pair exceeds ``tolerance_log2``. With y = log2 c_b
(seed mean of boundary b at each pair) and groups g of sizes n_g >= 1:

    within   = sum_g sum_{i in g} (y_i - ybar_g)^2 / sum_g (n_g - 1)     (pooled, groups n_g >= 2)
    between  = sum_g (ybar_g - ybar)^2 / (G - 1)                          (variance of group means)
    ratio    = within / between

ratio ~ 0: c_b is a function of d/w (perfect collapse); ratio ~ 1 or more: pairs with the
same d/w differ as much as pairs with different d/w (no collapse). A pair where some seeds never
reach the boundary in the scanned range enters with the mean over the seeds that do, which can
hide a difference; ``Collapse.partial`` counts such pairs and ``describe`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from earlyphase.compare.tables import boundary_view


@dataclass(frozen=True)
class Collapse:
    """Variance of log2 c within groups of nearly equal d/w against across groups."""

    boundary: str
    within: float
    between: float
    ratio: float
    groups: int
    pairs: int
    repeated_groups: int
    """groups holding at least two (d, w) pairs: the ones that test the collapse."""
    partial: int = 0
    """pairs whose seed mean leaves out seeds where the boundary was not found in the scanned range."""

    def describe(self) -> str:
        if self.repeated_groups == 0 or not self.between > 0:
            return (
                f"{self.boundary} d/w collapse cannot be tested here: {self.pairs} (d, w) pairs in {self.groups} d/w groups,"
                f" {self.repeated_groups} with >= 2 pairs"
            )
        return (
            f"{self.boundary} d/w collapse: variance of log2 {self.boundary} within groups of nearly equal d/w"
            f" {self.within:.4f} vs across d/w {self.between:.4f}: ratio {self.ratio:.3f}"
            f" ({self.pairs} (d, w) pairs in {self.groups} d/w groups, {self.repeated_groups} with >= 2 pairs;"
            " ratio << 1 means c depends on d and w through d/w)" + self._partial_text()
        )

    def _partial_text(self) -> str:
        if not self.partial:
            return ""
        return (
            f"; caution: at {self.partial} of the {self.pairs} pairs some seeds have no {self.boundary} in the"
            " scanned range and the mean is over the others"
        )


def group_by_ratio(d_over_w: np.ndarray, tolerance_log2: float) -> np.ndarray:
    """Group label per entry: consecutive sorted log2(d/w) closer than tolerance share a group."""
    values = np.log2(np.asarray(d_over_w, dtype=float))
    order = np.argsort(values, kind="stable")
    new_group = np.diff(values[order], prepend=values[order][0]) > tolerance_log2
    labels = np.empty(values.size, dtype=int)
    labels[order] = np.cumsum(new_group)
    return labels


def collapse_ratio(table: pd.DataFrame, boundary: str = "c_loss", tolerance_log2: float = 0.25) -> Collapse:
    """Within-group / between-group variance of log2 c_b over a boundary table (module docstring)."""
    rows = boundary_view(table, boundary).dropna(subset=["mean"])
    if rows.empty:
        raise ValueError(f"no measured values of {boundary} to test the d/w collapse")
    y = np.log2(rows["mean"].to_numpy(float))
    labels = group_by_ratio(rows["d_over_w"].to_numpy(float), tolerance_log2)
    sizes = np.bincount(labels)
    means = np.bincount(labels, weights=y) / sizes
    residual = y - means[labels]
    dof_within = int((sizes - 1).sum())
    within = float(residual @ residual / dof_within) if dof_within else float("nan")
    between = float(np.var(means, ddof=1)) if means.size > 1 else float("nan")
    ratio = within / between if between > 0 else float("nan")
    partial = int((rows["found"] < rows["seeds"]).sum()) if {"found", "seeds"} <= set(rows.columns) else 0
    return Collapse(boundary, within, between, ratio, int(means.size), int(y.size), int((sizes >= 2).sum()), partial)
