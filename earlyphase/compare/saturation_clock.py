"""Is c t the clock of the intermediate saturation? (docs/PROTOCOL.md section 4)

Runs of one network at several c, each with r_c(t) = lambda_t / lambda_0 at its measured steps,
smoothed if asked in log time: r~_c(t) = median of r_c(s) over the measured s in
[t / smooth_factor, t * smooth_factor] (``log_time_median``; a window the same under any rescaling
of time, wider in steps late in the run where SGD's step-to-step noise needs it; smooth_factor = 1:
no smoothing). On r~:

  saturation step   call the window [t, 2t] of a measured t >= 1 (2t within the run) flat when
                    |r_c(s) / r_c(t) - 1| <= tolerance at every measured s in it: the sharpness
                    moves by less than the tolerance over a doubling of time. Before the early
                    transient the windows are flat too (r ~ 1 - a t moves little over [t, 2t] while
                    t is small), so tau_c = the first t with a flat window once the sharpness has
                    moved: after a window that is not flat, or at once if r~ at the first measured
                    t >= 1 is already off r(0) = 1 by more than the tolerance (a transient shorter
                    than the spacing of the measurements); None if the sharpness never moves or
                    never settles. Windows [t, 2t] are the same under any
                    rescaling of time, so the definition does not presuppose a clock: for
                    r_c(t) = f(c t) it gives c tau_c = K (the same K for every c), for r_c(t) = g(t)
                    it gives tau_c = t* (the same step), up to the spacing of the measured steps.
  spread against a clock u (u = t, or u = c t)
                    S_u = sqrt( mean_j var_c log r_c(u_j) ), at ``points`` values u_j spaced evenly in
                    log u over the range that every curve covers (from the largest first measured
                    u with t >= 1 to the smallest last one), log r_c interpolated linearly in u;
                    var_c is the population variance over the runs. S_u = 0 when the curves are one
                    function of u; S_ct << S_t says c t is the better clock.

  best clock exponent
                    alpha* = the exponent of the clock u = c^alpha t (on a grid) with the smallest
                    spread S(alpha): 1 for r_c(t) = f(c t), 0 for r_c(t) = g(t).

A run that diverged, or whose loss catapulted, is kept in the table but marked (its sharpness
has another history); ``saturation_clock`` computes the spreads over the runs below c_loss only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from earlyphase.compare.trajectories import with_ratios
from earlyphase.core import loss_catapult_flag
from earlyphase.core.validate import require_int, require_positive

EXPONENTS = tuple(np.round(np.arange(0.0, 2.0001, 0.05), 2))
"""The clock exponents alpha of u = c^alpha t scanned for the best clock."""
RUN_COLUMNS = ("depth", "width", "d_over_w", "c", "steps", "catapult", "tau", "c_tau", "ratio_at_tau")
NETWORK_COLUMNS = (
    "depth",
    "width",
    "d_over_w",
    "runs",
    "spread_t",
    "spread_ct",
    "best_exponent",
    "best_spread",
    "c_tau_mean",
    "c_tau_cv",
    "tau_cv",
)


def log_time_median(step: np.ndarray, ratio: np.ndarray, smooth_factor: float) -> np.ndarray:
    """r~(t) = median of r(s) over the measured s in [t / smooth_factor, t * smooth_factor] (t > 0;
    r at t = 0), for measured, sorted ``step`` and ``ratio``."""
    if smooth_factor < 1.0:
        raise ValueError(f"smooth_factor must be >= 1, got {smooth_factor!r}")
    low = np.searchsorted(step, step / smooth_factor, side="left")
    high = np.searchsorted(step, step * smooth_factor, side="right")
    return np.array([np.median(ratio[a:b]) if t > 0 else r for a, b, t, r in zip(low, high, step, ratio, strict=True)])


def saturation_step(
    step: np.ndarray, ratio: np.ndarray, tolerance: float = 0.05, smooth_factor: float = 1.0
) -> int | None:
    """tau: the first measured t >= 1 whose window [t, 2t] (inside the run) is flat, every measured
    r~(s) there within a factor 1 +- ``tolerance`` of r~(t), after an earlier window that was not
    or once r~ at the first measured t >= 1 is off r~(0) by more than the tolerance (module
    docstring); None if there is none."""
    require_positive("tolerance", tolerance)
    step, ratio = _measured(step, ratio)
    ratio = log_time_median(step, ratio, smooth_factor)
    candidates = np.flatnonzero(step >= 1)
    moved = bool(step[0] == 0 and candidates.size and abs(ratio[candidates[0]] / ratio[0] - 1.0) > tolerance)
    for index in np.flatnonzero((step >= 1) & (2 * step <= step[-1])):
        window = ratio[(step >= step[index]) & (step <= 2 * step[index])]
        flat = bool(np.all(np.abs(window / ratio[index] - 1.0) <= tolerance))
        if flat and moved:
            return int(step[index])
        moved = moved or not flat
    return None


def curve_spread(curves: Sequence[tuple[np.ndarray, np.ndarray]], points: int = 64) -> float:
    """S = sqrt(mean_j var over curves of log r(u_j)) on ``points`` log-spaced u_j over the common
    range of the curves, each curve (u, r) with u > 0 and r > 0 at its measured points."""
    require_int("points", points, minimum=2)
    if len(curves) < 2:
        raise ValueError(f"curves must hold two or more curves, got {len(curves)}")
    measured = [_measured(u, r) for u, r in curves]
    low = max(float(u[u > 0][0]) for u, _ in measured)
    high = min(float(u[-1]) for u, _ in measured)
    if not low < high:
        raise ValueError(f"the curves have no common range of u (largest start {low:g}, smallest end {high:g})")
    grid = np.geomspace(low, high, points)
    logs = np.array([np.interp(grid, u, np.log(r)) for u, r in measured])
    return float(np.sqrt(np.mean(np.var(logs, axis=0))))


def exponent_spread(
    curves: Sequence[tuple[float, np.ndarray, np.ndarray]], exponents: Sequence[float] = EXPONENTS, points: int = 64
) -> pd.DataFrame:
    """S(alpha) for each alpha of ``exponents``: ``curve_spread`` of the curves (c, t, r) against
    u = c^alpha t; columns exponent, spread."""
    spreads = [curve_spread([(c**alpha * t, r) for c, t, r in curves], points) for alpha in exponents]
    return pd.DataFrame({"exponent": list(exponents), "spread": spreads})


def saturation_clock(
    table: pd.DataFrame, tolerance: float = 0.05, smooth_factor: float = 1.0, points: int = 64
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per run (``RUN_COLUMNS``), per network (``NETWORK_COLUMNS``) and per network and clock
    exponent (depth, width, exponent, spread: S(alpha) over ``EXPONENTS``) of a trajectory table
    (``earlyphase.compare.trajectories``, one seed per (depth, width, c)): tau_c, c tau_c and
    r~_c(tau_c) per run; over the runs without a loss catapult, the spreads S_t and S_ct, the best
    clock exponent alpha* with its spread, the mean of c tau and the coefficients of variation
    (std / mean) of c tau and of tau."""
    table = with_ratios(table)
    curves: dict[tuple[int, int], list[tuple[float, np.ndarray, np.ndarray]]] = {}
    runs = []
    for (depth, width, c), run in table.groupby(["depth", "width", "c"]):
        if run[["seed_init", "seed_sgd"]].drop_duplicates().shape[0] != 1:
            raise ValueError(f"the table holds several seeds at d = {depth}, w = {width}, c = {c:g}")
        step, ratio = _measured(run["step"].to_numpy(float), run["sharpness_ratio"].to_numpy(float))
        ratio = log_time_median(step, ratio, smooth_factor)
        tau = saturation_step(step, ratio, tolerance)
        catapult = bool(loss_catapult_flag(run["loss"].to_numpy(float)))
        if not catapult:
            curves.setdefault((depth, width), []).append((c, step, ratio))
        runs.append(
            {
                "depth": depth,
                "width": width,
                "d_over_w": depth / width,
                "c": c,
                "steps": int(run["step"].max()),
                "catapult": catapult,
                "tau": np.nan if tau is None else tau,
                "c_tau": np.nan if tau is None else c * tau,
                "ratio_at_tau": np.nan if tau is None else float(ratio[step == tau][0]),
            }
        )
    per_run = pd.DataFrame(runs, columns=list(RUN_COLUMNS))
    networks, scans = [], []
    for (depth, width), group in per_run.groupby(["depth", "width"]):
        calm = group[~group["catapult"]]
        calm_curves = curves.get((depth, width), [])
        scan = exponent_spread(calm_curves, (0.0, 1.0, *EXPONENTS), points) if len(calm_curves) >= 2 else None
        best = None if scan is None else scan.iloc[int(scan["spread"].to_numpy().argmin())]
        if scan is not None:
            scans.append(scan.iloc[2:].assign(depth=depth, width=width))
        networks.append(
            {
                "depth": depth,
                "width": width,
                "d_over_w": depth / width,
                "runs": len(calm),
                "spread_t": np.nan if scan is None else scan["spread"].iloc[0],
                "spread_ct": np.nan if scan is None else scan["spread"].iloc[1],
                "best_exponent": np.nan if best is None else best["exponent"],
                "best_spread": np.nan if best is None else best["spread"],
                "c_tau_mean": calm["c_tau"].mean(),
                "c_tau_cv": calm["c_tau"].std(ddof=0) / calm["c_tau"].mean(),
                "tau_cv": calm["tau"].std(ddof=0) / calm["tau"].mean(),
            }
        )
    scan_columns = ["depth", "width", "exponent", "spread"]
    scan_table = pd.concat(scans, ignore_index=True)[scan_columns] if scans else pd.DataFrame(columns=scan_columns)
    return per_run, pd.DataFrame(networks, columns=list(NETWORK_COLUMNS)), scan_table


def _measured(step: np.ndarray, ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The finite, sorted (step, ratio) pairs; ValueError if fewer than two."""
    step, ratio = np.asarray(step, dtype=float), np.asarray(ratio, dtype=float)
    if step.shape != ratio.shape or step.ndim != 1:
        raise ValueError("step and ratio must be one-dimensional arrays of equal length")
    keep = np.isfinite(step) & np.isfinite(ratio)
    order = np.argsort(step[keep], kind="stable")
    step, ratio = step[keep][order], ratio[keep][order]
    if step.size < 2:
        raise ValueError("a curve needs two or more measured points")
    return step, ratio
