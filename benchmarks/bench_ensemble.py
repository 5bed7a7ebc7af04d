"""Ensembles on the CPU: the same work one c at a time and as batched ensembles.

1. sweep: the CPU sweep example (examples/fcn_fashion_cpu.toml) reduced to minutes on 2 cores
   (depth 4, widths 32 and 64, init seeds 0-3, 4096 Fashion-MNIST training examples, a
   512-example measurement batch, the sweep's bracketing search over c in [1, 128]), run
   with ``execution.ensemble = 0`` (one run at a time) and ``= 1`` (the four seeds of each
   width searched in lockstep, each round one ensemble), each with the local executor of
   ``--jobs`` processes and ``--threads`` torch threads per process. Prints both wall times,
   the ratio and whether the critical-value tables are identical.
2. direct: 16 values of c at width 64 (same data), ``run_at_c`` one after another vs one
   ``run_ensemble``, with 1 and with 2 torch threads (on a busy machine extra threads spin).
3. precision: the ensemble sweep of part 1 in float64: are float32's critical values the same?
4. hvp, the floor: one Hessian-vector product of 16 members at width 64 (the ensemble's
   batched operator) against 16 products one member at a time, 1 thread. The products are
   most of a run's arithmetic; when the batched one is not faster, no ensemble can be.

    .venv/bin/python benchmarks/bench_ensemble.py [--jobs 2] [--threads 1] [--skip direct,precision,hvp]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from earlyphase.core import CRITICAL_NAMES
from earlyphase.core.search import flags_of
from earlyphase.empirical import TrainConfig, prepare, run_at_c
from earlyphase.empirical.ensemble import Member, prepare_ensemble, run_ensemble
from earlyphase.empirical.objective import hessian_operator
from earlyphase.empirical.stacked import HessianProducts
from earlyphase.empirical.sweep import LocalExecutor, run_sweep, spec_from_mapping
from earlyphase.empirical.sweep.spec import merge
from earlyphase.empirical.training import load_training_data
from timing import best_of

REDUCED_EXAMPLE = {
    "name": "fcn-fashion-mnist-cpu-reduced",
    "model": {"arch": "fcn", "depths": [4], "widths": [32, 64], "activation": "relu"},
    "data": {"dataset": "fashion_mnist", "n_train": 4096, "measure_size": 512},
    "protocol": {"batch_size": 512, "steps": 10, "loss": "mse"},
    "seeds": {"init": [0, 1, 2, 3], "sgd": [0]},
    "search": {"method": "bisect", "x_min": 0.0, "x_max": 7.0},
}
WIDTH_64 = TrainConfig.build(dataset="fashion_mnist", n_train=4096, measure_size=512, depth=4, width=64, steps=10)
"""The one network of parts 2 and 4: FCN depth 4, width 64, on the reduced example's data."""

THRESHOLD_COLUMNS = [f"{name}{suffix}" for name in CRITICAL_NAMES for suffix in ("", "_low", "_high", "_found")]


def timed_sweep(root: Path, ensemble: int, dtype: str, jobs: int, threads: int) -> tuple[float, pd.DataFrame]:
    spec = spec_from_mapping(merge(REDUCED_EXAMPLE, {"execution": {"ensemble": ensemble, "dtype": dtype}}))
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    run_sweep(spec, root, LocalExecutor(jobs=jobs, threads=threads), progress=False)
    seconds = time.perf_counter() - started
    table = pd.read_csv(root / "critical_values.csv")
    return seconds, table[["depth", "width", "seed_init", "seed_sgd", *THRESHOLD_COLUMNS, "runs"]]


def differences(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """Thresholds that differ between two per-seed tables (same rows)."""
    out = []
    for (_, x), (_, y) in zip(a.iterrows(), b.iterrows()):
        for column in THRESHOLD_COLUMNS:
            if not (x[column] == y[column] or (pd.isna(x[column]) and pd.isna(y[column]))):
                out.append(f"w={x['width']} seed {x['seed_init']}: {column} {x[column]} vs {y[column]}")
    return out


def part_sweep(work: Path, args: argparse.Namespace) -> pd.DataFrame:
    print(
        f"[1] reduced CPU sweep example: {len(REDUCED_EXAMPLE['model']['widths'])} widths x 4 seeds, "
        f"bisection, float32; {args.jobs} jobs x {args.threads} thread(s)",
        flush=True,
    )
    single_s, single = timed_sweep(work / "single", 0, "float32", args.jobs, args.threads)
    print(f"    one run at a time   {single_s:8.1f} s  ({int(single['runs'].sum())} runs)", flush=True)
    ensemble_s, together = timed_sweep(work / "ensemble", 1, "float32", args.jobs, args.threads)
    print(f"    ensembles (L = 1)   {ensemble_s:8.1f} s  ratio {single_s / ensemble_s:.2f}x (target >= 2)", flush=True)
    diff = differences(single, together)
    print(f"    critical values identical: {not diff}" + "".join(f"\n      {d}" for d in diff), flush=True)
    return together


def part_direct(args: argparse.Namespace) -> None:
    config = WIDTH_64
    data = load_training_data(config)
    cs = [2.0 ** (0.25 * k) for k in range(16)]
    print(
        f"[2] {len(cs)} values of c (1 .. {cs[-1]:.1f}), FCN depth 4 width 64, one at a time vs one ensemble",
        flush=True,
    )
    for threads in (1, 2):
        torch.set_num_threads(threads)
        ensemble = prepare_ensemble(config, [(0, 0)], dataset=data)
        experiment = prepare(config, data)
        run_at_c(experiment, cs[0])  # warm-up
        started = time.perf_counter()
        singles = [run_at_c(experiment, c) for c in cs]
        single_s = time.perf_counter() - started
        started = time.perf_counter()
        together = run_ensemble(ensemble, [Member(c) for c in cs])
        ensemble_s = time.perf_counter() - started
        same = all(
            (a.loss_catapult, a.sharpness_catapult, a.diverged, a.barrier)
            == (b.loss_catapult, b.sharpness_catapult, b.diverged, b.barrier)
            for a, b in ((flags_of(x), flags_of(y)) for x, y in zip(singles, together))
        )
        print(
            f"    {threads} thread(s): one at a time {single_s:7.1f} s, ensemble {ensemble_s:7.1f} s, "
            f"ratio {single_s / ensemble_s:.2f}x, flags equal {same}",
            flush=True,
        )


def part_precision(work: Path, args: argparse.Namespace, float32: pd.DataFrame | None) -> None:
    print("[3] precision: the ensemble sweep of [1] in float64 vs float32", flush=True)
    if float32 is None:
        _, float32 = timed_sweep(work / "ensemble", 1, "float32", args.jobs, args.threads)
    seconds, float64 = timed_sweep(work / "float64", 1, "float64", args.jobs, args.threads)
    diff = differences(float64, float32)
    print(
        f"    float64 sweep {seconds:.1f} s; float32 critical values identical to float64: {not diff}"
        + "".join(f"\n      {d}" for d in diff),
        flush=True,
    )


def part_hvp() -> None:
    torch.set_num_threads(1)
    config = WIDTH_64
    data = load_training_data(config)
    ensemble, experiment = prepare_ensemble(config, [(0, 0)], dataset=data), prepare(config, data)
    members = 16
    generator = torch.Generator().manual_seed(0)
    theta = experiment.theta0 + 0.01 * torch.randn(members, experiment.theta0.numel(), generator=generator)
    vectors = torch.randn(members, experiment.theta0.numel(), dtype=torch.float64, generator=generator)
    probe, method = experiment.probe, ensemble.shared.hvp_method
    batched = HessianProducts(probe.model, probe.loss_fn, probe.measure_batch, method)(theta)
    singles = [
        hessian_operator(probe.model, probe.loss_fn, theta[m], probe.measure_batch, method)[0] for m in range(members)
    ]
    batched_s = best_of(lambda: batched(vectors), repeats=5)
    singles_s = best_of(lambda: [product(vector) for product, vector in zip(singles, vectors)], repeats=5)
    print(
        f"[4] one HVP of {members} members (width 64, measurement batch 512, 1 thread): batched {batched_s * 1e3:.1f} ms, "
        f"one member at a time {singles_s * 1e3:.1f} ms, ratio {singles_s / batched_s:.2f}x",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="sweep worker processes")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per sweep worker")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: sweep, direct, precision, hvp")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    print(
        f"machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), load average "
        f"{os.getloadavg()[0]:.1f}, torch {torch.__version__}",
        flush=True,
    )
    work = Path(tempfile.mkdtemp(prefix="bench-ensemble-"))
    try:
        float32 = None if "sweep" in skip else part_sweep(work, args)
        if "direct" not in skip:
            part_direct(args)
        if "precision" not in skip:
            part_precision(work, args, float32)
        if "hvp" not in skip:
            part_hvp()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
