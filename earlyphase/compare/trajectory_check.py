"""Predicted against measured early trajectories L_t / L_0 and lambda_t / lambda_0 of one network,
c by c (docs/PROTOCOL.md section 7).

    check = trajectory_check(prepare(config), c_values=(1, 2, 4, 8))
    check.table()   # one row per (source, c, t)

``measured``: ``run_at_c`` at each c (config.measurement.measure_mode "full": every step's sharpness solved),
L_t / L_0 on the evaluation set and lambda_H,t / lambda_H0 on the measurement batch, t = 0 .. T.
Each predictor of ``earlyphase.compare.init_predict`` gives what it has of the same curves
(NaN where it has nothing):

- ``lookahead``: t = 1 only, on the first SGD step's ray theta_1(c) = theta_0 - (c / lambda_H0) g_0:
  L(theta_1) / L_0 (forward passes) and lambda_H(theta_1) / lambda_H0 (Lanczos), ``ray_losses``
  and ``ray_sharpness`` of ``earlyphase.empirical.lookahead``;
- ``analytic``: t = 1 loss only, the frozen-gate polynomial L(eta) / L_0 of the ray at eta = c / lambda_H0
  with the gates of the predictor's last anchor (``RayDetails.loss_ratio``); ``analytic_theta0_gates``
  the same polynomial with the gates of theta_0 (``RayDetails.loss_ratio_at_init``). Read on the
  predictor's own grid (CGrid()): a c off that grid gets NaN;
- ``calibrated_uv``: T steps of the uv map calibrated at theta_0 (``earlyphase.theory.calibrated.
  calibrated_trajectories``): (L_top,t + L_rest) / L_0 and the model's lambda_H,t / lambda_H,0;
- ``lazy``: the network linearised at theta_0 trained by the same SGD
  (``earlyphase.empirical.linearised.linearised_losses``): L_t / L_0 decays mode by mode as
  (1 - eta mu_i / (n k))^(2t) in full-batch GD; lambda_t / lambda_0 = 1 until it diverges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from earlyphase.compare.init_predict import calibrated_uv_model
from earlyphase.core.search import CGrid
from earlyphase.core.validate import ConfigError, require_positive
from earlyphase.empirical.analytic import analytic_prediction
from earlyphase.empirical.gates import FrozenGatesUnavailable
from earlyphase.empirical.initial import measure_initial
from earlyphase.empirical.linearised import linearised_losses
from earlyphase.empirical.lookahead import ray_losses, ray_sharpness
from earlyphase.empirical.training import Experiment, run_at_c

MEASURED = "measured"
PREDICTORS = ("lookahead", "analytic", "analytic_theta0_gates", "calibrated_uv", "lazy")
"""The predicted curves, in the order of the table and the figures."""
ONE_STEP = ("lookahead", "analytic", "analytic_theta0_gates")
"""Predictors with the first step only (t = 1)."""
TABLE_COLUMNS = ("source", "c", "step", "loss_ratio", "sharpness_ratio")


@dataclass(frozen=True, eq=False)
class Curves:
    """L_t / L_0 and lambda_t / lambda_0 of one source, arrays of shape (len(c), T + 1), NaN where
    the source has no value (after a divergence, or beyond the steps it models)."""

    loss_ratio: np.ndarray
    sharpness_ratio: np.ndarray


@dataclass(frozen=True, eq=False)
class TrajectoryCheck:
    """The measured curves and every predictor's at the same c values (``c``), t = 0 .. ``steps``;
    ``network``: depth, width, seed_init, d/w and (lambda_H0, L_0) of the network checked;
    ``not_available``: predictors that could not run here, with the reason."""

    network: dict[str, float]
    c: np.ndarray
    steps: int
    measured: Curves
    predicted: dict[str, Curves]
    not_available: dict[str, str] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """One row per (source, c, step) with L_t / L_0 and lambda_t / lambda_0 (``TABLE_COLUMNS``)."""
        rows = []
        for source, curves in {MEASURED: self.measured, **self.predicted}.items():
            for i, c in enumerate(self.c):
                for t in range(self.steps + 1):
                    loss, sharp = curves.loss_ratio[i, t], curves.sharpness_ratio[i, t]
                    if np.isfinite(loss) or np.isfinite(sharp):
                        rows.append((source, float(c), t, float(loss), float(sharp)))
        return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))

    def summary(self) -> pd.DataFrame:
        """Per source and c: L_1 / L_0, lambda_1 / lambda_0, L_T / L_0 and lambda_T / lambda_0 (NaN where the source has none);
        ``diverged``: a source that models T steps has no finite L_T / L_0 (its run diverged before T)."""
        rows = []
        for source, curves in {MEASURED: self.measured, **self.predicted}.items():
            for i, c in enumerate(self.c):
                loss = curves.loss_ratio[i]
                rows.append(
                    {
                        "source": source,
                        "c": float(c),
                        "loss_1": float(loss[1]) if self.steps >= 1 else np.nan,
                        "sharpness_1": float(curves.sharpness_ratio[i, 1]) if self.steps >= 1 else np.nan,
                        "loss_T": float(loss[-1]),
                        "sharpness_T": float(curves.sharpness_ratio[i, -1]),
                        "diverged": source not in ONE_STEP and not np.isfinite(loss[-1]),
                    }
                )
        return pd.DataFrame(rows)


def measured_curves(experiment: Experiment, c_values: np.ndarray) -> Curves:
    """L_t / L_0 = loss_t / loss_0 and lambda_t / lambda_0 = sharpness_t / lambda_H0 of ``run_at_c`` at each c."""
    if experiment.config.measurement.measure_mode != "full":
        raise ConfigError(
            f"measure_mode must be 'full' to measure every step's sharpness, got {experiment.config.measurement.measure_mode!r}",
            "measure_mode",
        )
    runs = [run_at_c(experiment, float(c)).steps for c in c_values]
    loss = np.stack([run["loss"].to_numpy(float) / experiment.loss0 for run in runs])
    sharpness = np.stack([run["sharpness"].to_numpy(float) / experiment.lambda0 for run in runs])
    return Curves(loss, sharpness)


def lookahead_curves(experiment: Experiment, first_gradient: torch.Tensor, c_values: np.ndarray, steps: int) -> Curves:
    """t = 0 (ratios 1) and t = 1: L(theta_1(c)) / L_0 and lambda_H(theta_1(c)) / lambda_H0 on the ray."""
    loss, sharpness = _empty(len(c_values), steps)
    loss[:, 0] = sharpness[:, 0] = 1.0
    if steps >= 1:
        loss[:, 1] = ray_losses(experiment, first_gradient, c_values).loss_ratio
        sharpness[:, 1] = [ray_sharpness(experiment, first_gradient, float(c)).ratio for c in c_values]
    return Curves(loss, sharpness)


def analytic_curves(
    experiment: Experiment, first_gradient: torch.Tensor, c_values: np.ndarray, steps: int, grid: CGrid
) -> tuple[Curves, Curves]:
    """t = 1 losses of the frozen-gate ray polynomial at each c on ``grid``: with the gates of the
    predictor's last anchor, and with those of theta_0; no sharpness."""
    _, _, details = analytic_prediction(experiment, first_gradient, grid)
    curves = []
    for ratio in (details.loss_ratio, details.loss_ratio_at_init):
        loss, sharpness = _empty(len(c_values), steps)
        loss[:, 0] = 1.0
        if steps >= 1:
            loss[:, 1] = [_on_grid(details.c, ratio, float(c)) for c in c_values]
        curves.append(Curves(loss, sharpness))
    return curves[0], curves[1]


def trajectory_check(
    experiment: Experiment, c_values: Sequence[float] = (1.0, 2.0, 4.0, 8.0), grid: CGrid | None = None
) -> TrajectoryCheck:
    """Measured and predicted L_t / L_0, lambda_t / lambda_0 of ``experiment`` at each c, t = 0 .. config.protocol.steps
    (module docstring). ``grid``: the analytic predictor's grid (None: CGrid(), the sweeps')."""
    c = np.array([require_positive("c", value) for value in c_values], dtype=float)
    config = experiment.config
    steps = config.protocol.steps
    measurements = measure_initial(experiment)
    g0 = measurements.first_gradient
    predicted: dict[str, Curves] = {"lookahead": lookahead_curves(experiment, g0, c, steps)}
    not_available: dict[str, str] = {}
    try:
        predicted["analytic"], predicted["analytic_theta0_gates"] = analytic_curves(
            experiment, g0, c, steps, CGrid() if grid is None else grid
        )
    except FrozenGatesUnavailable as error:
        not_available["analytic"] = not_available["analytic_theta0_gates"] = str(error)
    model = calibrated_uv_model(measurements)
    if model is None:
        not_available["calibrated_uv"] = "the calibration uses the MSE split of L_0 along the top NTK mode"
    else:
        from earlyphase.theory.calibrated import calibrated_trajectories  # loads the theory package (JAX)

        calibration, rest_loss = model
        runs = calibrated_trajectories(calibration, c, steps, rest_loss, config.protocol.loss_max)
        predicted["calibrated_uv"] = Curves(runs.loss_ratio, runs.sharpness_ratio)
    lazy_loss = np.stack([linearised_losses(experiment, float(value), steps) for value in c])
    lazy_loss = lazy_loss / lazy_loss[:, :1]
    predicted["lazy"] = Curves(lazy_loss, np.where(np.isfinite(lazy_loss), 1.0, np.nan))
    network = {
        "depth": config.model.depth,
        "width": config.model.width,
        "seed_init": config.seeds.init,
        "d_over_w": config.model.depth / config.model.width,
        "lambda0": experiment.lambda0,
        "loss0": experiment.loss0,
    }
    return TrajectoryCheck(network, c, steps, measured_curves(experiment, c), predicted, not_available)


def _empty(rows: int, steps: int) -> tuple[np.ndarray, np.ndarray]:
    return np.full((rows, steps + 1), np.nan), np.full((rows, steps + 1), np.nan)


def _on_grid(grid_c: np.ndarray, values: np.ndarray, c: float) -> float:
    """values at the grid point equal to c (relative 1e-9), NaN if c is not on the grid."""
    match = np.flatnonzero(np.isclose(grid_c, c, rtol=1e-9, atol=0.0))
    return float(values[match[0]]) if match.size else float("nan")


__all__ = [
    "MEASURED",
    "ONE_STEP",
    "PREDICTORS",
    "Curves",
    "TrajectoryCheck",
    "analytic_curves",
    "lookahead_curves",
    "measured_curves",
    "trajectory_check",
]
