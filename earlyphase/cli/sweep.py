"""``earlyphase sweep``: measure critical values over (c, depth, width, seed), resumably."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from earlyphase.core.validate import ConfigError

USAGE = """\
earlyphase sweep SPEC.toml --out DIR [--jobs N | --workers N | --scheduler ADDRESS] [SPEC FLAGS]
       earlyphase sweep --out DIR --depths D [D ...] --widths W [W ...] [SPEC FLAGS]
       earlyphase sweep status DIR
       earlyphase sweep tables DIR"""

DESCRIPTION = """\
Search each (depth, width, init seed, SGD seed) of a sweep over c = eta * lambda_H0 for its
critical values c_loss, c_sharp, c_max, c_barrier, each to the grid resolution c = 2^x (step
0.1 in x), by bracketing search ("bisect") or the full reference grid up to the first
divergence ("grid"). Every spec key is also a flag below; a flag overrides the file.

Results go to DIR: the spec, one record per run, DIR/critical_values.csv (per seed, with the
bracketing grid values) and DIR/critical_values_mean.csv (seed means, spreads, found counts).
Rerunning the same command resumes an interrupted sweep: finished runs are reused. A DIR
holding a different spec is refused unless --force-spec.

  status DIR   searches done / pending / failed and runs recorded
  tables DIR   rewrite the tables from the finished searches and print the seed means

Executors: local worker processes (default, --jobs N, one per CPU core), or Dask:
--workers N starts a LocalCluster of N processes, --scheduler ADDRESS uses a running cluster
(workers must see DIR; see the README for dask-jobqueue on SLURM). CUDA: at most
execution.runs_per_device concurrent runs share one GPU (--runs-per-device).
"""

_FLAG_NAMES = {
    ("seeds", "init"): "--init-seeds",
    ("seeds", "sgd"): "--sgd-seeds",
    ("seeds", "measure"): "--measure-seed",
    ("search", "method"): "--search",
}


def _flag(section: str, key: str) -> str:
    return _FLAG_NAMES.get((section, key), "--" + key.replace("_", "-"))


def _dest(section: str, key: str) -> str:
    return f"spec__{section}__{key}"


HELP = "critical values over (c, depth, width, seed): run, resume, status, tables"
"""The one-line summary listed by ``earlyphase --help``."""


def register(subparsers: argparse._SubParsersAction) -> None:
    from earlyphase.empirical.sweep.spec import HELP, is_list_key, spec_keys

    parser = subparsers.add_parser(
        "sweep",
        help=HELP,
        usage=USAGE,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("target", nargs="*", metavar="SPEC.toml | status DIR | tables DIR", help="what to do (see above)")
    run = parser.add_argument_group("running")
    run.add_argument("--out", metavar="DIR", help="results directory (created; an existing one is resumed)")
    run.add_argument("--jobs", type=int, metavar="N", help="local worker processes (default: the CPU cores; 1: in this process)")
    run.add_argument("--threads", type=int, metavar="N", help="torch CPU threads per run (default: cores / jobs; 1 is best on a busy machine)")
    run.add_argument("--workers", type=int, metavar="N", help="start a Dask LocalCluster of N worker processes")
    run.add_argument("--scheduler", metavar="ADDRESS", help="send the searches to a running Dask scheduler (tcp://host:8786)")
    run.add_argument("--force-spec", action="store_true", help="replace a different spec stored in DIR (unchanged runs are kept)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    groups: dict[str, argparse._ArgumentGroup] = {}
    top = parser.add_argument_group("spec: top level")
    top.add_argument("--name", dest=_dest("", "name"), metavar="TEXT", help=HELP["name"])
    top.add_argument("--runner", dest=_dest("", "runner"), metavar="MODULE[:OBJECT]", help=HELP["runner"])
    for section, key in spec_keys():
        group = groups.setdefault(section, parser.add_argument_group(f"spec [{section}]"))
        many = is_list_key(section, key)
        group.add_argument(
            _flag(section, key),
            dest=_dest(section, key),
            nargs="+" if many else None,
            metavar="N" if many else "VALUE",
            help=HELP.get(key, f"TrainConfig.{key}"),
        )
    parser.set_defaults(run=main)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The spec keys given as flags, as {section: {key: value}} typed like TOML values."""
    from earlyphase.empirical.sweep.spec import coerce, key_hint

    result: dict[str, Any] = {}
    for dest, value in vars(args).items():
        if not dest.startswith("spec__") or value is None:
            continue
        _, section, key = dest.split("__")
        if not section:
            result[key] = value
            continue
        result.setdefault(section, {})[key] = coerce(f"{section}.{key}", value, key_hint(section, key), text=True)
    return result


def _print_note(note: str | None) -> None:
    if note is not None:
        print(note)


def main(args: argparse.Namespace) -> int:
    from earlyphase.empirical.sweep import driver
    from earlyphase.empirical.sweep.executors import DaskExecutor, LocalExecutor, cpu_count
    from earlyphase.empirical.sweep.spec import load_spec, merge, spec_from_mapping
    from earlyphase.empirical.sweep.store import Store, stored_spec
    from earlyphase.empirical.sweep.tables import (
        CRITICAL_MEANS_FILE,
        CRITICAL_VALUES_FILE,
        format_means,
        non_monotone_note,
        seed_mean_table,
    )

    target = list(args.target)
    if target[:1] in (["status"], ["tables"]):
        if len(target) != 2:
            raise ConfigError(f"usage: earlyphase sweep {target[0]} DIR")
        root = Path(target[1])
        status = driver.sweep_status(root)
        if target[0] == "status":
            print(status.describe())
            return 0
        per_seed = driver.rewrite_tables(Store(root, stored_spec(root)))
        if per_seed is None:
            raise ConfigError(f"no finished search in {root} yet")
        print(format_means(seed_mean_table(per_seed)))
        _print_note(non_monotone_note(per_seed))
        return 0
    if target[:1] == ["run"]:
        target = target[1:]
    if len(target) > 1:
        raise ConfigError(f"expected one spec file, got {target}")
    if args.out is None:
        raise ConfigError("--out DIR is required to run a sweep")
    if any(n is not None and n < 1 for n in (args.jobs, args.workers, args.threads)):
        raise ConfigError("--jobs, --workers and --threads must be >= 1")
    if sum(x is not None for x in (args.jobs, args.workers, args.scheduler)) > 1:
        raise ConfigError("choose one of --jobs, --workers and --scheduler")
    spec = load_spec(target[0], overrides(args)) if target else spec_from_mapping(merge({}, overrides(args)))
    if args.scheduler is not None or args.workers is not None:
        threads = spec.runs_per_device if spec.base.device.startswith("cuda") else 1
        executor: Any = DaskExecutor(args.scheduler, args.workers or 1, threads_per_worker=threads, threads=args.threads)
    else:
        executor = LocalExecutor(jobs=args.jobs or cpu_count(), threads=args.threads)
    status = driver.run_sweep(spec, args.out, executor, force_spec=args.force_spec, progress=not args.no_progress)
    print(status.describe())
    means = Path(args.out) / CRITICAL_MEANS_FILE
    if status.done and means.is_file():
        import pandas as pd

        print(format_means(pd.read_csv(means)))
        _print_note(non_monotone_note(pd.read_csv(Path(args.out) / CRITICAL_VALUES_FILE)))
        print(f"tables: {Path(args.out) / CRITICAL_VALUES_FILE}, {means}")
    return 1 if status.failed else 0
