"""``earlyphase train``: train one network at eta = c / lambda_H0, tracking loss and sharpness."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import sys
from pathlib import Path

from earlyphase.core.paths import check_output_dir, check_record_name
from earlyphase.core.validate import ConfigError, require_int

DESCRIPTION = """\
Train one network with SGD at learning rate eta = c / lambda_H0, where lambda_H0 is the
top Hessian eigenvalue (sharpness) at initialisation on a fixed measurement batch, and
record after every step: the loss on the evaluation set, the SGD batch loss, the
sharpness lambda_H_t (Lanczos, with residual and Hessian-vector-product count),
accuracy, and optionally the top NTK eigenvalue. The record (Parquet + JSON with the full
configuration, seeds, library versions and loss convention) is written to --out.

c < 2: the loss falls smoothly; 2 < c < c_max: catapults; c > c_max: divergence
(a diverged run is a result: exit status 0, diverged = true in the record).

examples:
  earlyphase train --arch fcn --depth 4 --width 128 --dataset digits --c 2.5 --steps 10 --out runs
  earlyphase train --arch cnn --depth 5 --width 64 --dataset cifar10 --data-path cifar10-jpeg.tar.gz \\
      --c 4 --steps 10 --measure-size 1024 --device cuda --out runs --json
  earlyphase train --depth 4 --width 256 --c 1.5 --steps 2000 --batch-size full \\
      --measure-every 20 --out runs      # long GD run: progressive sharpening, edge of stability
"""

MAX_TABLE_ROWS = 60


def _defaults() -> dict:
    from earlyphase.empirical.config import TrainConfig

    return {field.name: field.default for field in dataclasses.fields(TrainConfig)}


def _batch_size(text: str) -> int | None:
    if text.lower() in ("full", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"batch size must be an integer or 'full', got {text!r}") from None


HELP = "train one network at eta = c / lambda_H0, tracking loss and sharpness"
"""The one-line summary listed by ``earlyphase --help``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    from earlyphase.core.conventions import LOSS_CONVENTIONS, PARAMETERIZATIONS
    from earlyphase.empirical.config import BARRIER_SETS, DTYPES, EVAL_SETS
    from earlyphase.empirical.curvature.hvp import HVP_METHODS
    from earlyphase.empirical.models import ACTIVATIONS, ARCHITECTURES, READOUTS

    d = _defaults()
    parser = subparsers.add_parser(
        "train",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    net = parser.add_argument_group("network")
    net.add_argument("--arch", choices=ARCHITECTURES, default=d["arch"], help="architecture (default %(default)s)")
    net.add_argument(
        "--depth",
        type=int,
        default=d["depth"],
        help="number of weight layers (default %(default)s; cnn: >= 4, resnet18: 18)",
    )
    net.add_argument("--width", type=int, default=d["width"], help="hidden units / channels (default %(default)s)")
    net.add_argument("--activation", choices=sorted(ACTIVATIONS), default=d["activation"], help="default %(default)s")
    net.add_argument(
        "--sigma-w2",
        type=float,
        default=None,
        help="hidden-layer weight variance times fan-in (default 2 for relu, 1 otherwise)",
    )
    net.add_argument(
        "--readout",
        choices=READOUTS,
        default=d["readout"],
        help="readout initialisation: N(0,1/n), zero, or muP-like N(0,1/n^2) (default %(default)s)",
    )
    net.add_argument(
        "--parameterization", choices=PARAMETERIZATIONS, default=d["parameterization"], help="default %(default)s"
    )

    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default=d["dataset"],
        help="digits, mnist, fashion_mnist, cifar10 or synthetic (default %(default)s)",
    )
    data.add_argument("--data-path", default=None, help="file or directory holding the dataset (else the usual search)")
    data.add_argument("--n-train", type=int, default=None, help="training examples to use (default: all)")
    data.add_argument(
        "--measure-size",
        type=int,
        default=d["measure_size"],
        help="measurement batch size for the sharpness (default %(default)s; capped at n-train)",
    )
    data.add_argument(
        "--eval-set",
        choices=EVAL_SETS,
        default=d["eval_set"],
        help="where the loss L_t is measured (default %(default)s)",
    )

    run = parser.add_argument_group("training")
    run.add_argument(
        "--c", type=float, required=True, help="learning rate in units of 1/lambda_H0: eta = c / lambda_H0"
    )
    run.add_argument("--steps", type=int, default=d["steps"], help="SGD steps T (default %(default)s)")
    run.add_argument(
        "--batch-size",
        type=_batch_size,
        default=d["batch_size"],
        help="SGD batch size, or 'full' for gradient descent (default %(default)s)",
    )
    run.add_argument("--loss", choices=sorted(LOSS_CONVENTIONS), default=d["loss"], help="default %(default)s")
    run.add_argument("--momentum", type=float, default=d["momentum"], help="heavy-ball momentum (default %(default)s)")
    run.add_argument(
        "--loss-max", type=float, default=d["loss_max"], help="divergence bound L_max (default %(default)g)"
    )
    run.add_argument("--seed-init", type=int, default=d["seed_init"], help="initialisation seed (default %(default)s)")
    run.add_argument("--seed-sgd", type=int, default=d["seed_sgd"], help="SGD batch-order seed (default %(default)s)")
    run.add_argument(
        "--seed-measure", type=int, default=d["seed_measure"], help="measurement-batch seed (default %(default)s)"
    )

    measure = parser.add_argument_group("measurement")
    measure.add_argument(
        "--measure-every",
        type=int,
        default=d["measure_every"],
        help="sharpness every K steps and at the last (default %(default)s)",
    )
    measure.add_argument(
        "--ntk", action="store_true", help="also record lambda_max(NTK) / (B k) on the measurement batch"
    )
    measure.add_argument(
        "--no-barrier", action="store_true", help="skip the loss along the line theta_0 -> theta_T (c_barrier)"
    )
    measure.add_argument(
        "--barrier-set",
        choices=BARRIER_SETS,
        default=d["barrier_set"],
        help="where the line theta_0 -> theta_T is evaluated: measure (the measurement batch) or eval (the --eval-set) (default %(default)s)",
    )
    measure.add_argument(
        "--lanczos-tol",
        type=float,
        default=d["lanczos_tol"],
        help="relative residual |Hv - lambda v| / |lambda| (default %(default)g)",
    )
    measure.add_argument("--lanczos-max-iter", type=int, default=d["lanczos_max_iter"], help="default %(default)s")
    measure.add_argument(
        "--cold-start", action="store_true", help="do not warm-start Lanczos from the previous eigenvector"
    )
    measure.add_argument("--hvp-method", choices=HVP_METHODS, default=d["hvp_method"], help="default %(default)s")

    machine = parser.add_argument_group("machine and output")
    machine.add_argument("--device", default=d["device"], help="cpu, cuda or cuda:N (default %(default)s)")
    machine.add_argument("--dtype", choices=DTYPES, default=d["dtype"], help="network dtype (default %(default)s)")
    machine.add_argument(
        "--chunk-size", type=int, default=None, help="examples per forward pass (bounds memory; default: whole batches)"
    )
    machine.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: all cores, torch's choice)"
    )
    machine.add_argument("--out", required=True, help="directory for the record STEM.parquet + STEM.json")
    machine.add_argument(
        "--name",
        default=None,
        help="record stem inside --out (default: arch, depth, width, dataset, c, seeds and a hash of every other setting)",
    )
    machine.add_argument(
        "--overwrite", action="store_true", help="replace a record of the same name holding a different configuration"
    )
    machine.add_argument(
        "--json", action="store_true", help="print one JSON object with the results instead of a table"
    )
    parser.set_defaults(run=run_train)


def config_from_args(args: argparse.Namespace):
    """The TrainConfig described by the command line (validated by TrainConfig itself)."""
    from earlyphase.empirical.config import TrainConfig

    return TrainConfig(
        arch=args.arch,
        depth=args.depth,
        width=args.width,
        activation=args.activation,
        sigma_w2=args.sigma_w2,
        readout=args.readout,
        parameterization=args.parameterization,
        dataset=args.dataset,
        n_train=args.n_train,
        batch_size=args.batch_size,
        steps=args.steps,
        measure_size=args.measure_size,
        eval_set=args.eval_set,
        loss=args.loss,
        momentum=args.momentum,
        loss_max=args.loss_max,
        seed_init=args.seed_init,
        seed_sgd=args.seed_sgd,
        seed_measure=args.seed_measure,
        device=args.device,
        dtype=args.dtype,
        barrier=not args.no_barrier,
        barrier_set=args.barrier_set,
        ntk=args.ntk,
        measure_every=args.measure_every,
        lanczos_tol=args.lanczos_tol,
        lanczos_max_iter=args.lanczos_max_iter,
        warm_start=not args.cold_start,
        hvp_method=args.hvp_method,
        chunk_size=args.chunk_size,
        data_path=args.data_path,
    )


def record_stem(config, c: float) -> str:
    """Default record name, e.g. fcn_d4_w128_digits_c2.5_si0_ss0_sm0_3f2a9c1b04: the readable settings,
    then a hash of the whole configuration, so two configurations never share a name."""
    digest = hashlib.sha1(json.dumps(dataclasses.asdict(config), sort_keys=True).encode()).hexdigest()[:10]
    return (
        f"{config.arch}_d{config.depth}_w{config.width}_{config.dataset}_c{c:.6g}"
        f"_si{config.seed_init}_ss{config.seed_sgd}_sm{config.seed_measure}_{digest}"
    )


def check_record_free(stem: Path, config, c: float) -> None:
    """ConfigError when STEM.json holds a run of another configuration or c (``--overwrite`` replaces it)."""
    meta = stem.with_name(stem.name + ".json")
    if not meta.is_file():
        return
    try:
        stored = json.loads(meta.read_text())
        old = {**stored["config"], "c": stored["c"]}
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(
            f"--name: {meta} exists and is not a record; choose another --name or pass --overwrite", "name"
        ) from None
    new = {**json.loads(json.dumps(dataclasses.asdict(config))), "c": c}
    changed = [f"{key}: {old.get(key)!r} -> {value!r}" for key, value in new.items() if old.get(key) != value]
    if changed:
        raise ConfigError(
            f"--name: {meta} holds a different run ({'; '.join(changed)}); choose another --name or pass --overwrite",
            "name",
        )


def _finite_or_none(values) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values]


def summary(trajectory, record: Path) -> dict:
    """The JSON printed by --json: scalars of the run and its per-step lists (NaN -> null)."""
    steps = trajectory.steps
    return {
        "c": trajectory.c,
        "eta": trajectory.eta,
        "lambda0": trajectory.lambda0,
        "loss0": trajectory.loss0,
        "two_over_eta": 2.0 / trajectory.eta,
        "diverged": trajectory.diverged,
        "divergence_step": trajectory.divergence_step,
        "barrier_loss": None if math.isnan(trajectory.barrier_loss) else trajectory.barrier_loss,
        "barrier_reference": trajectory.barrier_reference,
        "losses": _finite_or_none(trajectory.loss),
        "batch_losses": _finite_or_none(steps["batch_loss"]),
        "sharpness": _finite_or_none(trajectory.sharpness),
        "sharpness_residual": _finite_or_none(steps["sharpness_residual"]),
        "hvp_count": _finite_or_none(steps["hvp_count"]),
        "ntk_top": _finite_or_none(steps["ntk_top"]),
        "accuracy": _finite_or_none(steps["accuracy"]),
        "loss_convention": trajectory.loss_convention,
        "record": str(record),
    }


def run_train(args: argparse.Namespace) -> int:
    import torch

    from earlyphase.empirical.training import prepare, run_at_c

    if args.threads is not None:
        torch.set_num_threads(require_int("threads", args.threads, minimum=1))
    config = config_from_args(args)
    name = record_stem(config, args.c) if args.name is None else check_record_name(args.name, "--name")
    stem = check_output_dir(args.out, "--out") / name
    if not args.overwrite:
        check_record_free(stem, config, args.c)
    experiment = prepare(config)
    n_train = len(experiment.train_x)
    if config.batch_size is not None and config.batch_size > n_train:
        note = f"note: batch size {config.batch_size} > n_train {n_train}: full-batch gradient descent on {n_train} examples (recorded as batch_size_used)"
        print(note, file=sys.stderr if args.json else sys.stdout)
    trajectory = run_at_c(experiment, args.c, progress=not args.json)
    try:
        record = trajectory.save(stem)
    except OSError as error:  # e.g. a full disk: nothing was replaced, the temporaries are gone
        raise ConfigError(
            f"--out: writing the record {stem} failed ({error.strerror or error}); no file was replaced", "out"
        ) from None
    if args.json:
        print(json.dumps(summary(trajectory, record)))
        return 0
    print(f"lambda_H0 = {trajectory.lambda0:.6g}   L_0 = {trajectory.loss0:.6g}   ({trajectory.loss_convention})")
    print(f"c = {trajectory.c:.6g}   eta = {trajectory.eta:.6g}   2/eta = {2.0 / trajectory.eta:.6g}")
    columns = ["step", "loss", "batch_loss", "sharpness", "sharpness_residual", "hvp_count", "accuracy"]
    if config.ntk:
        columns.insert(5, "ntk_top")
    table = trajectory.steps[columns]
    if len(table) > MAX_TABLE_ROWS:  # long runs: the measured steps only
        table = table[table["sharpness"].notna() | (table["step"] == table["step"].iloc[-1])]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    if trajectory.diverged:
        print(f"diverged at step {trajectory.divergence_step}")
    elif not math.isnan(trajectory.barrier_loss):
        print(
            f"max loss on the line theta_0 -> theta_T: {trajectory.barrier_loss:.6g} (at theta_0: {trajectory.barrier_reference:.6g})"
        )
    print(f"record: {record}")
    return 0
