"""``earlyphase train``: train one network at eta = c / lambda_H0, tracking loss and sharpness."""

from __future__ import annotations

import argparse
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

HELP = "train one network at eta = c / lambda_H0, tracking loss and sharpness"
"""The one-line summary listed by ``earlyphase --help``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """The run's own options, then one flag per TrainConfig setting (``earlyphase.cli._flags``)."""
    from earlyphase.cli._flags import add_setting_flags
    from earlyphase.empirical.config import TrainConfig

    parser = subparsers.add_parser(
        "train",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run = parser.add_argument_group("run and output")
    run.add_argument(
        "--c", type=float, required=True, help="learning rate in units of 1/lambda_H0: eta = c / lambda_H0"
    )
    run.add_argument("--out", required=True, help="directory for the record STEM.parquet + STEM.json")
    run.add_argument(
        "--name",
        default=None,
        help="record stem inside --out (default: arch, depth, width, dataset, c, seeds and a hash of every other setting)",
    )
    run.add_argument(
        "--overwrite", action="store_true", help="replace a record of the same name holding a different configuration"
    )
    run.add_argument("--json", action="store_true", help="print one JSON object with the results instead of a table")
    run.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: all cores, torch's choice)"
    )
    add_setting_flags(parser, TrainConfig.settings())
    parser.set_defaults(run=run_train)


def config_from_args(args: argparse.Namespace):
    """The TrainConfig of the command line: the settings given, the defaults for the rest."""
    from earlyphase.cli._flags import given_settings
    from earlyphase.empirical.config import TrainConfig

    return TrainConfig.build(**given_settings(args, TrainConfig.settings()))


def record_stem(config, c: float) -> str:
    """Default record name, e.g. fcn_d4_w128_digits_c2.5_si0_ss0_sm0_3f2a9c1b04: the readable settings,
    then a hash of the whole configuration, so two configurations never share a name."""
    digest = hashlib.sha1(json.dumps(config.flat(), sort_keys=True).encode()).hexdigest()[:10]
    return (
        f"{config.model.arch}_d{config.model.depth}_w{config.model.width}_{config.data.dataset}_c{c:.6g}"
        f"_si{config.seeds.init}_ss{config.seeds.sgd}_sm{config.seeds.measure}_{digest}"
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
    new = {**json.loads(json.dumps(config.flat())), "c": c}
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
    if config.protocol.batch_size is not None and config.protocol.batch_size > n_train:
        note = f"note: batch size {config.protocol.batch_size} > n_train {n_train}: full-batch gradient descent on {n_train} examples (recorded as batch_size_used)"
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
    if config.measurement.ntk:
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
