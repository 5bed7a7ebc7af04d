"""Two revisions of earlyphase timed in the same run: does a refactor slow a run or a sweep down?

Each revision is checked out (``git worktree add --detach``) into a temporary directory. Every
round runs, once per revision in turn (so that a shared machine's load falls on both alike), a
fresh Python process that imports that revision and times, in process CPU seconds and wall
seconds:

- ``train``: ``earlyphase train`` (the CLI: flags -> config -> ``prepare`` -> ``run_at_c`` ->
  record), digits, FCN d = 4, w = 128, c = 2, T = 10, 1 torch thread;
- ``sweep``: ``earlyphase sweep`` of one (d, w) point (digits, d = 2, w = 32, bisection over
  c = 2^x, x in [0, 6]) into an empty directory.

Prints the median of each over the rounds and the ratio after / before; the records' numbers are
compared too (the loss trajectories of ``train`` must be equal).

    .venv/bin/python benchmarks/bench_revisions.py --before REV --after REV [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TRAIN = "train --depth 4 --width 128 --dataset digits --c 2 --steps 10 --name run --json".split()
SWEEP = (
    "sweep --depths 2 --widths 32 --dataset digits --init-seeds 0 --x-max 6 --jobs 1 --threads 1 --no-progress".split()
)
TIMER = """
import json, resource, sys, time, torch
torch.set_num_threads(1)
from earlyphase.cli import main
argv = json.loads(sys.argv[1])
wall, cpu = time.perf_counter(), time.process_time()
status = main(argv)
print(json.dumps({"status": status, "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}))
"""


def checkout(revision: str, root: Path) -> Path:
    """A detached worktree of ``revision`` under ``root``."""
    path = root / revision.replace("/", "_")
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(path), revision], check=True)
    return path


def timed(tree: Path, argv: list[str]) -> dict[str, float]:
    """One fresh process of revision ``tree`` running the CLI with ``argv``: its seconds."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", TIMER, json.dumps(argv)], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["status"] != 0:
        raise RuntimeError(f"{tree.name}: {' '.join(argv)} exited {result['status']}:\n{done.stderr[-2000:]}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="git revision before the change")
    parser.add_argument("--after", default="HEAD", help="git revision after the change (default HEAD)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each running every job once per revision")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        trees = {"before": checkout(args.before, root), "after": checkout(args.after, root)}
        try:
            seconds: dict[tuple[str, str], list[dict[str, float]]] = {}
            for round_ in range(args.rounds):
                for job, base in (("train", TRAIN), ("sweep", SWEEP)):
                    for name, tree in trees.items():
                        out = root / f"{job}-{name}-{round_}"
                        seconds.setdefault((job, name), []).append(timed(tree, [*base, "--out", str(out)]))
                print(f"round {round_ + 1}/{args.rounds} done", flush=True)
            print(f"load average after: {os.getloadavg()}")
            print(f"{'job':<6} {'seconds':<5} {'before':>9} {'after':>9} {'after/before':>13}")
            for job in ("train", "sweep"):
                for kind in ("cpu", "wall"):
                    before = statistics.median(r[kind] for r in seconds[(job, "before")])
                    after = statistics.median(r[kind] for r in seconds[(job, "after")])
                    print(f"{job:<6} {kind:<7} {before:>9.3f} {after:>9.3f} {after / before:>13.3f}")
            same = [
                (root / f"train-before-{r}").exists()
                and _records_equal(root / f"train-before-{r}", root / f"train-after-{r}")
                for r in range(args.rounds)
            ]
            print(f"train records with equal loss and sharpness trajectories: {sum(same)}/{args.rounds}")
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)


def _records_equal(before: Path, after: Path) -> bool:
    """Whether the two ``train`` outputs hold the same loss and sharpness trajectories."""
    import pandas as pd

    (a,) = before.glob("*.parquet")
    (b,) = after.glob("*.parquet")
    columns = ["loss", "sharpness"]
    return pd.read_parquet(a)[columns].equals(pd.read_parquet(b)[columns])


if __name__ == "__main__":
    main()
