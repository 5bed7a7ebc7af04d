"""``earlyphase figures``: redraw (or recompute and redraw) every committed figure."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Redraw every figure in FIGURES_DIR (default: ./figures) from the small results committed in
FIGURES_DIR/data (CSV and Parquet), and rewrite FIGURES_DIR/comparison.txt (critical values,
theory-vs-measurement agreement, d/w collapse, seed spread):

  phase_diagram.png        c against d/w and 1/w: measured boundaries, phases, theory curves
  early_trajectories.png   L_t/L_0 and lambda_t/lambda_0 against step, one line per c
  sharpness_ratio.png      lambda_T/lambda_0 against c for several d/w
  long_run_sharpness.png   sharpness regimes of a long run; lambda at tau = K/c against c

--recompute first reruns the experiments behind them on the CPU (a sweep of ReLU FCNs on
scikit-learn's digits, the uv and deep-linear theory ensembles, early and long runs;
tens of minutes on 2 cores) and rewrites FIGURES_DIR/data; --recompute theory (or any
comma-separated subset of sweep, theory, early_runs, long_run, saturation_runs) reruns
only those. The sweep's full records go to
--work DIR (default: runs/figures).
"""


HELP = "redraw the committed figures from their stored results (or --recompute them)"
"""The one-line summary listed by ``earlyphase --help``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "figures",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("figures_dir", nargs="?", default="figures", metavar="FIGURES_DIR", help="default: ./figures")
    parser.add_argument(
        "--recompute",
        nargs="?",
        const="all",
        metavar="GROUPS",
        help="rerun the experiments and rewrite FIGURES_DIR/data first: all of them, or a comma-separated "
        "subset of sweep, theory, early_runs, long_run, saturation_runs (theory: under a minute)",
    )
    parser.add_argument(
        "--work", default="runs/figures", metavar="DIR", help="where --recompute keeps the sweep's records"
    )
    parser.add_argument("--jobs", type=int, default=2, metavar="N", help="worker processes for the sweep (default: 2)")
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    from earlyphase.compare.figures import DATA_GROUPS, draw_figures, recompute_data
    from earlyphase.core.paths import check_output_dir
    from earlyphase.core.validate import require_int

    check_output_dir(args.figures_dir, "FIGURES_DIR")
    if args.recompute:
        check_output_dir(args.work, "--work")
        groups = DATA_GROUPS if args.recompute == "all" else tuple(filter(None, args.recompute.split(",")))
        jobs = require_int("--jobs", args.jobs, minimum=1)
        for path in recompute_data(args.figures_dir, args.work, jobs=jobs, groups=groups):
            print(f"data:   {path}")
    for path in draw_figures(args.figures_dir):
        print(f"wrote:  {path}")
    return 0
