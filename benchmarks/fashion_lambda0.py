"""lambda_H0 and L_0 of FCNs (depth 8, ReLU, standard parameterisation) on Fashion-MNIST.

For each width and initialisation seed: the top Hessian eigenvalue at initialisation on a
measurement batch (default 4096 training examples, measurement seed 0) and the MSE loss there,
then the seed mean and standard deviation per width. Prints a Markdown table.

    .venv/bin/python benchmarks/fashion_lambda0.py [--widths 64 128 256 512] [--seeds 0 1 2 3 4]
        [--measure-size 4096] [--data-path DIR] [--device cuda]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from earlyphase.empirical import TrainConfig, prepare
from earlyphase.empirical.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--measure-size", type=int, default=4096)
    parser.add_argument("--data-path", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dataset = load_dataset("fashion_mnist", n_measure=args.measure_size, seed=0, path=args.data_path)
    print(
        f"data: {dataset.source}; {len(dataset.x_train)} training examples, measurement batch "
        f"{len(dataset.measure_index)} (seed 0); device {args.device}; loss MSE 1/(2Bk) sum (f - y)^2"
    )
    print("\n| width | seed | lambda_H0 | L_0 | residual | HVPs | seconds |\n|---|---|---|---|---|---|---|")
    summary = []
    for width in args.widths:
        values = []
        for seed in args.seeds:
            config = TrainConfig.build(
                arch="fcn",
                depth=args.depth,
                width=width,
                dataset="fashion_mnist",
                measure_size=args.measure_size,
                seed_init=seed,
                device=args.device,
            )
            start = time.perf_counter()
            experiment = prepare(config, dataset=dataset)
            seconds = time.perf_counter() - start
            solve = experiment.initial.sharpness
            values.append((experiment.lambda0, experiment.loss0))
            print(
                f"| {width} | {seed} | {experiment.lambda0:.5g} | {experiment.loss0:.5g} | "
                f"{float(solve.residual):.1e} | {int(solve.matvecs)} | {seconds:.1f} |"
            )
        lambdas, losses = np.array(values).T
        summary.append((width, lambdas.mean(), lambdas.std(), losses.mean(), losses.std()))
    print(f"\nseed mean +- std over seeds {args.seeds} (depth {args.depth}):\n")
    print("| width | lambda_H0 | L_0 |\n|---|---|---|")
    for width, lam_mean, lam_std, loss_mean, loss_std in summary:
        print(f"| {width} | {lam_mean:.4g} +- {lam_std:.2g} | {loss_mean:.4g} +- {loss_std:.2g} |")


if __name__ == "__main__":
    main()
