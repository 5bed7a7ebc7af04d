"""The look-ahead search against the plain bisect search: runs, seconds and HVPs per point.

Digits FCNs (B = 128, T = 10, 512 training examples, a 256-example measurement batch, the grid
c = 2^x, x = 0 .. 6 in steps of 0.1, x_start = 1), depths x widths x init seeds, each point
swept from scratch twice with one in-process worker and one torch thread: plain bisect, and
``[search] lookahead = true`` (earlyphase.empirical.sweep.lookahead_search). Per point: full runs
computed, the search's seconds (data, theta_0 and lambda_H0 included, as a sweep pays them),
HVPs (the runs', plus the look-ahead's own), the critical values of both searches, the source of
c_loss and c_sharp, and the ratios; a value the look-ahead search took from the look-ahead must
equal the plain search's (exit status 1 otherwise).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_lookahead_search.py [--depths 2 4 8] [--widths 32 128] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from earlyphase.core import CRITICAL_NAMES
from earlyphase.empirical.sweep import LocalExecutor, run_sweep, spec_from_mapping
from earlyphase.empirical.sweep.store import Store


def spec_data(args: argparse.Namespace, lookahead: bool) -> dict[str, Any]:
    return {
        "model": {"arch": "fcn", "depths": args.depths, "widths": args.widths},
        "data": {"dataset": "digits", "n_train": 512, "measure_size": 256},
        "protocol": {"batch_size": 128, "steps": 10},
        "seeds": {"init": args.seeds, "sgd": [0]},
        "search": {"x_min": 0.0, "x_max": 6.0, "x_start": 1.0, "lookahead": lookahead},
    }


def summaries(root: Path, lookahead: bool, args: argparse.Namespace) -> tuple[dict[tuple, dict], float]:
    """The search summaries of one sweep from scratch, by (depth, width, seed), and its seconds."""
    spec = spec_from_mapping(spec_data(args, lookahead))
    started = time.perf_counter()
    status = run_sweep(spec, root, LocalExecutor(jobs=1, threads=1), progress=False)
    seconds = time.perf_counter() - started
    if status.failed or status.pending:
        raise SystemExit(status.describe())
    store = Store(root, spec)
    found = {}
    for point in spec.points():
        summary = store.load_search(point)
        found[(point.depth, point.width, point.seed_init)] = summary
    return found, seconds


def _c(summary: dict, name: str) -> str:
    value = summary["critical"][name]["estimate"]
    return "-" if value is None else f"{value:.3g}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.processor() or ''}, python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as scratch:
        plain, plain_seconds = summaries(Path(scratch) / "plain", False, args)
        ahead, ahead_seconds = summaries(Path(scratch) / "lookahead", True, args)
    header = (
        f"{'d':>2} {'w':>4} {'seed':>4} | {'runs':>9} {'seconds':>11} {'HVPs':>15} | "
        f"{'c_loss':>13} {'c_sharp':>13} {'c_max':>13} {'c_barrier':>13} | sources (loss, sharp)"
    )
    print(header + "\n" + "-" * len(header))
    disagree = 0
    totals = {"runs": [0, 0], "seconds": [0.0, 0.0], "hvps": [0, 0]}
    for key in sorted(plain):
        p, a = plain[key], ahead[key]
        extra = a["lookahead"]["cost"]
        row = {
            "runs": (p["runs_computed"], a["runs_computed"]),
            "seconds": (p["seconds"], a["seconds"]),
            "hvps": (p["hvps"], a["hvps"] + extra["hvps"]),
        }
        for name, (before, after) in row.items():
            totals[name][0] += before
            totals[name][1] += after
        sources = a["source"]
        for name in ("c_loss", "c_sharp"):
            if sources[name] == "lookahead" and a["critical"][name] != p["critical"][name]:
                disagree += 1
        values = " ".join(f"{_c(p, n):>6}/{_c(a, n):<6}" for n in CRITICAL_NAMES)
        print(
            f"{key[0]:>2} {key[1]:>4} {key[2]:>4} | {row['runs'][0]:>4}/{row['runs'][1]:<4} "
            f"{row['seconds'][0]:>5.1f}/{row['seconds'][1]:<5.1f} {row['hvps'][0]:>7}/{row['hvps'][1]:<7} | "
            f"{values} | {sources['c_loss']}, {sources['c_sharp']}"
            + "".join(
                f"  [{n}: {c['verdict']}]" for n, c in a["lookahead"]["checks"].items() if c["verdict"] != "passed"
            )
        )
    accepted = sum(s["source"][n] == "lookahead" for s in ahead.values() for n in ("c_loss", "c_sharp"))
    print(
        f"total (plain/lookahead): runs {totals['runs'][0]}/{totals['runs'][1]} "
        f"(ratio {totals['runs'][1] / totals['runs'][0]:.2f}), search seconds "
        f"{totals['seconds'][0]:.1f}/{totals['seconds'][1]:.1f} (ratio {totals['seconds'][1] / totals['seconds'][0]:.2f}), "
        f"HVPs {totals['hvps'][0]}/{totals['hvps'][1]} (ratio {totals['hvps'][1] / totals['hvps'][0]:.2f}); "
        f"sweep wall seconds {plain_seconds:.1f}/{ahead_seconds:.1f}; "
        f"look-ahead accepted for {accepted} of {2 * len(ahead)} thresholds; "
        f"accepted values differing from the plain search's: {disagree}"
    )
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
