"""Predicted critical learning-rate constants of the solvable models (the theory's public API).

    predict_critical_values(model, depth, width, seeds, **options) -> Prediction
    sharpness_ratio(model, depth, width, c, seeds, **options)       -> np.ndarray  (lambda_T / lambda_0 per seed)
    predict_grid(model, depths, widths, seeds, **options)           -> pandas.DataFrame (tidy)

The protocol is the real nets' (docs/PROTOCOL.md sections 2-3): eta = c / lambda_H0 with the model's
own top Hessian eigenvalue (largest algebraic, MSE L = 1/(2 n k) sum (f - y)^2), T steps of
full-batch GD from each seed's fixed initialisation, c = 2**x on the ``earlyphase.core.search.CGrid``
from x = 0 (``PredictConfig.grid``), each seed walked by a ``GridPlan`` up to its first divergent c
(``earlyphase.theory.protocol``); flags and thresholds from ``earlyphase.core.search.search_result``,
the experiments' path: c_loss, c_sharp (with epsilon), c_max, and
c_barrier from the largest loss on the straight path theta(s) = (1 - s) theta_0 + s theta_T,
s = 0.01, ..., 1, after the T steps.

Models: ``uv`` (``earlyphase.theory.uv``: f = v.u / sqrt(w), one example, one output, closed-form
sharpness) and ``linear`` (``earlyphase.theory.linear``: depth d >= 2, n examples, k outputs,
standard or ntk parameterisation; Lanczos sharpness). With the same seed, ``linear`` at d = 2,
``parameterization="ntk"`` draws the same u, v as ``uv``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from tqdm import tqdm

from earlyphase.core.conventions import DEFAULT_LOSS_MAX, MSE, PARAMETERIZATIONS, describe_loss
from earlyphase.core.critical import CRITICAL_NAMES, CriticalValues, SeedSummary, summarize_seeds
from earlyphase.core.grid import DEFAULT_X_MAX, DEFAULT_X_STEP, X_LIMIT
from earlyphase.core.search import CGrid
from earlyphase.core.trajectory import Trajectory
from earlyphase.core.validate import ConfigError, require_choice, require_int, require_positive
from earlyphase.theory.lanczos import LanczosSettings
from earlyphase.theory.linear import Layers, LinearNet, init_weights
from earlyphase.theory.linear_ensemble import run_chunk
from earlyphase.theory.precision import float64
from earlyphase.theory.protocol import Sweep, evaluate_padded, scan_two_phase
from earlyphase.theory.uv import uv_init, uv_ntk, uv_output, uv_sharpness, uv_trajectories

MODELS = ("uv", "linear")
PREDICTED = CRITICAL_NAMES
"""The critical values a theory model predicts: all four of docs/PROTOCOL.md section 3."""
GRID_DEPTHS = (2, 3, 4, 5, 6, 7, 8)
GRID_WIDTHS = (16, 32, 64, 128, 256, 512)
"""The (depth, width) grid of ``predict_grid`` by default."""
CHUNK = 16
"""c values per batch: GEMM columns per seed (efficiency) against overshoot past divergence."""


@dataclass(frozen=True)
class PredictConfig:
    """One prediction: the model, its size, the protocol and the solver settings."""

    model: str = "linear"
    depth: int = 2
    width: int = 64
    seeds: int = 16
    first_seed: int = 0
    examples: int = 1
    outputs: int = 1
    steps: int = 10
    parameterization: str = "standard"
    sigma_w2: float = 1.0
    target: float = 0.0
    epsilon: float = 0.0
    loss_max: float = DEFAULT_LOSS_MAX
    x_max: float = DEFAULT_X_MAX
    x_step: float = DEFAULT_X_STEP
    x_min: float = 0.0
    lanczos: LanczosSettings = field(default_factory=LanczosSettings)

    def __post_init__(self) -> None:
        require_choice("model", self.model, MODELS)
        require_int("depth", self.depth, 2)
        require_int("width", self.width, 1)
        require_int("seeds", self.seeds, 1)
        require_int("first_seed", self.first_seed, 0)
        require_int("steps", self.steps, 1)
        require_positive("epsilon", self.epsilon, allow_zero=True)
        require_positive("loss_max", self.loss_max)
        if not 0.0 <= self.x_max <= X_LIMIT:  # the scan is c = 2^x_min .. 2^x_max (also refuses NaN)
            raise ConfigError(
                f"x_max must be a finite number in [0, {X_LIMIT:g}] (c = 2^x_min .. 2^x_max), got {self.x_max!r}",
                "x_max",
            )
        if not -X_LIMIT <= self.x_min <= self.x_max:
            raise ConfigError(
                f"x_min must be a finite number in [{-X_LIMIT:g}, x_max = {self.x_max:g}], got {self.x_min!r}", "x_min"
            )
        _ = self.grid  # CGrid validates x_step and the number of grid points
        if self.model == "uv" and (self.depth, self.examples, self.outputs, self.parameterization, self.sigma_w2) != (
            2,
            1,
            1,
            "ntk",
            1.0,
        ):
            raise ConfigError(
                "model 'uv' is f = v.u/sqrt(w): depth 2, one example, one output, ntk parameterisation, "
                f"sigma_w2 = 1 (got depth={self.depth}, examples={self.examples}, outputs={self.outputs}, "
                f"parameterization={self.parameterization!r}, sigma_w2={self.sigma_w2}); use model 'linear' otherwise",
                "model",
            )
        _ = self.net  # LinearNet validates examples, outputs, parameterization, sigma_w2, target

    @classmethod
    def for_model(cls, model: str, **options: Any) -> PredictConfig:
        """A configuration with the model's own defaults (uv: ntk parameterisation)."""
        if model == "uv":
            options.setdefault("parameterization", "ntk")
        return cls(model=model, **options)

    @property
    def net(self) -> LinearNet:
        return LinearNet(
            depth=self.depth,
            width=self.width,
            examples=self.examples,
            outputs=self.outputs,
            parameterization=self.parameterization,
            sigma_w2=self.sigma_w2,
            target=self.target,
        )

    @property
    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.first_seed, self.first_seed + self.seeds))

    @property
    def grid(self) -> CGrid:
        """The grid scanned: c = 2**x, x = x_min, x_min + x_step, ..., <= x_max."""
        return CGrid(self.x_min, self.x_max, self.x_step)


@dataclass(frozen=True, eq=False)
class Prediction:
    """Per-seed thresholds, their seed summaries and the runs behind them."""

    config: PredictConfig
    sweep: Sweep
    critical: tuple[CriticalValues, ...]
    summaries: dict[str, SeedSummary]

    @property
    def loss0(self) -> np.ndarray:
        return self.sweep.loss[:, 0, 0]

    @property
    def lambda0(self) -> np.ndarray:
        """lambda_H0 of every seed."""
        return self.sweep.sharpness[:, 0, 0]

    @property
    def work(self) -> dict[str, int]:
        """runs: (seed, c) trajectories simulated (the loss scan); sharpness_runs: those whose
        sharpness was tracked; hvps: Hessian-vector products spent on them."""
        sharp = np.isfinite(self.sweep.sharpness[:, :, 1:]).any(axis=2)
        return {
            "runs": int(self.sweep.loss.shape[0] * self.sweep.loss.shape[1]),
            "sharpness_runs": int(sharp.sum()),
            "hvps": int(np.nansum(self.sweep.hvps)),
        }

    def trajectory(self, seed_index: int, c_index: int) -> Trajectory:
        """The run of seed ``seed_index`` at the ``c_index``-th scanned c as a core record."""
        c = float(self.sweep.c[c_index])
        at = lambda name: getattr(self.sweep, name)[seed_index, c_index]  # noqa: E731
        config = {"model": self.config.model, **dataclasses.asdict(self.config.net), "steps": self.config.steps}
        return Trajectory.from_arrays(
            c=c,
            eta=c / float(self.lambda0[seed_index]),
            loss=at("loss"),
            loss_convention=describe_loss(MSE),
            sharpness=at("sharpness"),
            sharpness_residual=at("residual"),
            hvp_count=at("hvps"),
            ntk_top=at("ntk_top"),
            loss_max=self.config.loss_max,
            barrier_loss=float(at("barrier")),
            config=config,
            seeds={"init": self.config.seed_list[seed_index]},
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: c_loss, c_sharp, c_max, c_barrier as {mean, std, low, high, found, seeds}."""
        config = self.config
        return {
            "model": config.model,
            "depth": config.depth,
            "width": config.width,
            "d_over_w": config.depth / config.width,
            "examples": config.examples,
            "outputs": config.outputs,
            "steps": config.steps,
            "parameterization": config.parameterization,
            "sigma_w2": config.sigma_w2,
            "target": config.target,
            "epsilon": config.epsilon,
            "loss_max": config.loss_max,
            "loss_convention": describe_loss(MSE),
            "seeds": list(config.seed_list),
            **{name: self.summaries[name].as_dict() for name in PREDICTED},
            "lambda0": _mean_std(self.lambda0),
            "loss0": _mean_std(self.loss0),
            "grid": {
                "x_min": config.grid.x_min,
                "x_step": config.grid.x_step,
                "c_scanned_max": float(self.sweep.c[-1]),
            },
            "per_seed": [
                {"seed": seed, **{name: dataclasses.asdict(getattr(cv, name)) for name in PREDICTED}}
                for seed, cv in zip(config.seed_list, self.critical)
            ],
        }


def _mean_std(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


# --- engines -------------------------------------------------------------------------
def _uv_runner(config: PredictConfig, sharpness: bool = True):
    """c chunk -> Sweep for the uv model: parameter-space GD, closed-form sharpness (always measured:
    it costs nothing)."""
    u, v = uv_init(config.width, config.seed_list)
    lambda0 = uv_sharpness(uv_output(u, v), uv_ntk(u, v), config.target, config.width)

    def run(c: np.ndarray) -> Sweep:
        eta = c[None, :] / lambda0[:, None]
        runs = uv_trajectories(u[:, None, :], v[:, None, :], eta, config.steps, config.target, config.loss_max)
        exact = np.where(np.isnan(runs.sharpness), np.nan, 0.0)
        return Sweep(c, runs.loss, runs.sharpness, exact, exact, runs.ntk, runs.barrier)

    return run


def _linear_runner(config: PredictConfig, padded_depth: int, sharpness: bool = True):
    """c chunk -> Sweep for the depth-d linear model, compiled for depths up to ``padded_depth``;
    ``sharpness=False``: the loss alone (lambda_H0 still measured)."""
    net = config.net
    padded = dataclasses.replace(net, depth=padded_depth)
    seeds = config.seed_list
    weights = Layers(*(jnp.asarray(w) for w in init_weights(net, seeds, padded.hidden)))
    keys = jax.vmap(lambda s: jax.random.fold_in(jax.random.PRNGKey(s), 1))(jnp.asarray(seeds))
    hidden = jnp.asarray(net.hidden)

    def run(c: np.ndarray) -> Sweep:
        arrays = run_chunk(
            padded,
            config.steps,
            config.lanczos,
            config.loss_max,
            jnp.asarray(sharpness),
            weights,
            keys,
            hidden,
            jnp.asarray(c),
        )
        return Sweep(c, *(np.asarray(a, dtype=float) for a in arrays))

    return run


def _runner(config: PredictConfig, padded_depth: int | None = None, sharpness: bool = True):
    if config.model == "uv":
        return _uv_runner(config, sharpness)
    return _linear_runner(config, padded_depth or config.depth, sharpness)


@float64
def _predict(config: PredictConfig, padded_depth: int | None = None, progress: tqdm | None = None) -> Prediction:
    run_loss, run_full = (_runner(config, padded_depth, sharpness) for sharpness in (False, True))
    sweep, searches = scan_two_phase(
        run_loss, run_full, config.grid, config.seeds, CHUNK, config.epsilon, config.loss_max, progress
    )
    critical = tuple(search.critical for search in searches)
    summaries = {name: summarize_seeds([getattr(cv, name) for cv in critical]) for name in PREDICTED}
    return Prediction(config, sweep, critical, summaries)


def predict_critical_values(
    model: str = PredictConfig.model,
    depth: int = PredictConfig.depth,
    width: int = PredictConfig.width,
    seeds: int = PredictConfig.seeds,
    *,
    progress: bool = False,
    **options: Any,
) -> Prediction:
    """c_loss, c_sharp, c_max, c_barrier of ``model`` at (depth, width) over ``seeds`` initialisations.

    ``options``: any field of ``PredictConfig`` (first_seed, examples, outputs, steps,
    parameterization, sigma_w2, target, epsilon, loss_max, x_max, x_step, x_min, lanczos).
    """
    config = PredictConfig.for_model(model, depth=depth, width=width, seeds=seeds, **options)
    with tqdm(
        total=config.grid.size, desc=f"{model} d={depth} w={width}", unit="c", disable=not progress or None
    ) as bar:
        return _predict(config, progress=bar)


@float64
def sharpness_ratio(
    model: str = PredictConfig.model,
    depth: int = PredictConfig.depth,
    width: int = PredictConfig.width,
    c: float = 1.0,
    seeds: int = PredictConfig.seeds,
    **options: Any,
) -> np.ndarray:
    """lambda_H_T / lambda_H0 of every seed after T steps at eta = c / lambda_H0 (NaN if it diverged)."""
    require_positive("c", c)
    config = PredictConfig.for_model(model, depth=depth, width=width, seeds=seeds, **options)
    sweep = evaluate_padded(_runner(config), np.array([float(c)]), CHUNK)
    return sweep.sharpness[:, 0, -1] / sweep.sharpness[:, 0, 0]


# --- grids ---------------------------------------------------------------------------
def predict_grid(
    model: str = PredictConfig.model,
    depths: Sequence[int] = GRID_DEPTHS,
    widths: Sequence[int] = GRID_WIDTHS,
    seeds: int = PredictConfig.seeds,
    *,
    progress: bool = True,
    **options: Any,
) -> pd.DataFrame:
    """Tidy table, one row per (depth, width, boundary) (``grid_rows``), over every pair.

    Depths of one width share one compilation (the hidden stack padded to the largest depth).
    Cells run one after the other: XLA:CPU deadlocks when two of these programs execute
    concurrently from threads, and it already spreads the large GEMMs over the cores.
    """
    configs = [PredictConfig.for_model(model, depth=d, width=w, seeds=seeds, **options) for w in widths for d in depths]
    padded = max(depths)
    rows: list[dict[str, Any]] = []
    with tqdm(total=len(configs), desc=f"{model} grid", unit="cell", disable=not progress or None) as bar:
        for config in configs:
            bar.set_postfix(d=config.depth, w=config.width)
            rows.extend(grid_rows(_predict(config, padded_depth=padded)))
            bar.update(1)
    return pd.DataFrame(rows)


def grid_rows(prediction: Prediction) -> Iterable[dict[str, Any]]:
    """Rows of the tidy table: source, arch, depth, width, d_over_w, boundary, mean, std, low,
    high, found, seeds (the boundary-table columns of earlyphase.compare), then the setup."""
    config = prediction.config
    arch = config.model if config.model == "uv" else f"linear-{config.parameterization}"
    for name in PREDICTED:
        summary = prediction.summaries[name].as_dict()
        yield {
            "source": config.model,
            "arch": arch,
            "depth": config.depth,
            "width": config.width,
            "d_over_w": config.depth / config.width,
            "boundary": name,
            **{key: (math.nan if value is None else value) for key, value in summary.items()},
            "examples": config.examples,
            "outputs": config.outputs,
            "steps": config.steps,
            "target": config.target,
            "epsilon": config.epsilon,
            "lambda0_mean": float(np.mean(prediction.lambda0)),
            "loss0_mean": float(np.mean(prediction.loss0)),
            **prediction.work,
        }


__all__ = [
    "MODELS",
    "PARAMETERIZATIONS",
    "PREDICTED",
    "PredictConfig",
    "Prediction",
    "grid_rows",
    "predict_critical_values",
    "predict_grid",
    "sharpness_ratio",
]
