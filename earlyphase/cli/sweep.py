"""``earlyphase sweep``: measure critical values over (c, depth, width, seed), resumably."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from earlyphase.core.validate import ConfigError, require_int

ACTIONS = ("run", "status", "tables")
DEFAULT_ACTION = "run"
"""``earlyphase sweep ARGS`` without an action is ``earlyphase sweep run ARGS`` (``earlyphase.cli.main``)."""

USAGE = """\
earlyphase sweep [run] SPEC.toml --out DIR [--jobs N | --workers N | --scheduler ADDRESS] [SPEC FLAGS]
       earlyphase sweep [run] --out DIR --depths D [D ...] --widths W [W ...] [SPEC FLAGS]
       earlyphase sweep status DIR
       earlyphase sweep tables DIR"""

DESCRIPTION = """\
Search each (depth, width, init seed, SGD seed) of a sweep over c = eta * lambda_H0 for its
critical values c_loss, c_sharp, c_max, c_barrier, each to the grid resolution c = 2^x (step
0.1 in x), by bracketing search ("bisect") or the full reference grid up to the first
divergence ("grid").

  run SPEC.toml --out DIR   run, or resume, a sweep (the default action: `sweep SPEC.toml ...`);
                            every spec key is also a flag (`earlyphase sweep run --help`)
  status DIR                searches done / pending / failed and runs recorded
  tables DIR                rewrite the tables from the finished searches and print the seed means
"""

RUN_DESCRIPTION = """\
Run, or resume, the sweep of SPEC.toml (and/or the spec flags below; a flag overrides the file).
Every spec key is a flag, named as in `earlyphase train` (--measure-size, --seed-measure), its
default in the help; the swept lists are --depths, --widths, --init-seeds and --sgd-seeds,
search.method is --search; yes/no keys take --barrier, --barrier false or --no-barrier. The
spec is resolved (data found and sized, device present) before DIR is created.

Results go to DIR: the spec, one record per run, DIR/critical_values.csv (per seed, with the
bracketing grid values) and DIR/critical_values_mean.csv (seed means, spreads, found counts).
Rerunning the same command resumes an interrupted sweep: finished runs are reused. A DIR
holding a different spec is refused unless --force-spec.

Executors: local worker processes (default, --jobs N, one per CPU core), or Dask:
--workers N starts a LocalCluster of N processes, --scheduler ADDRESS uses a running cluster
(workers must see DIR; see the README for dask-jobqueue on SLURM). CUDA: at most
execution.runs_per_device concurrent runs share one GPU (--runs-per-device).
"""


def _dest(section: str, key: str) -> str:
    return f"spec__{section}__{key}"


HELP = "critical values over (c, depth, width, seed): run, resume, status, tables"
"""The one-line summary listed by ``earlyphase --help``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help=HELP,
        usage=USAGE,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", dest="action")
    _register_run(actions, parser.prog)
    for name, summary, function in (
        ("status", "searches done / pending / failed and runs recorded", show_status),
        ("tables", "rewrite the tables from the finished searches and print the seed means", rewrite_tables),
    ):
        action = actions.add_parser(name, prog=f"{parser.prog} {name}", help=summary, description=summary)
        action.add_argument("out", metavar="DIR", help="a sweep results directory")
        action.set_defaults(run=function)


def _register_run(actions: argparse._SubParsersAction, prog: str) -> None:
    from earlyphase.cli._flags import add_setting_flags
    from earlyphase.empirical.sweep.spec import SweepSpec, spec_settings

    parser = actions.add_parser(
        "run",
        prog=f"{prog} run",
        help="run or resume a sweep (the default action)",
        description=RUN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "spec", nargs="?", metavar="SPEC.toml", help="the specification (optional: the flags can define it all)"
    )
    run = parser.add_argument_group("running")
    run.add_argument("--out", metavar="DIR", help="results directory (created; an existing one is resumed)")
    run.add_argument(
        "--jobs", type=int, metavar="N", help="local worker processes (default: the CPU cores; 1: in this process)"
    )
    run.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch CPU threads per run (default 1: with one worker per core the cores are never oversubscribed; "
        "cores / jobs threads made a run 4-5x slower on a busy machine)",
    )
    run.add_argument("--workers", type=int, metavar="N", help="start a Dask LocalCluster of N worker processes")
    run.add_argument(
        "--scheduler", metavar="ADDRESS", help="send the searches to a running Dask scheduler (tcp://host:8786)"
    )
    run.add_argument(
        "--force-spec", action="store_true", help="replace a different spec stored in DIR (unchanged runs are kept)"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    top = parser.add_argument_group("spec: top level")
    spec_fields = {f.name: f.metadata["help"] for f in dataclasses.fields(SweepSpec)}
    for name, metavar in (("name", "TEXT"), ("runner", "MODULE[:OBJECT]")):
        top.add_argument(
            f"--{name}", dest=_dest("", name), metavar=metavar, default=argparse.SUPPRESS, help=spec_fields[name]
        )
    keys = {key.setting: key for key in spec_settings()}
    add_setting_flags(
        parser,
        keys,
        dest=lambda setting: _dest(setting.section, setting.key),
        many=lambda setting: keys[setting].many,
    )
    parser.set_defaults(run=run_sweep)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The spec keys given as flags, as {section: {key: value}} typed like TOML values."""
    result: dict[str, Any] = {}
    for dest, value in vars(args).items():
        if not dest.startswith("spec__"):  # given flags only: every spec flag defaults to argparse.SUPPRESS
            continue
        _, section, key = dest.split("__")
        if not section:
            result[key] = value
        else:
            result.setdefault(section, {})[key] = value
    return result


def _print_note(note: str | None) -> None:
    if note is not None:
        print(note)


def show_status(args: argparse.Namespace) -> int:
    """``earlyphase sweep status DIR``."""
    from earlyphase.empirical.sweep import driver

    print(driver.sweep_status(Path(args.out)).describe())
    return 0


def rewrite_tables(args: argparse.Namespace) -> int:
    """``earlyphase sweep tables DIR``."""
    from earlyphase.empirical.sweep import driver
    from earlyphase.empirical.sweep.store import Store, stored_spec
    from earlyphase.empirical.sweep.tables import format_means, non_monotone_note, seed_mean_table

    root = Path(args.out)
    per_seed = driver.rewrite_tables(Store(root, stored_spec(root)))
    if per_seed is None:
        raise ConfigError(f"no finished search in {root} yet", "out")
    print(format_means(seed_mean_table(per_seed)))
    _print_note(non_monotone_note(per_seed))
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    """``earlyphase sweep [run] [SPEC.toml] --out DIR [flags]``."""
    from earlyphase.core.paths import check_output_dir
    from earlyphase.empirical.sweep import driver
    from earlyphase.empirical.sweep.executors import DaskExecutor, LocalExecutor, cpu_count
    from earlyphase.empirical.sweep.preflight import preflight
    from earlyphase.empirical.sweep.spec import load_spec, merge, spec_from_mapping
    from earlyphase.empirical.sweep.tables import (
        CRITICAL_MEANS_FILE,
        CRITICAL_VALUES_FILE,
        format_means,
        non_monotone_note,
    )

    if args.out is None:
        raise ConfigError("--out DIR is required to run a sweep", "out")
    check_output_dir(args.out, "--out")
    for name in ("jobs", "workers", "threads"):
        if getattr(args, name) is not None:
            require_int(f"--{name}", getattr(args, name), minimum=1)
    if sum(x is not None for x in (args.jobs, args.workers, args.scheduler)) > 1:
        raise ConfigError("choose one of --jobs, --workers and --scheduler", "jobs")
    spec = load_spec(args.spec, overrides(args)) if args.spec else spec_from_mapping(merge({}, overrides(args)))
    if args.scheduler is not None or args.workers is not None:
        threads = spec.runs_per_device if spec.base.execution.device.startswith("cuda") else 1
        executor: Any = DaskExecutor(
            args.scheduler, args.workers or 1, threads_per_worker=threads, threads=args.threads
        )
    else:
        executor = LocalExecutor(jobs=args.jobs or cpu_count(), threads=args.threads)
    preflight(spec, this_machine_runs=args.scheduler is None)
    status = driver.run_sweep(spec, args.out, executor, force_spec=args.force_spec, progress=not args.no_progress)
    print(status.describe())
    means = Path(args.out) / CRITICAL_MEANS_FILE
    if status.done and means.is_file():
        import pandas as pd

        print(format_means(pd.read_csv(means)))
        _print_note(non_monotone_note(pd.read_csv(Path(args.out) / CRITICAL_VALUES_FILE)))
        print(f"tables: {Path(args.out) / CRITICAL_VALUES_FILE}, {means}")
    return 1 if status.failed else 0
