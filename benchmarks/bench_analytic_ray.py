"""The ``analytic`` predictor (frozen-gate polynomial ray) on digits, against the exact one-step ray
and the measured c_loss of the committed sweep (figures/data/critical_values.csv: ReLU FCN, B = 512,
T = 10, x in [0, 6], seed_sgd 0), tables printed to stdout.

1. Per (d, w, seed_init), d in 2 4 8, w in 32 128, seeds 0-3: c_loss of the polynomial with the
   gates of theta_0 (``init``), of the re-frozen polynomial (``refrozen``), of the exact one-step
   ray L(theta_0 - (c/lambda_H0) g_0)/L_0 > 1 by a forward pass per grid c (``exact``), the measured
   one; the fraction of gates flipped at the exact c_loss; forwards and seconds of each predictor.
   Summary per predictor: median and rms of delta = log2(pred / measured), fraction with
   |delta| <= 0.1 and <= 0.2 (1 and 2 grid steps), Spearman across all seeds and its mean within
   each (d, w) (over the pairs where both sides vary).
2. Scaling of the Taylor terms: rms over examples and outputs of a_k eta^k at eta = c / lambda_H0
   (c = 4), seed 0, d in 2 4 8, w in 32 128 512.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_analytic_ray.py [--skip-scaling]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from earlyphase.core.critical import first_true
from earlyphase.core.search import CGrid
from earlyphase.empirical import TrainConfig, prepare
from earlyphase.empirical.analytic import analytic_prediction, first_step_gradient
from earlyphase.empirical.gates import record_gates

ROOT = Path(__file__).resolve().parents[1]
MEASURED = ROOT / "figures" / "data" / "critical_values.csv"
GRID = CGrid(0.0, 6.0, 0.1)
STEP = 0.1 + 1e-9


def config(depth: int, width: int, seed: int) -> TrainConfig:
    """The committed sweep's protocol (measurement batch = the 1797 digits, L on it)."""
    return TrainConfig.build(
        depth=depth, width=width, seed_init=seed, seed_sgd=0, measure_size=1797, batch_size=512, barrier=False
    )


def gate_flips(experiment, theta: torch.Tensor) -> float:
    """Fraction of the ReLU gates on the evaluation set that differ between theta_0 and theta."""
    x = experiment.probe.eval_batch.chunks[0][0]
    start = record_gates(lambda: experiment.model(experiment.theta0, x))[0].gates
    end = record_gates(lambda: experiment.model(theta, x))[0].gates
    return float(sum((a != b).sum() for a, b in zip(start, end)) / sum(a.numel() for a in start))


def one_seed(depth: int, width: int, seed: int) -> dict:
    experiment = prepare(config(depth, width, seed))
    g0, _ = first_step_gradient(experiment)
    at_init, cost_init, details = analytic_prediction(experiment, g0, GRID, refreeze=0)
    refrozen, cost, details = analytic_prediction(experiment, g0, GRID)
    start = time.perf_counter()
    c = details.c
    ratio = (
        np.array([experiment.probe.loss(experiment.theta0 - (ci / experiment.lambda0) * g0)[0] for ci in c])
        / experiment.loss0
    )
    exact = first_true("c_loss", c, ratio > 1.0).estimate
    exact_seconds = time.perf_counter() - start
    flips = gate_flips(experiment, experiment.theta0 - (exact / experiment.lambda0) * g0) if exact else np.nan
    return {
        "depth": depth,
        "width": width,
        "seed_init": seed,
        "lambda0": experiment.lambda0,
        "init": at_init.c_loss.estimate,
        "refrozen": refrozen.c_loss.estimate,
        "exact": exact,
        "anchors": len(details.anchors) - 1,
        "flips_at_exact": flips,
        "forwards_init": cost_init.forwards,
        "seconds_init": cost_init.seconds,
        "forwards_refrozen": cost.forwards,
        "seconds_refrozen": cost.seconds,
        "forwards_exact": len(c),
        "seconds_exact": exact_seconds,
    }


def summary(table: pd.DataFrame, name: str, truth: str) -> str:
    both = table[[name, truth]].dropna()
    delta = np.log2(both[name] / both[truth])
    rho = spearmanr(both[name], both[truth]).statistic
    within = [
        spearmanr(group[name], group[truth]).statistic
        for _, group in table[["depth", "width", name, truth]].dropna().groupby(["depth", "width"])
        if len(group) >= 3 and group[truth].nunique() > 1 and group[name].nunique() > 1
    ]
    return (
        f"{name:>9} vs {truth:<8} n={len(both):2d}  median d={np.median(delta):+.2f}  rms={np.sqrt(np.mean(delta**2)):.2f}  "
        f"|d|<=0.1: {np.mean(np.abs(delta) <= STEP):.2f}  |d|<=0.2: {np.mean(np.abs(delta) <= 2 * STEP):.2f}  "
        f"spearman all {rho:.2f}, within (d, w) mean {np.mean(within):.2f} over {len(within)}"
    )


def bench_predictions() -> None:
    measured = pd.read_csv(MEASURED)[["depth", "width", "seed_init", "c_loss"]].rename(columns={"c_loss": "measured"})
    rows = [one_seed(d, w, s) for d in (2, 4, 8) for w in (32, 128) for s in range(4)]
    table = pd.DataFrame(rows).merge(measured, on=["depth", "width", "seed_init"], how="left")
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.precision", 3):
        print(table.drop(columns=["lambda0"]).to_string(index=False))
    for truth in ("exact", "measured"):
        for name in ("init", "refrozen") + (("exact",) if truth == "measured" else ()):
            print(summary(table, name, truth))
    means = table[[c for c in table.columns if c.startswith(("forwards", "seconds"))]].mean()
    print("mean cost per seed:", ", ".join(f"{k} {v:.2f}" for k, v in means.items()))


def bench_scaling(c: float = 4.0) -> None:
    print(f"\nrms over examples and outputs of a_k eta^k at eta = {c} / lambda_H0 (seed 0), k = 1 .. D")
    for depth in (2, 4, 8):
        for width in (32, 128, 512):
            experiment = prepare(config(depth, width, 0))
            g0, _ = first_step_gradient(experiment)
            _, _, details = analytic_prediction(experiment, g0, GRID, refreeze=0)
            terms = details.term_rms(c, experiment.lambda0)[1:]
            print(f"d={depth} w={width:3d} lambda0={experiment.lambda0:6.2f}  " + "  ".join(f"{t:.3g}" for t in terms))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    bench_predictions()
    if not args.skip_scaling:
        bench_scaling()


if __name__ == "__main__":
    main()
