"""Measure for the flags: a sweep with ``measurement.measure_mode = "flags"`` against ``"full"``.

The CPU example (examples/fcn_fashion_cpu.toml: FCN, Fashion-MNIST 8192 examples, B = 512,
T = 10) reduced to depth 4, the given widths, init seed 0 and a measurement batch of
``--measure-size``, swept from scratch four times with one executor: grid and bisect, each with
measure_mode "full" (every step's sharpness solved to tolerance) and "flags" (the sharpness only
until lambda_t / lambda_0 > 1 + epsilon is certain, docs/PROTOCOL.md section 3). Prints, per
sweep, the runs, the Hessian-vector products (search summaries: each product once) and the
seconds, and checks that the critical values of the two modes are identical.

    .venv/bin/python benchmarks/bench_measure_flags.py [--jobs 2] [--threads 1] [--widths 32 64] [--dataset digits]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from earlyphase.core import CRITICAL_NAMES
from earlyphase.empirical.sweep import LocalExecutor, load_spec, run_sweep

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fcn_fashion_cpu.toml"
COLUMNS = [column for name in CRITICAL_NAMES for column in (name, f"{name}_found", f"{name}_low", f"{name}_high")]


def sweep(method: str, measure_mode: str, root: Path, args: argparse.Namespace) -> tuple[float, int, pd.DataFrame]:
    """(seconds, HVPs, critical values) of one sweep from scratch into ``root``."""
    data = {"measure_size": args.measure_size, "dataset": args.dataset}
    if args.n_train is not None:
        data["n_train"] = args.n_train
    spec = load_spec(
        EXAMPLE,
        {
            "model": {"depths": [4], "widths": args.widths},
            "data": data,
            "seeds": {"init": [0], "sgd": [0]},
            "search": {"method": method},
            "measurement": {"measure_mode": measure_mode},
        },
    )
    started = time.perf_counter()
    status = run_sweep(spec, root, LocalExecutor(jobs=args.jobs, threads=args.threads), progress=False)
    seconds = time.perf_counter() - started
    if status.failed or status.pending:
        raise SystemExit(status.describe())
    hvps = sum(json.loads(path.read_text())["hvps"] for path in root.glob("searches/*.json"))
    return seconds, hvps, pd.read_csv(root / "critical_values.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--n-train", type=int, help="training examples (default: the example's 8192)")
    parser.add_argument("--measure-size", type=int, default=1024)
    parser.add_argument("--methods", nargs="+", default=["grid", "bisect"], choices=["grid", "bisect"])
    args = parser.parse_args()
    print(
        f"FCN depth 4, widths {args.widths}, {args.dataset}, measurement {args.measure_size}, one seed, {args.jobs} job(s) x {args.threads} thread(s)"
    )
    print(f"{'search':8s} {'measure_mode':12s} {'runs':>5s} {'HVPs':>7s} {'seconds':>8s}")
    with tempfile.TemporaryDirectory() as scratch:
        for method in args.methods:
            results = {
                mode: sweep(method, mode, Path(scratch) / f"{method}-{mode}", args) for mode in ("full", "flags")
            }
            for mode, (seconds, hvps, table) in results.items():
                print(f"{method:8s} {mode:12s} {int(table['runs'].sum()):5d} {hvps:7d} {seconds:8.1f}")
            (_, full_hvps, full), (_, flags_hvps, flags) = results["full"], results["flags"]
            same = full[COLUMNS].equals(flags[COLUMNS])
            print(f"{method:8s} HVPs full / flags = {full_hvps / flags_hvps:.2f}x; critical values identical: {same}")
            if not same:
                raise SystemExit(f"critical values differ:\n{full[COLUMNS]}\n{flags[COLUMNS]}")


if __name__ == "__main__":
    main()
