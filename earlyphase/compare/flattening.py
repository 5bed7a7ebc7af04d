"""Post-catapult flattening and the step of the loss peak (docs/PROTOCOL.md section 4).

For one run at eta = c / lambda_0 with loss L_t and sharpness lambda_t, t = 0 .. T:

  catapult     exists t in 1..T with L_t > L_0 (``earlyphase.core.loss_catapult_flag``) and the run
               did not diverge (``Trajectory.diverged``)
  flattened    lambda_T < 2 / eta = 2 lambda_0 / c   (the run ends flatter than the stability limit)
  peak step    t* = argmax_{t in 1..T} L_t (the first maximum)

``flattening_counts`` counts per depth (or any other grouping of ``run_summary``'s columns) the
catapulting runs, how many of them had lambda_T measured (finite), how many are flattened and how
many have their loss peak at t* = 1 (the catapult is a first-step overshoot). ``sweep_run_records``
reads the records of a sweep's results directory (``DIR/runs/POINT/x*.json``) that measured every
scheduled step (measure_mode "full"; "flags" records stop measuring early and have no lambda_T).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from earlyphase.core import Trajectory, loss_catapult_flag
from earlyphase.core.validate import ConfigError

SUMMARY_COLUMNS = (
    "depth",
    "width",
    "seed_init",
    "seed_sgd",
    "c",
    "eta",
    "lambda0",
    "lambda_final",
    "stability_limit",
    "diverged",
    "catapult",
    "flattened",
    "peak_step",
)
COUNT_COLUMNS = ("runs", "catapulting", "measured", "flattened", "peak_at_step_1")


def run_summary(trajectories: Iterable[Trajectory]) -> pd.DataFrame:
    """One row per run (columns ``SUMMARY_COLUMNS``): stability_limit = 2 / eta, lambda_final = lambda_T
    (NaN where not measured), catapult / flattened / peak_step as in the module docstring."""
    rows = []
    for record in trajectories:
        loss, sharpness = record.loss, record.sharpness
        if loss.size < 2:
            raise ValueError(f"a run at c = {record.c:g} has no step t >= 1 (T = 0)")
        diverged = record.diverged
        lambda_final = float(sharpness[-1])
        stability_limit = 2.0 / record.eta
        rows.append(
            {
                "depth": int(record.config.get("depth", -1)),
                "width": int(record.config.get("width", -1)),
                "seed_init": int(record.seeds.get("init", -1)),
                "seed_sgd": int(record.seeds.get("sgd", -1)),
                "c": record.c,
                "eta": record.eta,
                "lambda0": record.lambda0,
                "lambda_final": lambda_final,
                "stability_limit": stability_limit,
                "diverged": diverged,
                "catapult": bool(loss_catapult_flag(loss, record.loss_max)) and not diverged,
                "flattened": bool(lambda_final < stability_limit),
                "peak_step": 1 + int(np.argmax(np.where(np.isfinite(loss[1:]), loss[1:], -np.inf))),
            }
        )
    if not rows:
        raise ValueError("no trajectories given")
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def flattening_counts(summary: pd.DataFrame, by: Sequence[str] = ("depth",)) -> pd.DataFrame:
    """Per group of ``by``: runs, catapulting (non-diverged) runs, those with a finite lambda_T,
    those flattened (lambda_T < 2/eta) and those whose loss peaks at t = 1 (both among the
    catapulting runs)."""
    missing = sorted(set(by) - set(summary.columns))
    if missing:
        raise ValueError(f"by must name columns of the run summary; unknown: {', '.join(missing)}")
    catapult = summary["catapult"].astype(bool)
    counts = summary.assign(
        runs=1,
        catapulting=catapult,
        measured=catapult & np.isfinite(summary["lambda_final"]),
        flattened=catapult & summary["flattened"].astype(bool),
        peak_at_step_1=catapult & (summary["peak_step"] == 1),
    )
    return counts.groupby(list(by))[list(COUNT_COLUMNS)].sum().astype(int).reset_index()


def sweep_run_records(results_dir: str | os.PathLike[str]) -> list[Trajectory]:
    """The run records under ``results_dir``/runs/*/ whose configuration measured every scheduled
    step (measure_mode "full"; records written before that option existed count as full)."""
    runs = Path(results_dir) / "runs"
    paths = sorted(runs.glob("*/x*.json"))
    full = [path for path in paths if json.loads(path.read_text())["config"].get("measure_mode", "full") == "full"]
    if not full:
        raise ConfigError(
            f"{runs} holds no run records of measure_mode 'full' ({len(paths)} records in all): "
            'run the sweep with measure_mode = "full" to keep lambda_T',
            "results_dir",
        )
    return [Trajectory.load(path) for path in full]
