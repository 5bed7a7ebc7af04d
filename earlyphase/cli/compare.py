"""``earlyphase compare``: measured phase boundaries of a sweep against a theory model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
Read the critical values of a finished sweep (RESULTS_DIR/critical_values.csv, written by
`earlyphase sweep`), predict the same critical values with a theory model at the same depths
and widths, and draw the phase diagram: c = eta * lambda_H0 (log2 axis) against d/w and against
1/w at one depth, measured boundaries as markers with seed error bars, the phases shaded, the
theory as curves, dashed lines at c = 2 and c = 4. Prints the seed-averaged critical values,
the agreement table (theory vs measurement in log2 units, one verdict per boundary), the d/w
collapse of c_loss and the seed spread of c_loss against the initial loss L0.

Theories: uv (the uv model at width w; it has no depth) or linear (deep linear networks of
the same depth and width, on one example). `--theory none` draws the measurement alone.

--control DIR (repeatable): draw a second sweep of the same architecture over the diagram, e.g.
the same (d, w) and seeds with the zero readout (`earlyphase sweep SPEC --readout zero`): its
boundaries as hollow markers on dotted lines, named in the legend by the settings its spec
changes ("readout = zero"), and its critical values in the report.

--collapse FILE: also draw c_loss against d/w, one marker per depth, the sweep and each control
in its own colour: if c_loss depends on d and w only through d/w, the depths fall on one curve.

--predicted: instead, draw the per-seed predictions from the initialisation
(RESULTS_DIR/predicted_vs_measured.csv, written by `earlyphase predict --model init
--from-sweep RESULTS_DIR`) against the measured values: log2 axes, the diagonal with bands of
one and two grid steps, one panel per boundary, one colour per predictor; and print per
predictor and boundary the median and rms of log2(predicted / measured), the fraction of seeds
within one and two grid steps, and the Spearman correlations (across all seeds, within (d, w)).
"""


HELP = "overlay a theory's predicted phase boundaries on a sweep's measured ones"
"""The one-line summary listed by ``earlyphase --help``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("results_dir", metavar="RESULTS_DIR", help="a results directory of `earlyphase sweep`")
    parser.add_argument(
        "--theory", choices=("uv", "linear", "none"), default="linear", help="theory model to overlay (default: linear)"
    )
    parser.add_argument(
        "--out", metavar="FILE", help="figure file, .png, .svg or .pdf (default: RESULTS_DIR/phase_diagram.png)"
    )
    parser.add_argument("--arch", metavar="NAME", help="architecture to draw when the results hold several")
    parser.add_argument(
        "--theory-seeds", type=int, default=16, metavar="N", help="initialisations in the theory ensemble (default: 16)"
    )
    parser.add_argument(
        "--control",
        action="append",
        default=[],
        metavar="DIR",
        help="a control sweep's results directory to draw over the diagram (repeatable; see above)",
    )
    parser.add_argument(
        "--collapse", metavar="FILE", help="also draw c_loss against d/w, one marker per depth (see above)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--predicted",
        action="store_true",
        help="draw the per-seed predictions from the initialisation against the measurement (see above)",
    )
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    from earlyphase.compare.pipeline import compare_results
    from earlyphase.core.paths import check_output_file
    from earlyphase.core.validate import ConfigError, require_int

    if args.predicted:
        if args.control or args.collapse:
            raise ConfigError(
                "--control and --collapse draw the phase diagram's sweep; they cannot be combined with --predicted",
                "control",
            )
        return _predicted(args)
    out = check_output_file(Path(args.out) if args.out else Path(args.results_dir) / "phase_diagram.png", "--out")
    result = compare_results(
        args.results_dir,
        out,
        theory=None if args.theory == "none" else args.theory,
        arch=args.arch,
        theory_seeds=require_int("--theory-seeds", args.theory_seeds, minimum=1),
        progress=not args.no_progress,
        controls=args.control,
        collapse_out=None if args.collapse is None else check_output_file(Path(args.collapse), "--collapse"),
    )
    for warning in result.warnings():
        print(warning, file=sys.stderr)
    print(result.report)
    print(f"\nphase diagram written to {result.figure}")
    if result.collapse_figure is not None:
        print(f"d/w collapse figure written to {result.collapse_figure}")
    return 0


def _predicted(args: argparse.Namespace) -> int:
    import pandas as pd

    from earlyphase.compare.init_sweep import PREDICTED_VS_MEASURED_FILE
    from earlyphase.compare.per_seed import format_per_seed_summary, per_seed_summary
    from earlyphase.compare.per_seed_figure import per_seed_figure
    from earlyphase.core.paths import check_output_file
    from earlyphase.core.validate import ConfigError

    table_path = Path(args.results_dir) / PREDICTED_VS_MEASURED_FILE
    if not table_path.is_file():
        raise ConfigError(
            f"{table_path} not found: run `earlyphase predict --model init --from-sweep {args.results_dir}` first",
            "results_dir",
        )
    out = check_output_file(
        Path(args.out) if args.out else Path(args.results_dir) / "predicted_vs_measured.png", "--out"
    )
    table = pd.read_csv(table_path)
    print(format_per_seed_summary(per_seed_summary(table)))
    print(f"\nfigure written to {per_seed_figure(table, out)}")
    return 0
