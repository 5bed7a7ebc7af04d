"""Predicted-from-initialisation against measured critical values, seed by seed (docs/RESULTS.md).

    python benchmarks/eval_init_predictors.py --digits             # the committed digits sweep (figures/data)
    python benchmarks/eval_init_predictors.py --sweep results/fcn_cifar10_cpu   # any finished sweep

For every (d, w, seed) of the sweep: prepare the network with the sweep's configuration, run the
predictors of ``earlyphase.compare.init_predict`` and write the per-seed table (resumable), then
print the summary per predictor and boundary (median and rms of delta = log2 predicted/measured,
within 1 and 2 grid steps, Spearman across all seeds and within (d, w)), the cost of each
predictor against the sweep's (runs x the time of one timed run per (d, w)), and draw the figure.
One torch thread; the load average is printed at start and end.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd
import torch

from earlyphase.compare.figures import FigureSettings, sweep_mapping
from earlyphase.compare.init_predict import PREDICTORS
from earlyphase.compare.init_sweep import PREDICTED_VS_MEASURED_FILE, predict_sweep
from earlyphase.compare.per_seed import format_per_seed_summary, per_seed_summary
from earlyphase.compare.per_seed_figure import per_seed_figure
from earlyphase.empirical.sweep import spec_from_mapping
from earlyphase.empirical.sweep.store import stored_spec
from earlyphase.empirical.training import prepare, run_at_c

ROOT = Path(__file__).resolve().parent.parent


def sources(args: argparse.Namespace) -> tuple:
    """(spec, measured per-seed table, output CSV, figure path) of the chosen sweep."""
    if args.digits:
        spec = spec_from_mapping(sweep_mapping(FigureSettings()))
        measured = pd.read_csv(ROOT / "figures/data/critical_values.csv")
        return (
            spec,
            measured,
            ROOT / "figures/data/predicted_vs_measured_digits.csv",
            ROOT / "figures/predicted_vs_measured_digits.png",
        )
    root = Path(args.sweep)
    figure = Path(args.figure) if args.figure else root / "predicted_vs_measured.png"
    return stored_spec(root), pd.read_csv(root / "critical_values.csv"), root / PREDICTED_VS_MEASURED_FILE, figure


def sweep_cost(spec, measured: pd.DataFrame) -> pd.DataFrame:
    """Seconds and HVPs of one full run at c = 2 per (d, w) (seed 0), times the sweep's mean runs per search."""
    rows = []
    for (depth, width), group in measured.groupby(["depth", "width"]):
        point = next(p for p in spec.points() if (p.depth, p.width) == (depth, width))
        experiment = prepare(spec.config(point).replace(barrier=True))
        started = time.perf_counter()
        trajectory = run_at_c(experiment, 2.0)
        seconds = time.perf_counter() - started
        hvps = float(trajectory.steps["hvp_count"].iloc[1:].sum())
        runs = float(group["runs"].mean())
        rows.append(
            {
                "depth": depth,
                "width": width,
                "run_seconds": seconds,
                "run_hvps": hvps,
                "sweep_runs": runs,
                "sweep_seconds": runs * seconds,
                "sweep_hvps": runs * hvps,
            }
        )
    return pd.DataFrame(rows)


def cost_table(table: pd.DataFrame, sweep: pd.DataFrame) -> pd.DataFrame:
    """Median per seed of each predictor's seconds, HVPs and gradients, and its seconds against the sweep's."""
    per_net = table.drop_duplicates(["depth", "width", "seed_init", "seed_sgd", "predictor"])
    merged = per_net.merge(sweep, on=["depth", "width"])
    merged["fraction_of_sweep"] = merged["seconds"] / merged["sweep_seconds"]
    return merged.groupby("predictor", sort=False)[
        ["seconds", "hvps", "gradients", "forwards", "fraction_of_sweep"]
    ].median()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--digits", action="store_true", help="the committed digits sweep (figures/data/critical_values.csv)"
    )
    which.add_argument("--sweep", metavar="DIR", help="a finished `earlyphase sweep` results directory")
    parser.add_argument("--predictors", default=",".join(PREDICTORS), help="comma-separated (default: all)")
    parser.add_argument("--figure", default=None, help="figure path (default: next to the table)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"load average at start: {os.getloadavg()}")
    spec, measured, out, figure = sources(args)
    started = time.perf_counter()
    table = predict_sweep(spec, measured, out, tuple(args.predictors.split(",")))
    print(f"predictions: {time.perf_counter() - started:.0f} s (resumed rows included from {out})")
    print(format_per_seed_summary(per_seed_summary(table)))
    sweep = sweep_cost(spec, measured)
    print(sweep.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(cost_table(table, sweep).to_string(float_format=lambda v: f"{v:.3g}"))
    print(f"figure: {per_seed_figure(table, figure)}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
