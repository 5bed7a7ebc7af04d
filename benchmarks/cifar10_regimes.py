"""CIFAR-10 evidence for docs/REPRODUCTION.md rows 5, 10 and 11 (CPU-sized, one torch thread).

Three experiments, each writing run records (``earlyphase.core.Trajectory``) under OUT, then a
``figures`` step that reads them and writes the figures and their CSV data:

    flattening   ReLU FCNs d = 2, 4, 8 at w = 64, init seeds 0-3, SGD B = 512, T = 10, the
                 protocol of results/fcn_cifar10_cpu (8192 training examples: the same measurement
                 batch, so the same lambda_0 and critical values), c = 2^x every 0.05 in x from
                 just below each seed's c_loss to just above its c_max there, measure_mode "full";
                 records in
                 OUT/flattening/runs/POINT/x+X.json (the layout of a sweep's results directory)
    long-run     one tanh FCN (d = 4, w = 128) trained by full-batch GD at c = 1.9, loss on the
                 whole training subset, sharpness every ``--measure-every`` steps; OUT/long_run
    saturation   ReLU FCNs (8, 32) at c = 1, 2, 4, 8 and (2, 128) at c = 0.5, 1, 2, 3 (below
                 c_loss), SGD B = 512, run to c t = K_max with the sharpness every
                 max(1, floor(4 / c)) steps (a fixed spacing of 4 in c t); OUT/saturation
    figures      figures/regimes_cifar10.png, figures/saturation_clock_cifar10.png and the CSVs in
                 figures/data/ (flattening_cifar10.csv: one row per run; regimes_cifar10.csv and
                 saturation_clock_cifar10.csv: trajectory tables; saturation_clock_cifar10_tau.csv:
                 tau and c tau per run; saturation_clock_cifar10_at_k.csv: lambda_tau / lambda_0 at
                 tau = K / c), and a printed summary of the numbers
    count        the flattening counts per depth of any sweep results directory (--records DIR)
                 with records of measure_mode "full"

Data: CIFAR-10 (EARLYPHASE_CIFAR10 = the archive), ``--n-train`` training examples (default 8192
for flattening, 2048 for long-run, 4096 for saturation), measurement batch of 512 drawn with seed 0.

    EARLYPHASE_CIFAR10=... PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/cifar10_regimes.py \
        {flattening,long-run,saturation,figures} [--out runs/regimes_cifar10]
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from earlyphase.compare.flattening import flattening_counts, run_summary, sweep_run_records
from earlyphase.compare.long_run import regimes_figure, sharpness_at_tau
from earlyphase.compare.regimes import detect_regimes
from earlyphase.compare.saturation_clock import saturation_clock
from earlyphase.compare.saturation_clock_figure import saturation_clock_figure
from earlyphase.compare.style import save_figure
from earlyphase.compare.trajectories import trajectory_table
from earlyphase.core import Trajectory
from earlyphase.empirical.data import Dataset
from earlyphase.empirical.training import TrainConfig, load_training_data, prepare, run_at_c

MEASURE_SIZE = 512
FLATTENING_DEPTHS = (2, 4, 8)
FLATTENING_WIDTH = 64
FLATTENING_SEEDS = (0, 1, 2, 3)
FLATTENING_X_STEP = 0.05
"""Half the sweep's grid step in x = log2 c."""
LONG_RUN = (4, 128, 1.9)
SATURATION_RUNS = {(8, 32): (1.0, 2.0, 4.0, 8.0), (2, 128): (0.5, 1.0, 2.0, 3.0)}
SATURATION_SPACING = 4.0
"""c t between sharpness measurements of the saturation runs (every step once c >= 4)."""
SATURATION_TOLERANCE = 0.1
SATURATION_SMOOTHING = 2**0.25
"""tau: lambda within 10 % over [t, 2t], after a running median over [t / 2^(1/4), t 2^(1/4)]."""
SATURATION_K = (25.0, 50.0, 100.0, 200.0, 400.0)
"""lambda_tau / lambda_0 is read at tau = K / c for each of these K."""


def cifar10(n_train: int) -> Dataset:
    """The training subset and measurement batch ``prepare`` would load for these settings."""
    return load_training_data(base_config(n_train))


def base_config(n_train: int, **fields) -> TrainConfig:
    return TrainConfig.build(
        dataset="cifar10", n_train=n_train, measure_size=MEASURE_SIZE, barrier=False, measure_mode="full", **fields
    )


def flattening_c_grid(row: pd.Series, step: float = FLATTENING_X_STEP) -> np.ndarray:
    """c = 2^x, x every ``step`` from log2(c_loss) - step to log2(c_max) + step of one seed's sweep
    (every c where that sweep found a catapulting, trainable run, and one on each side)."""
    low, high = math.log2(row["c_loss"]) - step, math.log2(row["c_max"]) + step
    return 2.0 ** np.arange(low, high + step / 2, step)


def run_flattening(out: Path, n_train: int, critical_values: Path) -> None:
    table = pd.read_csv(critical_values)
    dataset = cifar10(n_train)
    for depth in FLATTENING_DEPTHS:
        for seed in FLATTENING_SEEDS:
            row = table[(table["depth"] == depth) & (table["width"] == FLATTENING_WIDTH) & (table["seed_init"] == seed)]
            if len(row) != 1:
                raise ValueError(
                    f"{critical_values} has no single row for d = {depth}, w = {FLATTENING_WIDTH}, seed {seed}"
                )
            config = base_config(n_train, depth=depth, width=FLATTENING_WIDTH, seed_init=seed, seed_sgd=0)
            experiment = prepare(config, dataset=dataset)
            for c in flattening_c_grid(row.iloc[0]):
                stem = out / "runs" / f"fcn_d{depth}_w{FLATTENING_WIDTH}_i{seed}_s0" / f"x{math.log2(c):+.4f}"
                record = run_at_c(experiment, float(c))
                record.save(stem)
                print(f"d={depth} seed={seed} c={c:.3f} diverged={record.diverged}", flush=True)


def run_long(out: Path, n_train: int, steps: int, measure_every: int) -> None:
    depth, width, c = LONG_RUN
    config = base_config(
        n_train,
        depth=depth,
        width=width,
        activation="tanh",
        batch_size=None,
        eval_set="train",
        steps=steps,
        measure_every=measure_every,
    )
    experiment = prepare(config)
    record = run_at_c(experiment, c, progress=True)
    record.save(out / "long_run" / f"fcn_d{depth}_w{width}_tanh_c{c:g}")


def run_saturation(out: Path, n_train: int, k_max: float) -> None:
    dataset = cifar10(n_train)
    for (depth, width), c_values in SATURATION_RUNS.items():
        experiment = prepare(base_config(n_train, depth=depth, width=width), dataset=dataset)
        for c in c_values:
            every = max(1, math.floor(SATURATION_SPACING / c))
            config = experiment.config.replace(steps=math.ceil(k_max / c), measure_every=every)
            record = run_at_c(replace(experiment, config=config), c)
            record.save(out / "saturation" / f"fcn_d{depth}_w{width}" / f"c{c:g}")
            print(f"d={depth} w={width} c={c:g} steps={config.protocol.steps} diverged={record.diverged}", flush=True)


def print_counts(records: Path) -> pd.DataFrame:
    """Print the flattening counts per depth and lambda_T / (2/eta) of the catapulting runs."""
    summary = run_summary(sweep_run_records(records))
    print(flattening_counts(summary).to_string(index=False))
    catapulting = summary[summary["catapult"]]
    relative = (catapulting["lambda_final"] / catapulting["stability_limit"]).groupby(catapulting["depth"])
    print("lambda_T / (2/eta) of the catapulting runs:")
    print(relative.describe()[["count", "min", "50%", "max"]].to_string())
    return summary


def draw(out: Path, figures: Path) -> None:
    data = figures / "data"
    data.mkdir(parents=True, exist_ok=True)
    print("flattening counts (catapulting non-diverged runs; flattened: lambda_T < 2/eta):")
    print_counts(out / "flattening").to_csv(data / "flattening_cifar10.csv", index=False)

    (record_path,) = sorted((out / "long_run").glob("*.json"))
    record = Trajectory.load(record_path)
    run = trajectory_table([record])
    run.to_csv(data / "regimes_cifar10.csv", index=False)
    label = f"(tanh, full-batch GD, n = {record.config['n_train_used']}, sharpness on {MEASURE_SIZE})"
    save_figure(regimes_figure(run, run_label=label), figures / "regimes_cifar10.png")
    measured = run.dropna(subset=["sharpness"])
    regimes = detect_regimes(measured["step"], measured["sharpness"], record.eta)
    ratio = measured["sharpness"] / record.lambda0
    print(f"long run: lambda_0 = {record.lambda0:.4g}, 2/eta = {2 / record.eta:.4g}; {regimes.describe()}")
    print(
        f"  lambda_t/lambda_0: min {ratio.min():.3f} at t = {int(measured['step'][ratio.idxmin()])}, "
        f"final {ratio.iloc[-1]:.3f} at t = {int(measured['step'].iloc[-1])}; "
        f"lambda_T eta / 2 = {measured['sharpness'].iloc[-1] * record.eta / 2:.3f}; "
        f"L_T / L_0 = {record.loss[-1] / record.loss0:.4f}"
    )

    table = trajectory_table(Trajectory.load(path) for path in sorted((out / "saturation").glob("*/*.json")))
    table.to_csv(data / "saturation_clock_cifar10.csv", index=False)
    per_run, per_network, scans = saturation_clock(table, SATURATION_TOLERANCE, SATURATION_SMOOTHING)
    per_run.to_csv(data / "saturation_clock_cifar10_tau.csv", index=False)
    figure = saturation_clock_figure(table, per_run, per_network, scans, SATURATION_TOLERANCE)
    save_figure(figure, figures / "saturation_clock_cifar10.png")
    print(per_run.to_string(index=False))
    print(per_network.to_string(index=False))
    print("the same over the runs at c <= 2:")
    below_two = saturation_clock(table[table["c"] <= 2.0], SATURATION_TOLERANCE, SATURATION_SMOOTHING)[1]
    print(below_two[["depth", "width", "runs", "spread_t", "spread_ct", "best_exponent"]].to_string(index=False))
    print("c tau per c at other tolerances and smoothings (tolerance, smooth_factor: c tau by network and c):")
    for tolerance in (0.05, 0.1, 0.2):
        for smooth_factor in (1.0, SATURATION_SMOOTHING):
            runs = saturation_clock(table, tolerance, smooth_factor)[0]
            print(f"  {tolerance:g}, {smooth_factor:.3g}: {runs.set_index(['depth', 'width', 'c'])['c_tau'].to_dict()}")
    at_k = pd.concat([sharpness_at_tau(table, k).assign(k=k) for k in SATURATION_K], ignore_index=True)
    at_k.to_csv(data / "saturation_clock_cifar10_at_k.csv", index=False)
    print("lambda_tau / lambda_0 at tau = K / c:")
    print(at_k.pivot_table(index=["depth", "width", "k"], columns="c", values="ratio").round(3).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=("flattening", "long-run", "saturation", "figures", "count"))
    parser.add_argument("--records", type=Path, default=None, help="count: a sweep results directory")
    parser.add_argument("--out", type=Path, default=Path("runs/regimes_cifar10"))
    parser.add_argument("--figures", type=Path, default=Path("figures"))
    parser.add_argument(
        "--n-train", type=int, default=None, help="default: 8192 flattening, 2048 long-run, 4096 saturation"
    )
    parser.add_argument("--critical-values", type=Path, default=Path("results/fcn_cifar10_cpu/critical_values.csv"))
    parser.add_argument("--steps", type=int, default=3000, help="long-run steps")
    parser.add_argument("--measure-every", type=int, default=10, help="long-run sharpness spacing")
    parser.add_argument("--k-max", type=float, default=320.0, help="saturation runs stop at c t = K_max")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    if args.part == "flattening":
        run_flattening(args.out / "flattening", args.n_train or 8192, args.critical_values)
    elif args.part == "long-run":
        run_long(args.out, args.n_train or 2048, args.steps, args.measure_every)
    elif args.part == "saturation":
        run_saturation(args.out, args.n_train or 4096, args.k_max)
    elif args.part == "figures":
        draw(args.out, args.figures)
    else:
        print_counts(args.records or args.out / "flattening")
    print(f"{args.part}: {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
