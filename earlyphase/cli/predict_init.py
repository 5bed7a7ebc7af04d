"""``earlyphase predict --model init``: a network's critical learning rates predicted from its initialisation."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from earlyphase.cli.predict import SHARED_WITH_THEORY, init_settings
from earlyphase.core.validate import ConfigError, require_int

ALL_PREDICTORS = "all"


def init_config(args: argparse.Namespace):
    """The TrainConfig of the command line: the settings given, TrainConfig's defaults for the rest."""
    from earlyphase.cli._flags import given_settings
    from earlyphase.empirical.config import TrainConfig

    shared = {name: getattr(args, name) for name in SHARED_WITH_THEORY if getattr(args, name) is not None}
    return TrainConfig.build(**shared, **given_settings(args, init_settings()))


def predictor_names(text: str) -> tuple[str, ...]:
    """--predictors: a comma-separated subset of the predictors, or 'all'."""
    from earlyphase.compare.init_predict import PREDICTORS

    if text.strip() == ALL_PREDICTORS:
        return PREDICTORS
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in PREDICTORS]
    if unknown or not names:
        raise ConfigError(
            f"--predictors must be a comma-separated subset of {', '.join(PREDICTORS)} or 'all', got {text!r}",
            "predictors",
        )
    return names


def run_init(args: argparse.Namespace) -> int:
    import torch

    from earlyphase.compare.init_predict import predict_from_init

    if args.threads is not None:
        torch.set_num_threads(require_int("threads", args.threads, minimum=1))
    predictors = predictor_names(args.predictors)
    steps = None if args.lookahead_steps is None else require_int("lookahead_steps", args.lookahead_steps, minimum=1)
    if args.from_sweep is not None:
        return _run_sweep(args.from_sweep, predictors, steps, progress=not args.json)
    from earlyphase.empirical.training import prepare

    experiment = prepare(init_config(args))
    prediction = predict_from_init(experiment, predictors, lookahead_steps=steps)
    result = prediction.as_json()
    if args.json:
        print(json.dumps(result, default=_json_default))
        return 0
    print(describe(result))
    return 0


def describe(result: dict) -> str:
    """The prediction as a few lines of text: the network, the measurements, one row per predictor."""
    config, m = result["config"], result["measurements"]
    lines = [
        f"{config['arch']} d = {config['depth']}, w = {config['width']} on {config['dataset']}"
        f" (seeds init {config['seed_init']}, sgd {config['seed_sgd']}, measure {config['seed_measure']};"
        f" {config['measure_batch_size']} examples in the measurement batch)",
        f"  at theta_0: lambda_H0 = {m['lambda0']:.4g}   L_0 = {m['loss0']:.4g}"
        f"   NTK top / (Bk) = {m['ntk_sharpness']:.4g}   kappa = d lambda / d eta = {m['kappa']:.4g}"
        + (
            "" if m.get("loss_top") is None else f"   L_0 carried by the top NTK mode: {m['loss_top'] / m['loss0']:.1%}"
        ),
        "",
        f"  {'predictor':<14} {'c_loss':>8} {'c_sharp':>8} {'c_max':>8}   {'HVPs':>5} {'grads':>5} {'fwds':>5} {'seconds':>8}",
    ]
    for name, row in result["predictors"].items():
        cost = row["cost"]
        values = " ".join(f"{_c(row[b]):>8}" for b in ("c_loss", "c_sharp", "c_max"))
        mark = "  <- recommended" if name == result["recommended"] else ""
        lines.append(
            f"  {name:<14} {values}   {cost['hvps']:>5} {cost['gradients']:>5} {cost['forwards']:>5} {cost['seconds']:>8.2f}{mark}"
        )
    notes = [(name, b, why) for name, row in result["predictors"].items() for b, why in row["not_predicted"].items()]
    if notes:
        lines.append("")
        lines += [f"  {name} {boundary}: {why}" for name, boundary, why in notes if boundary != "c_barrier"]
    lines.append("  '-': not predicted, or not reached in the scanned range c = 1 .. 64 (see --json for brackets)")
    return "\n".join(lines)


def _run_sweep(directory: str, predictors: tuple[str, ...], steps: int | None, progress: bool) -> int:
    from earlyphase.compare.init_sweep import PREDICTED_VS_MEASURED_FILE, predict_sweep_dir
    from earlyphase.compare.per_seed import format_per_seed_summary, per_seed_summary
    from earlyphase.core.paths import check_output_file

    check_output_file(Path(directory) / PREDICTED_VS_MEASURED_FILE, "--from-sweep")
    table = predict_sweep_dir(directory, predictors, steps, progress)
    print(format_per_seed_summary(per_seed_summary(table)))
    print(f"wrote {directory}/{PREDICTED_VS_MEASURED_FILE} ({len(table)} rows)")
    return 0


def _c(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3g}"


def _json_default(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)
