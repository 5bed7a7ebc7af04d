"""The infinite-width NTK's lambda_H0 against a sweep's measured lambda_H0 (``earlyphase.compare.ntk_lambda0``).

Reads the per-seed critical values of a finished sweep (columns depth, width, lambda0; FCN rows),
loads the dataset with the sweep's measurement batch (default: all of digits, as the committed
figure sweep used) and prints the Markdown table: predicted (infinite width, and with the
readout-edge correction) against the measured seed mean.

    .venv/bin/python benchmarks/ntk_lambda0.py [--csv figures/data/critical_values.csv]
        [--dataset digits] [--measure-size N] [--data-path DIR]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from earlyphase.compare.ntk_lambda0 import (
    format_ntk_lambda0,
    measurement_inputs,
    ntk_lambda0_table,
)
from earlyphase.empirical.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", default="figures/data/critical_values.csv")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--measure-size", type=int, default=None, help="measurement batch (default: all examples)")
    parser.add_argument("--data-path", default=None)
    args = parser.parse_args()
    start = time.perf_counter()
    dataset = load_dataset(args.dataset, n_measure=args.measure_size, seed=0, path=args.data_path)
    table = ntk_lambda0_table(pd.read_csv(args.csv), measurement_inputs(dataset), dataset.num_classes)
    print(
        f"{args.dataset}: measurement batch {len(dataset.measure_index)}, k = {dataset.num_classes}; "
        f"lambda_H0 predicted = lambda_max(Theta_w) / (n k)\n"
    )
    print(format_ntk_lambda0(table))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
