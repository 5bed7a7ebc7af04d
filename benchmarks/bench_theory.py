"""Benchmark of the theory side, figures printed to stdout.

1. ``earlyphase predict --model uv --width 1024 --seeds 32``, end to end in a subprocess (CLI
   start-up and imports included). Target: under 5 s on 2 CPU cores.
2. The README's default grid, ``earlyphase predict --model linear --grid`` (depths 2..8, widths
   16..512, 16 seeds, T = 10), in process and cold (its 6 compilations included). Target: under
   3 minutes on 2 CPU cores. Prints the time, (seed, c) runs per second and HVPs per second.
3. Baseline measured in the same run: one Hessian-vector product of the d = 8, w = 512 network by
   the range-subspace operator (``linear_hessian``), batched as in the grid (16 seeds x 16 c),
   against a dense forward-over-reverse HVP (``jax.jvp`` of ``jax.grad``) on the full weights.

    .venv/bin/python benchmarks/bench_theory.py [--skip-grid]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from earlyphase.theory.linear import Layers, LinearNet, dense_loss, empty_factors, init_weights, inputs, targets
from earlyphase.theory.linear_hessian import point_at, subspace_hessian
from earlyphase.theory.precision import x64
from earlyphase.theory.predict import predict_grid
from timing import best_of

ROOT = Path(__file__).resolve().parents[1]


def bench_uv_cli() -> None:
    command = [
        str(ROOT / ".venv/bin/earlyphase"),
        "predict",
        "--model",
        "uv",
        "--width",
        "1024",
        "--seeds",
        "32",
        "--json",
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
    total = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run([*command[:2], "--help"], check=True, capture_output=True, cwd=ROOT)
    startup = time.perf_counter() - start
    print(
        f"uv predict (w=1024, 32 seeds), end to end: {total:.2f} s  (`earlyphase predict --help` alone: {startup:.2f} s)"
    )


def bench_grid() -> None:
    start = time.perf_counter()
    table = predict_grid("linear", seeds=16, progress=False)
    elapsed = time.perf_counter() - start
    cells = table.drop_duplicates(["depth", "width"])
    runs, sharp, hvps = (int(cells[name].sum()) for name in ("runs", "sharpness_runs", "hvps"))
    print(
        f"default grid (depths 2..8 x widths 16..512, 16 seeds, T=10): {elapsed:.1f} s, {len(cells)} cells, "
        f"{runs} runs ({runs / elapsed:.0f} runs/s), {sharp} with sharpness tracked, {hvps} HVPs ({hvps / elapsed:.0f} HVP/s)"
    )


def bench_hvp(depth: int = 8, width: int = 512, seeds: int = 16, cs: int = 16) -> None:
    with x64():
        net = LinearNet(depth, width)
        weights = Layers(*(jnp.asarray(w) for w in init_weights(net, range(seeds))))
        x, y = inputs(net), targets(net)

        def one(w, scale):
            point, _ = point_at(net, w, empty_factors(net, 0, x.dtype), x, y, net.hidden)
            operator = subspace_hessian(net, point)
            return operator.matvec(scale * operator.gradient)

        batched = jax.jit(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None)))
        scales = jnp.linspace(1.0, 2.0, cs)
        subspace = best_of(lambda: batched(weights, scales).block_until_ready()) / (seeds * cs)

        single = Layers(*(w[0] for w in weights))
        flat, unravel = ravel_pytree(single)
        loss = lambda theta: dense_loss(net, unravel(theta), x, y)  # noqa: E731
        dense_hvp = jax.jit(lambda theta, v: jax.jvp(jax.grad(loss), (theta,), (v,))[1])
        direction = jnp.ones_like(flat)
        dense = best_of(lambda: dense_hvp(flat, direction).block_until_ready())
    print(
        f"one HVP at d={depth}, w={width} ({net.num_params} parameters): range subspace {subspace * 1e3:.2f} ms per run "
        f"(batched {seeds} seeds x {cs} c) vs dense forward-over-reverse {dense * 1e3:.2f} ms: {dense / subspace:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-grid", action="store_true", help="skip the multi-minute default grid")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    bench_uv_cli()
    bench_hvp()
    if not args.skip_grid:
        bench_grid()
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
