"""The Lanczos recurrence's own work per iteration against one Hessian-vector product, at P ~ 317k.

(a) ``lanczos_top`` (the sweep's path: ``by_member``, one member) on a cheap fake operator, the
diagonal matrix diag(1, 1/2, 1/3, ...) (one float64 multiply), run for ``--iterations`` products
without converging: seconds per iteration minus the fake product's own seconds is the
recurrence's overhead (basis write, alpha, re-orthogonalisation, norm, normalisation, host Ritz
check). (b) one Hessian-vector product of the network whose P that is: FCN depth 4, width 380 on
``--examples`` digits (P = 317,440), float32, as ``Probe.stacked_curvature`` builds it.

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_lanczos_overhead.py [--iterations 20] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from earlyphase.empirical import TrainConfig, prepare
from earlyphase.empirical.curvature.lanczos import lanczos_top
from earlyphase.empirical.stacked import HessianProducts


def overhead_per_iteration(num_params: int, iterations: int, repeats: int) -> tuple[float, float]:
    """(seconds per Lanczos iteration with the fake product, seconds of the fake product alone)."""
    diagonal = 1.0 / torch.arange(1, num_params + 1, dtype=torch.float64)
    start = torch.randn(1, num_params, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    product = lambda vectors, members: vectors * diagonal  # noqa: E731
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        result = lanczos_top(product, start, tol=1e-14, max_iter=iterations, by_member=True)
        best = min(best, (time.perf_counter() - started) / int(result.matvecs[0]))
    vector = start.clone()
    started = time.perf_counter()
    for _ in range(iterations):
        product(vector, None)
    return best, (time.perf_counter() - started) / iterations


def hvp_seconds(examples: int, repeats: int) -> tuple[int, float]:
    """(P, seconds of one Hessian-vector product) of the FCN at theta_0 on ``examples`` digits."""
    config = TrainConfig.build(dataset="digits", depth=4, width=380, measure_size=examples, steps=1, barrier=False)
    experiment = prepare(config)
    probe = experiment.probe
    operator = HessianProducts(probe.model, probe.loss_fn, probe.measure_batch, config.measurement.hvp_method)(
        experiment.theta0[None]
    )
    vector = torch.randn(1, experiment.num_params, dtype=torch.float64)
    operator(vector)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        operator(vector)
        best = min(best, time.perf_counter() - started)
    return experiment.num_params, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--examples", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    num_params, hvp = hvp_seconds(args.examples, args.repeats)
    iteration, fake = overhead_per_iteration(num_params, args.iterations, args.repeats)
    overhead = iteration - fake
    print(f"P = {num_params}, {args.iterations} iterations, {args.threads} thread(s)")
    print(f"one HVP (FCN d=4 w=380, {args.examples} digits): {hvp * 1e3:8.2f} ms")
    print(f"Lanczos iteration, fake product:          {iteration * 1e3:8.2f} ms (product alone {fake * 1e3:.2f} ms)")
    print(f"recurrence overhead per iteration:        {overhead * 1e3:8.2f} ms = {overhead / hvp:.1%} of an HVP")


if __name__ == "__main__":
    main()
