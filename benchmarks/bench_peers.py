"""earlyphase against its peers, every figure measured in the same run (docs/PROTOCOL.md sections 1-3).

1. cold: the sharpness lambda_max(H) at theta_0 of a ReLU FCN (depth 4, width 256) on 1024
   training examples (Fashion-MNIST where installed, else digits), MSE L = 1/(2Bk) sum (f - y)^2:
   earlyphase's Lanczos (``top_hessian_eigenpair``, tol 1e-3) vs PyHessian's top eigenvalue (its
   default power iteration: at most 100 products, stop when two Rayleigh quotients differ by
   < 1e-3 relative) vs curvlinops' ``HessianLinearOperator`` + ``scipy.sparse.linalg.eigsh``
   (k = 1, which = 'LA'; tol 1e-3 and scipy's default tol = 0). Each against a float64 Lanczos
   solve to residual 1e-9: value, relative error, Hessian-vector products (counted by wrapping
   each library's product), seconds (the fastest of ``--rounds`` interleaved rounds).
2. track: the same sharpness at theta_1 .. theta_10 of 10 SGD steps at c = 4 (B = 512; the
   theta_t of ``run_at_c`` via its ``on_step``): earlyphase's Lanczos warm-started from the
   previous eigenvector vs PyHessian from scratch at each step, and PyHessian's own power-iteration
   loop (``pyhessian.utils``) warm-started from its previous eigenvector (``eigenvalues`` takes no
   start vector). Methods interleaved step by step.
3. protocols: the paper authors' notebook protocol (``earlyphase.empirical.authors_protocol``:
   lambda_H0 by a 20-step power iteration on one batch of up to 4096 examples; lambda_H_t by the
   same iteration, from the same fixed Gaussian start vector, on the NEXT 512-example SGD
   minibatch, which it consumes; L_t on the full training set; the barrier on the lambda_H0
   batch; divergence as the toolkit's; the grid c = 2^x, x = 0, 0.1, ... until the first
   divergence; c_sharp with epsilon = 0) against earlyphase's sweep
   path for one point (``earlyphase.empirical.sweep.worker.search_point``: ``prepare`` and the
   bracketing search over ``run_at_c``, records written to a temporary store), same data, width,
   init and SGD seeds: runs, Hessian-vector products, seconds, critical values, speed ratios.

The peers are optional (extra ``bench``). pip would replace a local CPU torch while resolving
them (backpack-for-pytorch needs torchvision, whose newest wheel needs a newer torch), so
install them without dependencies, listing the few pure-Python ones they need:

    .venv/bin/pip install --no-deps pyhessian curvlinops-for-pytorch backpack-for-pytorch \\
        einconv einops linear_operator unfoldNd

Parts 1-2 are skipped (with a note) where a peer is missing; part 3 needs none.

    .venv/bin/python benchmarks/bench_peers.py [--threads 1] [--width 128] [--n-train 2048]
        [--measure-size 1024] [--parts cold,track,protocols] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.util
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from earlyphase.core import CRITICAL_NAMES
from earlyphase.core.critical import critical_values
from earlyphase.core.grid import grid_point
from earlyphase.core.search import flags_of
from earlyphase.empirical import TrainConfig, prepare, run_at_c
from earlyphase.empirical import authors_protocol as authors
from earlyphase.empirical.functional import flatten_module
from earlyphase.empirical.losses import mse
from earlyphase.empirical.objective import Batch, top_hessian_eigenpair
from earlyphase.empirical.sweep import spec_from_mapping
from earlyphase.empirical.sweep.store import open_store
from earlyphase.empirical.sweep.worker import PointTask, search_point
from earlyphase.empirical.training import Experiment, load_training_data, random_start
from timing import best_of_each

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
PEERS = ("pyhessian", "curvlinops")
TOL = 1e-3
LOOSE_TOL = 1e-2
"""A second Lanczos tolerance, for a comparison with PyHessian at its accuracy (~1e-3) rather than ours."""
REFERENCE_TOL = 1e-9
REFERENCE_MAX_ITER = 500
AUTHORS_LAMBDA0_BATCH = 4096
X_MAX = 6.0
"""Top of the c grid (c = 64) for both protocols: the authors' grid stops there if nothing diverged."""


@dataclass(frozen=True)
class Sizes:
    """Problem sizes: parts 1-2 (``peer_*``) and part 3 (``width``, ``n_train``, ``measure_size``)."""

    dataset: str
    depth: int = 4
    peer_width: int = 256
    peer_examples: int = 1024
    track_c: float = 4.0
    steps: int = 10
    batch_size: int = 512
    width: int = 128
    n_train: int = 2048
    measure_size: int = 1024
    rounds: int = 3


QUICK = {
    "peer_width": 32,
    "peer_examples": 1024,
    "steps": 5,
    "width": 32,
    "n_train": 1024,
    "measure_size": 256,
    "rounds": 1,
}
"""--quick: a smoke run, about a minute of one idle core (T = 5 steps)."""

DIGITS_EXAMPLES = 1797
"""Training examples of scikit-learn's digits, the fallback dataset: n_train is capped there."""


@dataclass(frozen=True)
class Solve:
    """One sharpness estimate: the value, |value - reference| / |reference|, HVPs, seconds."""

    method: str
    value: float
    error: float
    hvps: int
    seconds: float


@dataclass(frozen=True)
class Tracking:
    """Sharpness along a trajectory: total seconds, mean HVPs per step, relative errors."""

    method: str
    seconds: float
    hvps_per_step: float
    max_error: float
    median_error: float


@dataclass(frozen=True)
class Protocol:
    """One protocol's search over c for one point: runs, HVPs, seconds, critical values."""

    name: str
    runs: int
    hvps: int
    seconds: float
    critical: dict[str, float | None]


class HalfMeanSquaredError(nn.MSELoss):
    """L = 1/(2Bk) sum_i sum_a (f_a(x_i) - y_ia)^2: half of torch's MSELoss(reduction='mean'), the
    project's MSE (docs/PROTOCOL.md section 1); a module with ``reduction`` as curvlinops needs."""

    def __init__(self) -> None:
        super().__init__(reduction="mean")

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return 0.5 * super().forward(outputs, targets)


def missing_peers() -> list[str]:
    """The peer packages that cannot be imported here."""
    return [name for name in PEERS if importlib.util.find_spec(name) is None]


def default_dataset() -> str:
    """Fashion-MNIST where the Debian copy is installed, else scikit-learn's digits."""
    return "fashion_mnist" if FASHION_MNIST.is_dir() else "digits"


# --- parts 1 and 2: one sharpness problem --------------------------------------------------
def peer_problem(sizes: Sizes) -> Experiment:
    """``prepare`` of the FCN of parts 1-2: every training example in the measurement batch."""
    config = TrainConfig.build(
        depth=sizes.depth,
        width=sizes.peer_width,
        dataset=sizes.dataset,
        n_train=sizes.peer_examples,
        measure_size=sizes.peer_examples,
        batch_size=sizes.batch_size,
        steps=sizes.steps,
        barrier=False,
    )
    return prepare(config)


def module_at(experiment: Experiment, theta: torch.Tensor) -> nn.Module:
    """A copy of the experiment's torch module holding the flat parameters theta."""
    module = copy.deepcopy(experiment.model.module)
    nn.utils.vector_to_parameters(theta.detach().clone(), [p for p in module.parameters() if p.requires_grad])
    return module


def measurement_data(experiment: Experiment) -> tuple[torch.Tensor, torch.Tensor]:
    ((x, y),) = experiment.probe.measure_batch.chunks
    return x, y


def reference_solver(experiment: Experiment) -> Callable[[torch.Tensor, torch.Tensor], tuple[float, torch.Tensor]]:
    """(theta, start) -> (lambda_max, eigenvector) of H on the measurement batch, in float64, to residual 1e-9."""
    model64, _ = flatten_module(copy.deepcopy(experiment.model.module), dtype=torch.float64)
    x, y = measurement_data(experiment)
    batch64 = Batch.of(x.double(), y.double())

    def solve(theta: torch.Tensor, start: torch.Tensor) -> tuple[float, torch.Tensor]:
        result, _ = top_hessian_eigenpair(
            model64, mse, theta.double(), batch64, start, REFERENCE_TOL, REFERENCE_MAX_ITER
        )
        if not bool(result.converged):
            raise RuntimeError(
                f"reference solve did not reach residual {REFERENCE_TOL} in {REFERENCE_MAX_ITER} products"
            )
        return float(result.value), result.vector

    return solve


def earlyphase_solve(
    experiment: Experiment, theta: torch.Tensor, start: torch.Tensor, tol: float = TOL
) -> tuple[float, torch.Tensor, int]:
    """(value, vector, HVPs) of earlyphase's Lanczos to relative residual ``tol`` on the measurement batch from ``start``."""
    result, _ = top_hessian_eigenpair(
        experiment.model,
        mse,
        theta,
        experiment.probe.measure_batch,
        start,
        tol,
        experiment.config.measurement.lanczos_max_iter,
    )
    return float(result.value), result.vector, int(result.matvecs)


@contextmanager
def counted_pyhessian_products() -> Iterator[list[int]]:
    """Counts the calls of the product PyHessian's ``eigenvalues`` uses (``hessian_vector_product``)."""
    library = importlib.import_module("pyhessian.hessian")  # the module (the package exports a class of that name)
    original, calls = library.hessian_vector_product, [0]

    def counted(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    library.hessian_vector_product = counted
    try:
        yield calls
    finally:
        library.hessian_vector_product = original


def pyhessian_solve(module: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int = 0) -> tuple[float, list, int]:
    """(value, vector, HVPs) of ``hessian(module, criterion, data=(x, y), cuda=False).eigenvalues(top_n=1)``
    (torch's global RNG seeded with ``seed`` for its random start)."""
    from pyhessian import hessian

    module.zero_grad(set_to_none=True)  # its backward accumulates into .grad
    torch.manual_seed(seed)
    with counted_pyhessian_products() as calls:
        values, vectors = hessian(module, HalfMeanSquaredError(), data=(x, y), cuda=False).eigenvalues(top_n=1)
    module.zero_grad(set_to_none=True)
    return float(values[0]), vectors[0], calls[0]


def pyhessian_warm_solve(module: nn.Module, x: torch.Tensor, y: torch.Tensor, start: list) -> tuple[float, list, int]:
    """PyHessian's power-iteration loop (``eigenvalues``: v <- Hv / |Hv| at most 100 times, until two
    Rayleigh quotients v.Hv differ by < 1e-3 relative; it returns the earlier one) from ``start``."""
    from pyhessian import hessian
    from pyhessian.utils import group_product, hessian_vector_product, normalization, orthnormal

    module.zero_grad(set_to_none=True)
    computer = hessian(module, HalfMeanSquaredError(), data=(x, y), cuda=False)
    vector, value, hvps = normalization(start), None, 0
    for _ in range(100):
        vector = orthnormal(vector, [])
        product = hessian_vector_product(computer.gradsH, computer.params, vector)
        hvps += 1
        quotient = group_product(product, vector).item()
        vector = normalization(product)
        if value is not None and abs(value - quotient) / (abs(value) + 1e-6) < TOL:
            break
        value = quotient
    module.zero_grad(set_to_none=True)
    return float(value), vector, hvps


def eigsh_solve(
    module: nn.Module, x: torch.Tensor, y: torch.Tensor, start: np.ndarray, tol: float
) -> tuple[float, int]:
    """(value, HVPs) of scipy's ``eigsh(k=1, which='LA', tol, v0=start)`` on curvlinops' Hessian operator."""
    from curvlinops import HessianLinearOperator
    from scipy.sparse.linalg import LinearOperator, eigsh

    params = [p for p in module.parameters() if p.requires_grad]
    operator = HessianLinearOperator(
        module, HalfMeanSquaredError(), params, [(x, y)], check_deterministic=False, num_data=len(x)
    ).to_scipy(np.float64)
    calls = [0]

    def product(vector: np.ndarray) -> np.ndarray:
        calls[0] += 1
        return operator.matvec(vector)

    values, _ = eigsh(
        LinearOperator(operator.shape, matvec=product, dtype=np.float64), k=1, which="LA", tol=tol, v0=start
    )
    return float(values[0]), calls[0]


def without_vector(solve: tuple[float, object, int]) -> tuple[float, int]:
    """(value, HVPs) of a (value, vector, HVPs) solve."""
    value, _, hvps = solve
    return value, hvps


def cold_solves(experiment: Experiment, rounds: int) -> list[Solve]:
    """Part 1: every method once per round at theta_0 from its cold start; the reference first."""
    theta = experiment.theta0
    x, y = measurement_data(experiment)
    start = random_start(experiment.num_params, experiment.config.seeds.init, theta.device)
    started = time.perf_counter()
    reference, _ = reference_solver(experiment)(theta, start)
    reference_seconds = time.perf_counter() - started
    module = module_at(experiment, theta)
    methods: dict[str, Callable[[], tuple[float, int]]] = {
        f"earlyphase Lanczos (tol {TOL:g})": lambda: without_vector(earlyphase_solve(experiment, theta, start)),
        f"earlyphase Lanczos (tol {LOOSE_TOL:g})": lambda: without_vector(
            earlyphase_solve(experiment, theta, start, LOOSE_TOL)
        ),
        "PyHessian eigenvalues(top_n=1)": lambda: without_vector(pyhessian_solve(module, x, y)),
        f"curvlinops + eigsh LA (tol {TOL:g})": lambda: eigsh_solve(module, x, y, start.numpy(), TOL),
        "curvlinops + eigsh LA (tol 0, default)": lambda: eigsh_solve(module, x, y, start.numpy(), 0.0),
    }
    timed = best_of_each(methods, rounds)
    rows = [Solve(f"reference: float64 Lanczos (tol {REFERENCE_TOL:g})", reference, 0.0, -1, reference_seconds)]
    for name, (seconds, (value, hvps)) in timed.items():
        rows.append(Solve(name, value, abs(value - reference) / abs(reference), hvps, seconds))
    return rows


def tracking(experiment: Experiment, c: float) -> list[Tracking]:
    """Part 2: the sharpness at each theta_t of ``run_at_c(experiment, c)``, methods interleaved per step."""
    thetas: list[torch.Tensor] = []
    run_at_c(experiment, c, on_step=lambda t, theta: thetas.append(theta.clone()))
    x, y = measurement_data(experiment)
    modules = [module_at(experiment, theta) for theta in thetas]
    reference_solve = reference_solver(experiment)
    reference_vector = experiment.initial.sharpness.vector
    references = []
    for theta in thetas:
        value, reference_vector = reference_solve(theta, reference_vector)
        references.append(value)
    initial = experiment.initial.sharpness.vector
    state = {
        "earlyphase": initial,
        "earlyphase loose": initial,
        "pyhessian": pyhessian_solve(module_at(experiment, experiment.theta0), x, y)[1],
    }

    def earlyphase_warm(t: int) -> tuple[float, int]:
        value, state["earlyphase"], hvps = earlyphase_solve(experiment, thetas[t], state["earlyphase"])
        return value, hvps

    def earlyphase_loose_warm(t: int) -> tuple[float, int]:
        value, state["earlyphase loose"], hvps = earlyphase_solve(
            experiment, thetas[t], state["earlyphase loose"], LOOSE_TOL
        )
        return value, hvps

    def pyhessian_cold(t: int) -> tuple[float, int]:
        value, _, hvps = pyhessian_solve(modules[t], x, y)
        return value, hvps

    def pyhessian_warm(t: int) -> tuple[float, int]:
        value, state["pyhessian"], hvps = pyhessian_warm_solve(modules[t], x, y, state["pyhessian"])
        return value, hvps

    methods = {
        f"earlyphase Lanczos, warm (tol {TOL:g})": earlyphase_warm,
        f"earlyphase Lanczos, warm (tol {LOOSE_TOL:g})": earlyphase_loose_warm,
        "PyHessian eigenvalues(), from scratch": pyhessian_cold,
        "PyHessian's power loop, warm": pyhessian_warm,
    }
    seconds = dict.fromkeys(methods, 0.0)
    values: dict[str, list[float]] = {name: [] for name in methods}
    hvps: dict[str, list[int]] = {name: [] for name in methods}
    for t in range(len(thetas)):  # interleaved step by step: a shared machine's load falls on all alike
        for name, method in methods.items():
            started = time.perf_counter()
            value, count = method(t)
            seconds[name] += time.perf_counter() - started
            values[name].append(value)
            hvps[name].append(count)
    rows = []
    for name in methods:
        errors = np.abs(np.array(values[name]) - references) / np.abs(references)
        rows.append(
            Tracking(name, seconds[name], float(np.mean(hvps[name])), float(errors.max()), float(np.median(errors)))
        )
    return rows


# --- part 3: the authors' protocol vs the sweep path ---------------------------------------
def authors_protocol(config: TrainConfig) -> Protocol:
    """``earlyphase.empirical.authors_protocol`` on ``config``'s data and initialisation, lambda_H0 on
    min(AUTHORS_LAMBDA0_BATCH, n) examples, c = 2^x, x = 0, 0.1, ... until the first divergence (or
    x = X_MAX); thresholds read by ``critical_values``."""
    started = time.perf_counter()
    experiment = authors.prepare(config.replace(measure_size=AUTHORS_LAMBDA0_BATCH))
    cs, flags = [], []
    hvps = int(experiment.initial_sharpness.matvecs)
    for k in range(round(X_MAX / 0.1) + 1):
        record = authors.run_at_c(experiment, grid_point(k))
        hvps += record.step_hvps
        cs.append(record.c)
        flags.append(flags_of(record, config.protocol.epsilon))
        if record.diverged:
            break
    critical = critical_values(
        cs,
        [flag.loss_catapult for flag in flags],
        [flag.sharpness_catapult for flag in flags],
        [flag.diverged for flag in flags],
        [bool(flag.barrier) for flag in flags],
    )
    estimates = {name: getattr(critical, name).estimate for name in CRITICAL_NAMES}
    return Protocol("authors' protocol (grid)", len(cs), hvps, time.perf_counter() - started, estimates)


def sweep_spec(config: TrainConfig):
    """The one-point bisection sweep of ``config`` (the sweep's defaults otherwise)."""
    return spec_from_mapping(
        {
            "model": {
                "arch": config.model.arch,
                "depths": [config.model.depth],
                "widths": [config.model.width],
                "activation": config.model.activation,
            },
            "data": {
                "dataset": config.data.dataset,
                "n_train": config.data.n_train,
                "measure_size": config.data.measure_size,
            },
            "protocol": {
                "batch_size": config.protocol.batch_size,
                "steps": config.protocol.steps,
                "loss": config.protocol.loss,
            },
            "seeds": {"init": [config.seeds.init], "sgd": [config.seeds.sgd]},
            "search": {"method": "bisect", "x_min": 0.0, "x_max": X_MAX},
        }
    )


def earlyphase_search(config: TrainConfig, root: Path) -> Protocol:
    """The sweep worker's search of the one point of ``sweep_spec(config)`` into a fresh store at ``root``."""
    spec = sweep_spec(config)
    (point,) = spec.points()
    open_store(root, spec)
    started = time.perf_counter()
    summary = search_point(PointTask(str(root), spec, point))
    seconds = time.perf_counter() - started
    estimates = {name: summary["critical"][name]["estimate"] for name in CRITICAL_NAMES}
    return Protocol("earlyphase sweep (bisect)", summary["runs_computed"], summary["hvps"], seconds, estimates)


def protocols(config: TrainConfig) -> list[Protocol]:
    """Part 3: earlyphase's search, the authors' grid, earlyphase's search again (the load drifts)."""
    load_training_data(config)  # the first load fills the data cache: every protocol below then loads alike
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as scratch:
        first = earlyphase_search(config, Path(scratch) / "first")
        authors = authors_protocol(config)
        second = earlyphase_search(config, Path(scratch) / "second")
    return [first, authors, replace(second, name=second.name + ", again")]


# --- printing -------------------------------------------------------------------------------
def print_solves(rows: list[Solve]) -> None:
    ours = next(row for row in rows if row.method.startswith("earlyphase"))
    print(
        f"    {'method':42s} {'value':>12s} {'rel. error':>10s} {'HVPs':>5s} {'seconds':>8s} {'time / earlyphase':>17s}"
    )
    for row in rows:
        hvps = "" if row.hvps < 0 else str(row.hvps)
        print(
            f"    {row.method:42s} {row.value:12.6f} {row.error:10.2e} {hvps:>5s} {row.seconds:8.3f} {row.seconds / ours.seconds:17.2f}"
        )


def print_tracking(rows: list[Tracking], steps: int) -> None:
    ours = rows[0]
    print(
        f"    {'method':42s} {'seconds':>8s} {'s / step':>8s} {'HVPs / step':>11s} {'max error':>9s} {'median':>8s} {'time / earlyphase':>17s}"
    )
    for row in rows:
        print(
            f"    {row.method:42s} {row.seconds:8.2f} {row.seconds / steps:8.3f} {row.hvps_per_step:11.1f} "
            f"{row.max_error:9.2e} {row.median_error:8.2e} {row.seconds / ours.seconds:17.2f}"
        )


def print_protocols(rows: list[Protocol]) -> None:
    print(
        f"    {'protocol':36s} {'runs':>4s} {'HVPs':>6s} {'seconds':>8s} {'s / run':>7s} "
        + " ".join(f"{name:>9s}" for name in CRITICAL_NAMES)
    )
    for row in rows:
        values = " ".join(
            f"{'-' if row.critical[n] is None else format(row.critical[n], '.4g'):>9s}" for n in CRITICAL_NAMES
        )
        print(
            f"    {row.name:36s} {row.runs:4d} {row.hvps:6d} {row.seconds:8.2f} {row.seconds / row.runs:7.3f} {values}"
        )
    authors = rows[1]
    ours = statistics.mean(row.seconds for row in rows if row is not authors)
    ours_per_run = statistics.mean(row.seconds / row.runs for row in rows if row is not authors)
    same = all(row.critical == authors.critical for row in rows)
    print(
        f"    whole search: authors / earlyphase (mean of its two) = {authors.seconds / ours:.2f}x (target >= 10x); "
        f"per run: {authors.seconds / authors.runs / ours_per_run:.2f}x (target >= 2x); "
        f"runs {authors.runs} vs {rows[0].runs}; same critical values: {same}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--width", type=int, help="part 3: FCN width (default 128; --quick 32)")
    parser.add_argument("--n-train", type=int, help="part 3: training examples (default 2048; --quick 1024)")
    parser.add_argument(
        "--measure-size", type=int, help="part 3: earlyphase's measurement batch (default 1024; --quick 256)"
    )
    parser.add_argument(
        "--rounds", type=int, help="part 1: interleaved timing rounds, the fastest kept (default 3; --quick 1)"
    )
    parser.add_argument(
        "--parts", default="cold,track,protocols", help="comma-separated subset of cold, track, protocols"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in under a minute")
    args = parser.parse_args()
    parts = set(filter(None, args.parts.split(",")))
    if parts - {"cold", "track", "protocols"}:
        raise SystemExit(f"--parts takes cold, track, protocols; got {args.parts!r}")
    torch.set_num_threads(args.threads)
    # PyHessian builds its gradient graph by backward(create_graph=True); its solves reset .grad after use
    warnings.filterwarnings("ignore", message=r"Using backward\(\) with create_graph=True")
    sizes = Sizes(default_dataset(), **(QUICK if args.quick else {}))
    overrides = {"width": args.width, "n_train": args.n_train, "measure_size": args.measure_size, "rounds": args.rounds}
    sizes = replace(sizes, **{key: value for key, value in overrides.items() if value is not None})
    if sizes.dataset == "digits":
        sizes = replace(sizes, n_train=min(sizes.n_train, DIGITS_EXAMPLES))
    load_start = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s); load average at start {load_start[0]:.2f} / {load_start[1]:.2f} / "
        f"{load_start[2]:.2f} (1 / 5 / 15 min); dataset {sizes.dataset}",
        flush=True,
    )
    missing = missing_peers()
    if parts & {"cold", "track"}:
        if missing:
            print(f"[1, 2] skipped: {', '.join(missing)} not installed (see this script's docstring)")
        else:
            experiment = peer_problem(sizes)
            print(
                f"[1] cold at theta_0: FCN d={sizes.depth} w={sizes.peer_width} ReLU, P = {experiment.num_params}, "
                f"{sizes.peer_examples} examples; fastest of {sizes.rounds} interleaved round(s)",
                flush=True,
            )
            if "cold" in parts:
                print_solves(cold_solves(experiment, sizes.rounds))
            if "track" in parts:
                print(
                    f"[2] tracking: {sizes.steps} SGD steps at c = {sizes.track_c} (B = {sizes.batch_size}), "
                    f"errors against float64 Lanczos (tol {REFERENCE_TOL:g}) at each theta_t",
                    flush=True,
                )
                print_tracking(tracking(experiment, sizes.track_c), sizes.steps)
    if "protocols" in parts:
        config = TrainConfig.build(
            depth=sizes.depth,
            width=sizes.width,
            dataset=sizes.dataset,
            n_train=sizes.n_train,
            measure_size=sizes.measure_size,
            batch_size=sizes.batch_size,
            steps=sizes.steps,
        )
        print(
            f"[3] protocols: FCN d={config.model.depth} w={config.model.width}, {config.data.n_train} training examples, "
            f"B = {config.protocol.batch_size}, T = {config.protocol.steps}; earlyphase measurement batch {config.data.measure_size}, "
            f"the authors' lambda_H0 batch min({AUTHORS_LAMBDA0_BATCH}, n); init and SGD seed 0",
            flush=True,
        )
        print_protocols(protocols(config))
    load_end = os.getloadavg()
    print(f"load average at end {load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f}")


if __name__ == "__main__":
    main()
