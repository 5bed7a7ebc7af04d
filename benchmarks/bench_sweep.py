"""Sweep benchmark: bracketing search vs the full-grid reference protocol, end to end.

The CPU example (examples/fcn_fashion_cpu.toml) reduced to depth 4, widths 32, 64, 128, 256,
one init seed and a 1024-example measurement batch, swept twice from scratch with the same
executor: once with ``search.method = "grid"`` (every c = 2^x, x = 0, 0.1, ... up to the first
divergence: the reference) and once with ``"bisect"``. Prints both wall times, the ratio
(target >= 4), the runs each evaluated, and checks that every critical value agrees to one grid
step.

    .venv/bin/python benchmarks/bench_sweep.py [--jobs 2] [--threads 1] [--out DIR] [--widths 32 64]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import pandas as pd

from earlyphase.core import CRITICAL_NAMES
from earlyphase.empirical.sweep import LocalExecutor, load_spec, run_sweep

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fcn_fashion_cpu.toml"


def reduced_spec(method: str, widths: list[int], measure_size: int):
    """The CPU example at depth 4, the given widths, init seed 0, with ``method``."""
    return load_spec(
        EXAMPLE,
        {
            "model": {"depths": [4], "widths": widths},
            "data": {"measure_size": measure_size},
            "seeds": {"init": [0], "sgd": [0]},
            "search": {"method": method},
        },
    )


def timed_sweep(method: str, root: Path, args: argparse.Namespace) -> tuple[float, pd.DataFrame]:
    spec = reduced_spec(method, args.widths, args.measure_size)
    start = time.perf_counter()
    status = run_sweep(spec, root / method, LocalExecutor(jobs=args.jobs, threads=args.threads))
    seconds = time.perf_counter() - start
    if status.failed or status.pending:
        raise SystemExit(status.describe())
    return seconds, pd.read_csv(root / method / "critical_values.csv")


def grid_flags(root: Path) -> dict[int, dict[str, str]]:
    """Per width, one character per evaluated grid point and flag (from the search summaries)."""
    lines: dict[int, dict[str, str]] = {}
    for path in sorted(root.glob("searches/*.json")):
        summary = json.loads(path.read_text())
        runs = sorted(summary["runs"], key=lambda run: run["index"])
        lines[summary["point"]["width"]] = {
            letter: "".join(letter if run[key] else "." for run in runs)
            for letter, key in (
                ("L", "loss_catapult"),
                ("S", "sharpness_catapult"),
                ("B", "barrier"),
                ("D", "diverged"),
            )
        }
    return dict(sorted(lines.items()))


def grid_steps_apart(a: float, b: float, x_step: float) -> float:
    return abs(math.log2(a / b)) / x_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2, help="local worker processes (default 2)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--measure-size", type=int, default=1024)
    parser.add_argument("--out", type=Path, help="keep the two results directories here (default: a temporary one)")
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory()
    root = args.out or Path(scratch.name)
    grid_seconds, grid = timed_sweep("grid", root, args)
    bisect_seconds, bisect = timed_sweep("bisect", root, args)
    x_step = reduced_spec("grid", args.widths, args.measure_size).search.x_step
    print(f"\nFCN depth 4, widths {args.widths}, Fashion-MNIST, B=512, T=10, measurement {args.measure_size}, one seed")
    print(f"{args.jobs} worker processes x {args.threads} thread(s)\n")
    header = f"{'width':>5} {'runs grid':>9} {'runs bisect':>11} " + " ".join(
        f"{n + ' grid/bisect':>24}" for n in CRITICAL_NAMES
    )
    print(header)
    apart = dict.fromkeys(CRITICAL_NAMES, 0.0)
    for (_, g), (_, b) in zip(grid.iterrows(), bisect.iterrows(), strict=True):
        cells = []
        for name in CRITICAL_NAMES:
            if g[f"{name}_found"] != b[f"{name}_found"]:
                apart[name] = math.inf
            elif g[f"{name}_found"]:
                apart[name] = max(apart[name], grid_steps_apart(g[name], b[name], x_step))
            cells.append(f"{g[name]:.4g} / {b[name]:.4g}".rjust(24))
        print(f"{g['width']:>5} {g['runs']:>9} {b['runs']:>11} " + " ".join(cells))
    print("\nflags of the reference grid, x = x_min, x_min + 0.1, ... (L loss catapult, S sharpness catapult,")
    print("B barrier, D divergence); bisection equals the grid wherever they switch on once and stay on:")
    for width, flags in grid_flags(root / "grid").items():
        print(f"  width {width}:")
        for letter, line in flags.items():
            print(f"    {letter} {line}")
    print(f"\ngrid (reference): {grid_seconds:7.1f} s   {int(grid['runs'].sum())} runs")
    print(f"bisect:           {bisect_seconds:7.1f} s   {int(bisect['runs'].sum())} runs")
    print(f"speed-up grid / bisect: {grid_seconds / bisect_seconds:.2f}x (target >= 4x)")
    print("largest disagreement in grid steps: " + ", ".join(f"{n} {apart[n]:.0f}" for n in CRITICAL_NAMES))


if __name__ == "__main__":
    main()
