"""Predict every (d, w, seed) of a finished sweep from its initialisation, beside what the sweep measured.

``predict_sweep(spec, measured, out)`` prepares each network of ``measured`` (the sweep's per-seed
critical values: columns arch, depth, width, seed_init, seed_sgd, c_loss, c_sharp, c_max,
c_barrier, runs) with the sweep's own configuration, runs the predictors of
``earlyphase.compare.init_predict`` on it, and writes the per-seed table of
``earlyphase.compare.per_seed`` (one row per seed, predictor and boundary, with the measured
value, lambda_H0, L_0 and the predictor's cost) to ``out``, rewriting it atomically after every
network: an interrupted call resumes where it stopped. ``predict_sweep_dir(DIR)`` does this for
an ``earlyphase sweep`` results directory and writes DIR/predicted_vs_measured.csv.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from earlyphase.compare.init_predict import (
    PREDICTORS,
    THEORY_BASELINES,
    PredictorResult,
    predict_from_init,
    theory_baseline,
)
from earlyphase.compare.per_seed import PER_SEED_COLUMNS
from earlyphase.core import CRITICAL_NAMES
from earlyphase.core.validate import ConfigError
from earlyphase.empirical.sweep.spec import SweepPoint, SweepSpec
from earlyphase.empirical.sweep.store import stored_spec, write_atomic
from earlyphase.empirical.sweep.tables import CRITICAL_VALUES_FILE
from earlyphase.empirical.training import prepare

PREDICTED_VS_MEASURED_FILE = "predicted_vs_measured.csv"
EXTRA_COLUMNS = (
    "predicted_low",
    "predicted_high",
    "lambda0",
    "loss0",
    "hvps",
    "gradients",
    "forwards",
    "seconds",
    "sweep_runs",
)
KEY = ["arch", "depth", "width", "seed_init", "seed_sgd"]


def predict_sweep(
    spec: SweepSpec,
    measured: pd.DataFrame,
    out: str | Path,
    predictors: Sequence[str] = PREDICTORS,
    lookahead_steps: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """The per-seed predicted-vs-measured table of every row of ``measured`` (module docstring)."""
    out = Path(out)
    done = pd.read_csv(out) if out.is_file() else pd.DataFrame(columns=[*PER_SEED_COLUMNS, *EXTRA_COLUMNS])
    finished = {tuple(row) for row in done[KEY].drop_duplicates().itertuples(index=False)}
    rows = [row for row in measured.to_dict("records") if tuple(row[k] for k in KEY) not in finished]
    theory_cache: dict[tuple[str, int, int], PredictorResult] = {}
    tables = [done] if len(done) else []
    for row in tqdm(rows, desc="predict from theta_0", unit="net", disable=not progress):
        point = SweepPoint(int(row["depth"]), int(row["width"]), int(row["seed_init"]), int(row["seed_sgd"]))
        tables.append(_predict_point(spec, point, row, predictors, lookahead_steps, theory_cache))
        write_atomic(out, pd.concat(tables, ignore_index=True).to_csv(index=False))
    return pd.concat(tables, ignore_index=True) if tables else done


def predict_sweep_dir(
    results_dir: str | Path,
    predictors: Sequence[str] = PREDICTORS,
    lookahead_steps: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """``predict_sweep`` over an ``earlyphase sweep`` results directory, written to DIR/predicted_vs_measured.csv."""
    root = Path(results_dir)
    table = root / CRITICAL_VALUES_FILE
    if not table.is_file():
        raise ConfigError(f"{root} has no {CRITICAL_VALUES_FILE}: run or finish `earlyphase sweep` first", "from_sweep")
    return predict_sweep(
        stored_spec(root), pd.read_csv(table), root / PREDICTED_VS_MEASURED_FILE, predictors, lookahead_steps, progress
    )


def _predict_point(
    spec: SweepSpec,
    point: SweepPoint,
    measured: dict,
    predictors: Sequence[str],
    lookahead_steps: int | None,
    theory_cache: dict[tuple[str, int, int], PredictorResult],
) -> pd.DataFrame:
    experiment = prepare(spec.config(point))
    own = [name for name in predictors if name not in THEORY_BASELINES]
    prediction = predict_from_init(experiment, own, spec.search.grid, lookahead_steps)
    results = dict(prediction.predictors)
    for name in (name for name in predictors if name in THEORY_BASELINES):
        key = (name, point.depth, point.width)
        if key not in theory_cache:  # the baselines are per (d, w): the same for every seed
            theory_cache[key] = theory_baseline(name, experiment, spec.search.grid, experiment.config.protocol.steps)
        results[name] = theory_cache[key]
    rows = []
    for name, result in results.items():
        for boundary in CRITICAL_NAMES:
            threshold = getattr(result.critical, boundary)
            rows.append(
                {
                    "arch": measured["arch"],
                    "depth": point.depth,
                    "width": point.width,
                    "d_over_w": point.depth / point.width,
                    "seed_init": point.seed_init,
                    "seed_sgd": point.seed_sgd,
                    "predictor": name,
                    "boundary": boundary,
                    "predicted": _value(threshold.estimate),
                    "measured": _value(measured.get(boundary)),
                    "predicted_low": _value(threshold.low),
                    "predicted_high": _value(threshold.high),
                    "lambda0": experiment.lambda0,
                    "loss0": experiment.loss0,
                    "hvps": result.cost.hvps,
                    "gradients": result.cost.gradients,
                    "forwards": result.cost.forwards,
                    "seconds": result.cost.seconds,
                    "sweep_runs": measured.get("runs"),
                }
            )
    return pd.DataFrame(rows, columns=[*PER_SEED_COLUMNS, *EXTRA_COLUMNS])


def _value(value: object) -> float:
    if value is None:
        return float("nan")
    value = float(value)  # type: ignore[arg-type]
    return value if np.isfinite(value) else float("nan")
