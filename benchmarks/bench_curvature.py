"""Curvature benchmarks, every ratio measured in the same run.

1. Hessian-vector product time / gradient time for an FCN (depth 4, width 256) on a batch of
   1024 examples (784 inputs, 10 outputs: MNIST-sized synthetic teacher data). Target <= 3.
2. Sharpness along a 10-step SGD trajectory (same net, B = 512, measurement batch 1024):
   warm-started Lanczos (tol 1e-3) vs cold-started Lanczos vs a 20-iteration power method with
   double-backward HVPs (the usual research-code approach), each against a converged float64
   solve (Lanczos, tol 1e-9). All use the same (double-backward) HVPs. Target: <= 10 HVPs per
   step with warm start.

    .venv/bin/python benchmarks/bench_curvature.py [--device cuda] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from earlyphase.empirical import TrainConfig, prepare, run_at_c
from earlyphase.empirical.curvature import hvp_double_backward, hvp_forward_over_reverse, in_dtype
from earlyphase.empirical.data import load_dataset
from earlyphase.empirical.functional import flatten_module
from earlyphase.empirical.losses import mse
from earlyphase.empirical.objective import loss_of_theta, top_hessian_eigenpair
from earlyphase.empirical.training import random_start

DEPTH, WIDTH, INPUTS, OUTPUTS = 4, 256, 784, 10


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_times(functions: dict, device: torch.device, repeats: int) -> dict[str, float]:
    """Median wall time of each function() over ``repeats`` rounds, after two warm-up calls.

    The functions are interleaved within each round, so a shared machine's load affects all alike.
    """
    for function in functions.values():
        function(), function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            synchronise(device)
            start = time.perf_counter()
            function()
            synchronise(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def power_method(product, start: torch.Tensor, iterations: int = 20) -> float:
    """v <- Hv / |Hv| ``iterations`` times; returns the Rayleigh quotient v.Hv of the last product."""
    vector = start / torch.linalg.vector_norm(start)
    for _ in range(iterations):
        image = product(vector)
        value = float(torch.dot(vector, image))
        vector = image / torch.linalg.vector_norm(image)
    return value


def bench_hvp_over_gradient(experiment, device: torch.device, repeats: int) -> None:
    ((x, y),) = experiment.probe.measure_batch.chunks
    loss = loss_of_theta(experiment.model, mse, x, y)
    theta = experiment.theta0
    vector = torch.randn_like(theta)

    def gradient():
        with torch.enable_grad():
            point = theta.detach().requires_grad_(True)
            return torch.autograd.grad(loss(point), point)[0]

    times = median_times(
        {
            "gradient": gradient,
            "double backward": lambda: hvp_double_backward(loss, theta, vector),
            "forward-over-reverse": lambda: hvp_forward_over_reverse(loss, theta, vector),
        },
        device,
        repeats,
    )
    t_grad, t_dbl, t_fwd = times["gradient"], times["double backward"], times["forward-over-reverse"]
    print(f"[1] FCN d={DEPTH} w={WIDTH}, {len(x)} examples, P = {experiment.num_params}, device {device}")
    print(f"    gradient                 {1e3 * t_grad:8.2f} ms")
    print(
        f"    HVP double backward      {1e3 * t_dbl:8.2f} ms   ratio to gradient {t_dbl / t_grad:5.2f}"
        "  (hvp_method 'auto'; target <= 3)"
    )
    print(f"    HVP forward-over-reverse {1e3 * t_fwd:8.2f} ms   ratio to gradient {t_fwd / t_grad:5.2f}")


def bench_tracking(experiment, device: torch.device, c: float) -> None:
    config = experiment.config
    thetas: list[torch.Tensor] = []
    trajectory = run_at_c(experiment, c, on_step=lambda t, theta: thetas.append(theta.clone()))
    model, batch = experiment.model, experiment.probe.measure_batch
    ((x, y),) = batch.chunks
    model64, _ = flatten_module(model.module, device, torch.float64)
    batch64 = type(batch).of(x.double(), y.double())
    start = random_start(experiment.num_params, 1, device)

    def solve(theta, start_vector, tol, network=model, on=batch):
        return top_hessian_eigenpair(network, mse, theta, on, start_vector, tol, 500, config.measurement.hvp_method)[0]

    reference = np.array([float(solve(theta.double(), start, 1e-9, model64, batch64).value) for theta in thetas])

    loss = loss_of_theta(model, mse, x, y)
    warm_vector = experiment.initial.sharpness.vector

    def warm(theta):
        nonlocal warm_vector
        result = solve(theta, warm_vector, config.measurement.lanczos_tol)
        warm_vector = result.vector
        return float(result.value), int(result.matvecs)

    def cold(theta):
        result = solve(theta, start, config.measurement.lanczos_tol)
        return float(result.value), int(result.matvecs)

    def power(theta):
        product = in_dtype(lambda v: hvp_double_backward(loss, theta, v), theta.dtype)
        return power_method(product, start), 20

    methods = {"warm Lanczos": warm, "cold Lanczos": cold, "power x20": power}
    seconds = {name: 0.0 for name in methods}
    values = {name: [] for name in methods}
    counts = {name: [] for name in methods}
    for theta in thetas:  # interleaved step by step, so a shared machine's load affects all alike
        for name, method in methods.items():
            synchronise(device)
            begin = time.perf_counter()
            value, count = method(theta)
            synchronise(device)
            seconds[name] += time.perf_counter() - begin
            values[name].append(value)
            counts[name].append(count)

    print(
        f"[2] sharpness along {len(thetas)} SGD steps at c = {c} (B = {config.protocol.batch_size}, "
        f"measurement batch {batch.size}); lambda_H0 = {experiment.lambda0:.5g}, "
        f"lambda_H_T = {reference[-1]:.5g}, recorded max residual "
        f"{np.nanmax(trajectory.steps['sharpness_residual'].to_numpy()[1:]):.2g}"
    )
    for name in methods:
        error = np.abs(np.array(values[name]) - reference) / np.abs(reference)
        print(
            f"    {name:13s} {np.mean(counts[name]):6.2f} HVPs/step   {seconds[name] / len(thetas):7.3f} s/step"
            f"   time ratio {seconds[name] / seconds['warm Lanczos']:5.2f}"
            f"   rel. error max {error.max():.2e} median {np.median(error):.2e}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--c", type=float, default=2.0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {device}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
    )
    data = load_dataset("synthetic", n_train=4096, n_measure=1024, seed=0, input_dim=INPUTS, num_outputs=OUTPUTS)
    config = TrainConfig.build(
        arch="fcn",
        depth=DEPTH,
        width=WIDTH,
        dataset="synthetic",
        batch_size=512,
        steps=10,
        measure_size=1024,
        device=args.device,
        barrier=False,
    )
    experiment = prepare(config, dataset=data)
    bench_hvp_over_gradient(experiment, device, args.repeats)
    bench_tracking(experiment, device, args.c)


if __name__ == "__main__":
    main()
