"""The same float64 experiments on the CPU and on another device: records must agree to rounding.

FCN (depth 4, width 32) and Myrtle CNN (depth 5, width 8) on 256 digits, measurement batch 128,
B = 64, 5 SGD steps at c = 3, sharpness to residual 1e-8 and the NTK top eigenvalue. Prints the
largest relative difference of each recorded column.

    python benchmarks/check_devices.py --device cuda
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from earlyphase.empirical import TrainConfig, prepare, run_at_c

BASE = dict(
    dataset="digits", n_train=256, measure_size=128, batch_size=64, steps=5, dtype="float64", lanczos_tol=1e-8, ntk=True
)
NETWORKS = (dict(arch="fcn", depth=4, width=32), dict(arch="cnn", depth=5, width=8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--c", type=float, default=3.0)
    args = parser.parse_args()
    for network in NETWORKS:
        records = {}
        for device in ("cpu", args.device):
            start = time.perf_counter()
            experiment = prepare(TrainConfig.build(**BASE, **network, device=device))
            records[device] = run_at_c(experiment, args.c).steps
            print(
                f"{network} on {device}: lambda_H0 = {experiment.lambda0:.10g}, L_0 = {experiment.loss0:.10g} "
                f"({time.perf_counter() - start:.1f} s)"
            )
        for column in ("loss", "batch_loss", "sharpness", "ntk_top", "accuracy"):
            a, b = records["cpu"][column].to_numpy(), records[args.device][column].to_numpy()
            relative = np.nanmax(np.abs(a - b) / np.maximum(np.abs(a), 1e-300))
            print(f"    max relative difference of {column:10s} {relative:.2e}")


if __name__ == "__main__":
    main()
