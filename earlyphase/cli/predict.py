"""``earlyphase predict``: critical learning-rate constants predicted by the solvable models, or
from a real network's initialisation (``--model init``)."""

from __future__ import annotations

import argparse
import json
import math

from earlyphase.core.validate import ConfigError

DESCRIPTION = """\
Predict the critical learning-rate constants of early training from a solvable model,
with the protocol of the real networks: eta = c / lambda_H0 (lambda_H0: the model's own top
Hessian eigenvalue, MSE L = 1/(2 n k) sum (f - y)^2), T steps of gradient descent from each
seed's initialisation, c = 2^x for x = 0, 0.1, 0.2, ... up to the first divergence.

  c_loss   smallest c at which the loss rises above L_0 in the first T steps (loss catapult)
  c_sharp  smallest c at which the sharpness rises above lambda_H0 (sharpness catapult)
  c_max    largest c that does not diverge (loss non-finite or above --loss-max)
  c_barrier smallest trainable c whose straight path theta_0 -> theta_T has a loss above L_0

Each is reported as the seed mean and spread over the seeds where it was found, the mean
bracketing grid values (low, high) of those seeds, and the median over all seeds with "not
found above the range" counted as infinite ("> c" when that median lies above the range).

models:
  uv      f = v.u / sqrt(w) (Lewkowycz et al. 2020); c_loss -> 2, c_max -> 4 as w grows
  linear  depth-d linear network of width w (d = 2 with --parameterization ntk is the uv
          model), n orthogonal examples, k outputs; exact sharpness by Lanczos
  init    YOUR network (the flags of `earlyphase train`: --arch, --depth, --width, --dataset,
          --seed-init, ...): measured once at its initialisation theta_0, then predicted by
            lookahead      the first SGD step's ray theta_0 - (c / lambda_H0) g_0 (c_loss, c_sharp)
                           and T-step runs without sharpness solves (c_max); recommended
            analytic       c_loss of the ray with the ReLU gates frozen (a polynomial in c)
            calibrated_uv  the uv map with its scales set from the top NTK mode and the
                           sharpness slope at theta_0
            lazy           the infinite-width baseline: c_loss just above 2, c_max = 2
            uv, linear     the solvable models at the same width and depth (slow: seconds to
                           a minute of compilation; --predictors all)
          --from-sweep DIR predicts every (depth, width, seed) of a finished sweep and writes
          DIR/predicted_vs_measured.csv (compare it with `earlyphase compare DIR --predicted`).

examples:
  earlyphase predict --model uv --width 1024 --seeds 32
  earlyphase predict --model linear --depth 4 --width 64 --json
  earlyphase predict --model linear --depth 6 --width 32 --ratio-at 2.5
  earlyphase predict --model linear --grid --depths 2,4,8 --widths 16,64,256 --out theory.csv
  earlyphase predict --model init --depth 8 --width 32 --dataset digits --seed-init 1
  earlyphase predict --model init --arch cnn --depth 5 --width 16 --dataset cifar10 --json
  earlyphase predict --model init --from-sweep results/fcn_cifar10_cpu
"""

HELP = "critical learning rates (c_loss, c_sharp, c_max, c_barrier) predicted by the uv / deep linear models"
"""The one-line summary listed by ``earlyphase --help``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """The options of ``earlyphase predict``; every default is the library's (``PredictConfig``)."""
    from earlyphase.theory.predict import GRID_DEPTHS, GRID_WIDTHS, PredictConfig

    parser = subparsers.add_parser(
        "predict",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model = parser.add_argument_group("model")
    model.add_argument("--model", default=PredictConfig.model, help="uv, linear or init (default %(default)s)")
    model.add_argument(
        "--depth",
        type=int,
        default=None,
        help=f"number of weight layers d >= 2 (default {PredictConfig.depth}; uv: 2; init: as `earlyphase train`)",
    )
    model.add_argument(
        "--width",
        type=int,
        default=None,
        help=f"hidden units w >= 1 (default {PredictConfig.width}; init: as `earlyphase train`)",
    )
    model.add_argument(
        "--examples",
        type=int,
        default=PredictConfig.examples,
        help="training examples n (orthogonal inputs; default %(default)s)",
    )
    model.add_argument("--outputs", type=int, default=PredictConfig.outputs, help="outputs k (default %(default)s)")
    model.add_argument(
        "--parameterization",
        default=None,
        help="standard (W ~ N(0, sigma^2/fan_in)) or ntk (W ~ N(0,1), times sigma/sqrt(fan_in)); "
        "default: standard for linear, ntk for uv",
    )
    model.add_argument(
        "--sigma-w2",
        type=float,
        default=None,
        help=f"input/hidden weight variance times fan-in (default {PredictConfig.sigma_w2}; init: 2 for relu, 1 otherwise)",
    )
    model.add_argument(
        "--target",
        type=float,
        default=PredictConfig.target,
        help="target y of every example and output (default %(default)s)",
    )

    protocol = parser.add_argument_group("protocol")
    protocol.add_argument(
        "--seeds", type=int, default=PredictConfig.seeds, help="initialisations (default %(default)s)"
    )
    protocol.add_argument(
        "--first-seed",
        type=int,
        default=PredictConfig.first_seed,
        help="seeds are first-seed .. first-seed + seeds - 1 (default %(default)s)",
    )
    protocol.add_argument("--steps", type=int, default=None, help=f"early window T (default {PredictConfig.steps})")
    protocol.add_argument(
        "--epsilon",
        type=float,
        default=None,
        help=f"sharpness catapult: lambda_t/lambda_0 > 1 + epsilon (default {PredictConfig.epsilon})",
    )
    protocol.add_argument(
        "--loss-max", type=float, default=None, help=f"divergence bound L_max (default {PredictConfig.loss_max:g})"
    )
    protocol.add_argument(
        "--x-min", type=float, default=PredictConfig.x_min, help="smallest log2 c scanned (default %(default)s)"
    )
    protocol.add_argument(
        "--x-max", type=float, default=PredictConfig.x_max, help="largest log2 c scanned (default %(default)s)"
    )
    protocol.add_argument(
        "--ratio-at",
        type=float,
        default=None,
        metavar="C",
        help="also report lambda_T / lambda_0 after T steps at this c",
    )

    grid = parser.add_argument_group("grid of depths and widths")
    grid.add_argument(
        "--grid", action="store_true", help="predict every (depth, width) of --depths x --widths and write a table"
    )
    grid.add_argument(
        "--depths",
        default=None,
        help=f"comma-separated depths (default {_comma(GRID_DEPTHS)}; uv: 2, the only depth it has)",
    )
    grid.add_argument("--widths", default=_comma(GRID_WIDTHS), help="comma-separated widths (default %(default)s)")
    grid.add_argument(
        "--out", default="predicted_critical_values.csv", help="table path, .csv or .parquet (default %(default)s)"
    )

    add_init_flags(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object (grid: a list of rows)")
    parser.set_defaults(run=run)


SHARED_WITH_THEORY = ("depth", "width", "sigma_w2", "parameterization", "steps", "epsilon", "loss_max")
"""TrainConfig settings whose flags the solvable models' options above already define (default None:
``--model init`` then takes TrainConfig's default)."""
INIT_DEFAULT_PREDICTORS = "lookahead,analytic,calibrated_uv,lazy"


def init_settings() -> list:
    """The TrainConfig settings that ``--model init`` takes as flags of their own."""
    from earlyphase.empirical.config import TrainConfig

    return [setting for setting in TrainConfig.settings() if setting.name not in SHARED_WITH_THEORY]


def add_init_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of ``--model init``: every TrainConfig setting, as in ``earlyphase train``."""
    from earlyphase.cli._flags import add_setting_flags

    group = parser.add_argument_group(
        "your network (--model init): the settings of `earlyphase train`, same flags and defaults",
        "--depth, --width, --sigma-w2, --parameterization, --steps, --epsilon and --loss-max above apply too",
    )
    group.add_argument(
        "--predictors",
        default=INIT_DEFAULT_PREDICTORS,
        help="comma-separated: lookahead, analytic, calibrated_uv, lazy, uv, linear, or 'all' (default %(default)s)",
    )
    group.add_argument(
        "--lookahead-steps", type=int, default=None, help="K of the look-ahead's c_max runs (default: --steps)"
    )
    group.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    group.add_argument(
        "--from-sweep", metavar="DIR", default=None, help="predict every network of a finished sweep in DIR"
    )
    add_setting_flags(parser, init_settings(), title="your network: ")


def _comma(values: tuple[int, ...]) -> str:
    return ",".join(str(value) for value in values)


def _int_list(name: str, text: str) -> list[int]:
    try:
        values = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated integers, got {text!r}", name) from None
    if not values:
        raise ConfigError(f"{name} must list at least one value, got {text!r}", name)
    return values


def _grid_depths(args: argparse.Namespace) -> list[int]:
    """--depths, by default GRID_DEPTHS for linear and 2 for uv (ConfigError for other uv depths)."""
    from earlyphase.theory.predict import GRID_DEPTHS

    if args.depths is None:
        return [2] if args.model == "uv" else list(GRID_DEPTHS)
    depths = _int_list("--depths", args.depths)
    if args.model == "uv" and depths != [2]:
        raise ConfigError(
            f"--depths must be 2 for the uv model (f = v.u/sqrt(w) has two layers), got {args.depths!r}; "
            "use --model linear for deeper nets",
            "depths",
        )
    return depths


def _options(args: argparse.Namespace) -> dict:
    """The theory options given on the command line (the others keep PredictConfig's defaults)."""
    options = {
        "first_seed": args.first_seed,
        "examples": args.examples,
        "outputs": args.outputs,
        "target": args.target,
        "x_min": args.x_min,
        "x_max": args.x_max,
    }
    for name in ("steps", "sigma_w2", "epsilon", "loss_max", "parameterization"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return options


def _shape(args: argparse.Namespace) -> tuple[int, int]:
    from earlyphase.theory.predict import PredictConfig

    depth = PredictConfig.depth if args.depth is None else args.depth
    return depth, PredictConfig.width if args.width is None else args.width


def run(args: argparse.Namespace) -> int:
    from earlyphase.core.validate import require_choice, require_positive
    from earlyphase.theory.predict import MODELS

    if args.model == "init":
        from earlyphase.cli.predict_init import run_init

        return run_init(args)
    require_choice("model", args.model, (*MODELS, "init"))
    if args.ratio_at is not None:
        require_positive("c (--ratio-at)", args.ratio_at)
    if args.grid:
        return _run_grid(args, args.seeds)
    return _run_one(args, args.seeds)


def _run_one(args: argparse.Namespace, seeds: int) -> int:
    import numpy as np

    from earlyphase.theory.predict import predict_critical_values, sharpness_ratio

    depth, width = _shape(args)
    prediction = predict_critical_values(args.model, depth, width, seeds, progress=not args.json, **_options(args))
    result = prediction.as_dict()
    if args.ratio_at is not None:
        ratio = sharpness_ratio(args.model, depth, width, args.ratio_at, seeds, **_options(args))
        finite = ratio[~np.isnan(ratio)]
        result["sharpness_ratio"] = {
            "c": args.ratio_at,
            "mean": float(finite.mean()) if finite.size else None,
            "std": float(finite.std()) if finite.size else None,
            "diverged": int(ratio.size - finite.size),
            "per_seed": [None if math.isnan(r) else float(r) for r in ratio],
        }
    if args.json:
        print(json.dumps(result))
    else:
        print(_describe(result))
    return 0


def _run_grid(args: argparse.Namespace, seeds: int) -> int:
    from earlyphase.core.paths import check_output_file
    from earlyphase.theory.predict import PREDICTED, predict_grid

    depths, widths = _grid_depths(args), _int_list("--widths", args.widths)
    out = check_output_file(args.out, "--out")
    if out.suffix not in (".csv", ".parquet"):
        raise ConfigError(f"--out must end in .csv or .parquet, got {args.out!r}", "out")
    table = predict_grid(args.model, depths, widths, seeds, progress=True, **_options(args))
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        table.to_csv(out, index=False)
    else:
        table.to_parquet(out, index=False)
    if args.json:
        print(json.dumps(json.loads(table.to_json(orient="records"))))
        return 0
    wide = table.pivot_table(index=["depth", "width", "d_over_w"], columns="boundary", values="mean").reset_index()
    wide = wide.sort_values(["d_over_w", "depth"])[["depth", "width", "d_over_w", *PREDICTED]]
    print(wide.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {out} ({len(table)} rows: one per depth, width and boundary, seed means over {seeds} seeds)")
    return 0


def _describe(result: dict) -> str:
    from earlyphase.core import SeedSummary
    from earlyphase.theory.predict import PREDICTED

    lines = [
        f"{result['model']} model: d = {result['depth']}, w = {result['width']} (d/w = {result['d_over_w']:.4g}), "
        f"n = {result['examples']}, k = {result['outputs']}, {result['parameterization']} parameterisation, "
        f"y = {result['target']:g}, T = {result['steps']}, {len(result['seeds'])} seeds",
        f"  lambda_H0 = {result['lambda0']['mean']:.4g} +- {result['lambda0']['std']:.2g}"
        f"   L_0 = {result['loss0']['mean']:.4g} +- {result['loss0']['std']:.2g}",
    ]
    for name in PREDICTED:
        s = result[name]
        if s["mean"] is None:
            lines.append(f"  {name:<9} not found in c = 1 .. {result['grid']['c_scanned_max']:.3g} for any seed")
            continue
        bracket = f"bracket {_fmt(s['low'])} .. {_fmt(s['high'])}"
        median = f"median {SeedSummary(**s).describe_median()}"
        lines.append(
            f"  {name:<9}= {s['mean']:.3f} +- {s['std']:.3f}   {bracket}   {median}   (found for {s['found']}/{s['seeds']} seeds)"
        )
    ratio = result.get("sharpness_ratio")
    if ratio is not None:
        value = "all diverged" if ratio["mean"] is None else f"{ratio['mean']:.4f} +- {ratio['std']:.2g}"
        lines.append(f"  lambda_T / lambda_0 at c = {ratio['c']:g}: {value} ({ratio['diverged']} diverged)")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
