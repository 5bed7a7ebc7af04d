"""The gap between two measurement protocols on the same seeds (``earlyphase.compare.protocol_gap``).

Sweep A and sweep B: two results directories of ``earlyphase sweep`` over the same (d, w, seeds),
e.g. the toolkit's protocol and the authors' (examples/fcn_cifar10_d8w256_seeds.toml and
examples/fcn_cifar10_authors.toml). Prints, per matched seed, L_0 and lambda_H0 of both and
delta = log2(c_B / c_A) in grid steps for c_loss, c_sharp, c_max, c_barrier; then per critical
value the median and mean of delta and how many seeds lie within 0, 1, 2 steps.

    .venv/bin/python benchmarks/protocol_gap.py --sweep-a results/fcn_cifar10_d8w256_seeds \\
        --sweep-b results/fcn_cifar10_authors [--x-step 0.1] [--csv gap.csv]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from earlyphase.compare.protocol_gap import ProtocolGap, format_protocol_gap, read_protocol_gap
from earlyphase.core.grid import DEFAULT_X_STEP


def main(argv: list[str] | None = None) -> ProtocolGap:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep-a", required=True, type=Path, help="results directory of protocol A (the reference)")
    parser.add_argument("--sweep-b", required=True, type=Path, help="results directory of protocol B")
    parser.add_argument("--x-step", type=float, default=DEFAULT_X_STEP, help="the sweeps' grid step in log2 c")
    parser.add_argument("--csv", type=Path, help="also write the per-seed table here")
    args = parser.parse_args(argv)
    gap = read_protocol_gap(args.sweep_a, args.sweep_b, args.x_step)
    print(format_protocol_gap(gap, args.sweep_a.name, args.sweep_b.name))
    if args.csv is not None:
        gap.per_seed.to_csv(args.csv, index=False)
    return gap


if __name__ == "__main__":
    main()
