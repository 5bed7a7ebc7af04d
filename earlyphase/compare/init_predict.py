"""Critical learning rates predicted from a network's initialisation (docs/PROTOCOL.md section 7).

``predict_from_init(experiment)`` measures the network at theta_0 once
(``earlyphase.empirical.initial.measure_initial``) and runs every predictor on it:

- ``lookahead``: the first SGD step's ray theta_1(c) = theta_0 - (c / lambda_H0) g_0 gives c_loss
  (L(theta_1) / L_0 > 1) and c_sharp (lambda_H(theta_1) / lambda_H0 > 1 + epsilon); c_max from
  K-step runs of the protocol without sharpness solves (``earlyphase.empirical.lookahead``);
- ``analytic``: c_loss of the same ray with the ReLU gates frozen, where the network output is a
  polynomial of degree D in eta, re-frozen at its predicted crossing (``earlyphase.empirical.analytic``);
- ``calibrated_uv``: the uv model's (f, lambda) map with its scales set from the network's top NTK
  mode and the sharpness slope kappa at theta_0, run for T steps (``earlyphase.theory.calibrated``);
- baselines: ``lazy`` (the linearised, infinite-width dynamics: the loss rises and diverges for
  every c > 2 and the sharpness never rises), ``uv`` and ``linear`` (the solvable models' seed
  means at the same width and depth, ``earlyphase.theory.predict``).

Every predictor returns ``earlyphase.core.CriticalValues`` read with the core's threshold
definitions on the same c grid, and its ``Cost``. ``RECOMMENDED`` names the predictor that the
per-seed evaluation (docs/RESULTS.md) found most accurate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from earlyphase.core import CRITICAL_NAMES, CriticalValues, SeedSummary, Threshold
from earlyphase.core.cost import Cost
from earlyphase.core.search import BracketPlan, CGrid
from earlyphase.core.validate import require_choice
from earlyphase.empirical.analytic import analytic_prediction
from earlyphase.empirical.gates import FrozenGatesUnavailable
from earlyphase.empirical.initial import InitialMeasurements, measure_initial
from earlyphase.empirical.lookahead import lookahead_prediction
from earlyphase.empirical.training import Experiment

if TYPE_CHECKING:
    from earlyphase.theory.calibrated import UVCalibration

PREDICTORS = ("lookahead", "analytic", "calibrated_uv", "lazy", "uv", "linear")
THEORY_BASELINES = ("uv", "linear")
RECOMMENDED = "lookahead"
"""The most accurate predictor in the per-seed evaluation of docs/RESULTS.md (c_loss and c_sharp exact for most seeds)."""
THEORY_SEEDS = 16
"""Initialisations averaged by the uv and linear baselines."""


Predictor = Callable[..., "PredictorResult"]
"""(experiment, measurements at theta_0, grid, steps, theory seeds) -> PredictorResult."""


@dataclass(frozen=True)
class PredictorResult:
    """One predictor's critical values, its work, and why a value was not predicted (per boundary)."""

    critical: CriticalValues
    cost: Cost
    not_predicted: dict[str, str]

    def as_dict(self) -> dict:
        """{c_loss, c_loss_low, c_loss_high, ... (``CriticalValues.as_row``), not_predicted, cost}."""
        return {**self.critical.as_row(), "not_predicted": self.not_predicted, "cost": self.cost.as_dict()}


@dataclass(frozen=True)
class InitPrediction:
    """Measurements at theta_0 and every predictor's critical values for one network."""

    config: dict
    measurements: dict[str, float | None]
    measurement_cost: Cost
    predictors: dict[str, PredictorResult]

    @property
    def recommended(self) -> str:
        return RECOMMENDED if RECOMMENDED in self.predictors else next(iter(self.predictors))

    def as_json(self) -> dict:
        """{"measurements", "predictors": {NAME: {c_loss, c_sharp, c_max, c_barrier, ...}}, "recommended", "cost", "config"}."""
        return {
            "measurements": self.measurements,
            "predictors": {name: result.as_dict() for name, result in self.predictors.items()},
            "recommended": self.recommended,
            "cost": {"measurements": self.measurement_cost.as_dict()}
            | {name: result.cost.as_dict() for name, result in self.predictors.items()},
            "config": self.config,
        }


def predict_from_init(
    experiment: Experiment,
    predictors: Sequence[str] = PREDICTORS,
    grid: CGrid | None = None,
    lookahead_steps: int | None = None,
    theory_seeds: int = THEORY_SEEDS,
) -> InitPrediction:
    """Every predictor in ``predictors`` for ``experiment``'s network at theta_0 (module docstring).

    ``grid``: the c grid (None: the default CGrid of the sweeps); ``lookahead_steps``: K of the
    look-ahead's c_max runs (None: the protocol's T, config.protocol.steps).
    """
    for name in predictors:
        require_choice("predictor", name, PREDICTORS)
    grid = CGrid() if grid is None else grid
    steps = experiment.config.protocol.steps if lookahead_steps is None else lookahead_steps
    measurements = measure_initial(experiment)
    results: dict[str, PredictorResult] = {}
    for name in predictors:
        result = _PREDICT[name](experiment, measurements, grid, steps, theory_seeds)
        results[name] = replace(result, cost=result.cost + _measurement_share(name, measurements))
    return InitPrediction(
        config=experiment.record_config(),
        measurements=measurements.scalars(),
        measurement_cost=measurements.cost,
        predictors=results,
    )


def _measurement_share(name: str, measurements: InitialMeasurements) -> Cost:
    """The part of the theta_0 measurement a predictor needs: g_0 (one gradient) for the rays,
    everything (the NTK top mode and grad lambda) for the calibrated model, nothing for baselines."""
    if name in ("lookahead", "analytic"):
        return Cost(gradients=1)
    return measurements.cost if name == "calibrated_uv" else Cost()


def theory_baseline(
    name: str, experiment: Experiment, grid: CGrid, steps: int, seeds: int = THEORY_SEEDS
) -> PredictorResult:
    """The ``uv`` or ``linear`` model's seed means at the network's width (and depth): a per-(d, w) baseline."""
    require_choice("baseline", name, THEORY_BASELINES)
    return _PREDICT[name](experiment, None, grid, steps, seeds)


def _lookahead(
    experiment: Experiment, measurements: InitialMeasurements, grid: CGrid, steps: int, _: int
) -> PredictorResult:
    critical, cost, _details = lookahead_prediction(experiment, measurements, BracketPlan(grid), steps=steps)
    reasons = {"c_barrier": "the straight line theta_0 -> theta_1 is the ray itself: no barrier beyond c_loss"}
    return PredictorResult(critical, cost, reasons)


def _analytic(
    experiment: Experiment, measurements: InitialMeasurements, grid: CGrid, _: int, __: int
) -> PredictorResult:
    try:
        critical, cost, details = analytic_prediction(experiment, measurements.first_gradient, grid)
    except FrozenGatesUnavailable as error:
        reason = f"not available for this network: {error}"
        return PredictorResult(_none(), Cost(), {name: reason for name in CRITICAL_NAMES})
    return PredictorResult(critical, cost, dict(details.not_predicted))


def _lazy(experiment: Experiment, _: InitialMeasurements, grid: CGrid, __: int, ___: int) -> PredictorResult:
    """Linearised dynamics: g_t = (1 - c)^t g_0 on the top mode, so the loss rises (and diverges) iff c > 2."""
    c = grid.values
    above = c > 2.0 + 1e-12
    first = int(np.argmax(above)) if above.any() else None
    c_loss = Threshold("c_loss", None, float(c[-1]), None)
    c_max = Threshold("c_max", None, float(c[-1]), None)
    if first is not None:
        low = float(c[first - 1]) if first > 0 else None
        c_loss = Threshold("c_loss", float(c[first]), low, float(c[first]))
        c_max = Threshold("c_max", low, low, float(c[first]))
    never = "the linearised dynamics keep the NTK, hence the sharpness, fixed"
    critical = CriticalValues(
        c_loss, Threshold("c_sharp", None, float(c[-1]), None), c_max, replace(c_max, name="c_barrier")
    )
    return PredictorResult(critical, Cost(), {"c_sharp": never})


def _theory(model: str) -> Predictor:
    def predict(experiment: Experiment, _: InitialMeasurements, grid: CGrid, steps: int, seeds: int) -> PredictorResult:
        from earlyphase.theory import predict_critical_values

        config = experiment.config
        if config.model.arch != "fcn":
            reason = f"the {model} model describes fully connected nets only (arch is {config.model.arch!r})"
            return PredictorResult(_none(), Cost(), {name: reason for name in CRITICAL_NAMES})
        started = time.perf_counter()
        depth = 2 if model == "uv" else max(2, config.model.depth)
        prediction = predict_critical_values(
            model,
            depth=depth,
            width=config.model.width,
            seeds=seeds,
            steps=steps,
            x_min=grid.x_min,
            x_max=grid.x_max,
            x_step=grid.x_step,
        )
        thresholds = {name: _seed_mean(name, prediction.summaries[name]) for name in CRITICAL_NAMES}
        return PredictorResult(CriticalValues(**thresholds), Cost(seconds=time.perf_counter() - started), {})

    return predict


def calibrated_uv_model(measurements: InitialMeasurements) -> tuple[UVCalibration, float] | None:
    """The ``calibrated_uv`` predictor's model of a network: the uv calibration from its top NTK
    mode and kappa at theta_0 (``earlyphase.theory.calibrated.calibrate_uv``, "hessian" convention)
    and L_rest = L_0 - L_top, the loss the top mode does not carry; None for a non-MSE loss."""
    from earlyphase.theory.calibrated import calibrate_uv

    if measurements.loss_top is None or measurements.loss_rest is None:
        return None
    calibration = calibrate_uv(
        measurements.top_output,  # e . f_0 / sqrt(Bk): already per entry, hence entries = 1
        measurements.top_residual,
        measurements.lambda0,
        measurements.kappa,
        entries=1,
        curvature="hessian",
        ntk_lambda0=measurements.ntk_sharpness,
    )
    return calibration, measurements.loss_rest


def _calibrated_uv(
    experiment: Experiment, measurements: InitialMeasurements, grid: CGrid, steps: int, theory_seeds: int
) -> PredictorResult:
    from earlyphase.theory.calibrated import calibrated_prediction

    started = time.perf_counter()
    model = calibrated_uv_model(measurements)
    if model is None:
        reason = "the calibration uses the MSE split of L_0 along the top NTK mode"
        return PredictorResult(_none(), Cost(), {name: reason for name in CRITICAL_NAMES})
    calibration, rest_loss = model
    config = experiment.config
    critical, _cost = calibrated_prediction(
        calibration, grid, steps, config.protocol.epsilon, config.protocol.loss_max, rest_loss=rest_loss
    )
    reasons = {"c_barrier": "the reduced model has no parameter-space path"}
    return PredictorResult(critical, Cost(seconds=time.perf_counter() - started), reasons)


def _seed_mean(name: str, summary: SeedSummary) -> Threshold:
    mean = summary.mean
    if mean is None or not math.isfinite(mean):
        return Threshold(name, None, None, None)
    return Threshold(name, float(mean), summary.low, summary.high)


def _none() -> CriticalValues:
    return CriticalValues(**{name: Threshold(name, None, None, None) for name in CRITICAL_NAMES})


_PREDICT: dict[str, Predictor] = {
    "lookahead": _lookahead,
    "analytic": _analytic,
    "calibrated_uv": _calibrated_uv,
    "lazy": _lazy,
    "uv": _theory("uv"),
    "linear": _theory("linear"),
}
