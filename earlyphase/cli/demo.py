"""``earlyphase demo``: the whole pipeline on the embedded default dataset in a few minutes."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Run the whole pipeline on scikit-learn's digits (shipped with the package's dependencies, so
it works offline), in a few minutes on 2 CPU cores:

  1. sweep ReLU fully connected nets (depths 2 and 6, widths 32 and 128, two initialisation
     seeds) over the learning rate c = eta * lambda_H0 and measure the critical values
     c_loss, c_sharp, c_max and c_barrier of each (T = 10 SGD steps, batch 512, MSE);
  2. predict the same critical values with the uv model and with deep linear nets of the
     same depth and width;
  3. draw the phase diagram with the theory overlaid and print the tables.

Everything goes to --out DIR (default ./demo_out): the sweep's records (rerunning resumes),
phase_diagram.png and report.txt.
"""


HELP = "the whole pipeline on the embedded digits dataset (a few CPU minutes)"
"""The one-line summary listed by ``earlyphase --help``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", default="demo_out", metavar="DIR", help="output directory (default: ./demo_out)")
    parser.add_argument("--jobs", type=int, default=2, metavar="N", help="worker processes for the sweep (default: 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    from earlyphase.compare.demo import run_demo, summary_lines
    from earlyphase.core.paths import check_output_dir
    from earlyphase.core.validate import require_int

    result = run_demo(
        check_output_dir(args.out, "--out"),
        jobs=require_int("--jobs", args.jobs, minimum=1),
        progress=not args.no_progress,
    )
    print(result.report)
    print()
    print("\n".join(summary_lines(result)))
    return 0
