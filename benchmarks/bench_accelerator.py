"""Accelerator check: the paper-sized phase diagram on one GPU, within a hard time limit.

    PYTHONPATH=. python3 benchmarks/bench_accelerator.py --data data_cache/cifar10-jpeg.tar.gz

Parts, each printed as it finishes and written to $OUT/accelerator.json (./out without OUT):

1. equality: a tiny FCN (digits, float64) trained on the CPU and on the device, one run at a
   time and as an ensemble: largest relative differences of every per-step column and the
   barrier loss, and whether the flags agree.
2. diagram: FCN depth 8, widths 256, 512, 1024, 2048 on CIFAR-10 (the archive given by
   --data), SGD B = 512 for T = 10 steps, sharpness on a 4096-example measurement batch,
   float32 with TF32 off, one seed: c_loss, c_sharp, c_max, c_barrier with their brackets,
   found by the sweep's bracketing search (earlyphase.empirical.sweep.SearchSpec, x in
   [0, 7]) whose rounds run as ensembles (lookahead L: the next point and the L - 1 the search
   would ask for if none of them set a flag); wall time and peak memory per width.
3. speedup: at width 256, the same 16 values of c one run at a time (run_at_c) and as one
   ensemble (run_ensemble): the time ratio, and that both give the same flags.
4. tf32: the diagram's widths again with TF32 matmuls: the critical values compared to the
   float32 ones, and the time (mixed precision is kept only where it moves no critical value).

Every part has a deadline; the whole script stops short of --budget seconds (default 435),
skipping what does not fit and saying so. Without CUDA it falls back to the CPU (tiny
settings: --device cpu --widths 16,32 --measure 256 --quick).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from earlyphase.core.search import flags_of
from earlyphase.empirical import TrainConfig, prepare, run_at_c
from earlyphase.empirical.ensemble import (
    EnsembleOptions,
    Member,
    memory_plan,
    peak_memory,
    prepare_ensemble,
    reset_peak_memory,
    run_ensemble,
)
from earlyphase.empirical.search_runner import MemoryStore, RunKey, SearchRuns, run_searches
from earlyphase.empirical.sweep.spec import SearchSpec
from earlyphase.empirical.training import load_training_data

STARTED = time.perf_counter()
PART_SHARES = {"equality": 45.0, "diagram": 270.0, "speedup": 75.0}
"""Most seconds each part may take (the diagram also leaves the speedup its share); tf32 takes the rest."""


class OutOfTime(Exception):
    """A part reached its deadline."""


def say(text: str = "") -> None:
    print(text, flush=True)


def elapsed() -> float:
    return time.perf_counter() - STARTED


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def set_tf32(enabled: bool) -> None:
    """TF32 tensor-core matmuls on (precision "high") or off (full float32, "highest")."""
    torch.set_float32_matmul_precision("high" if enabled else "highest")
    torch.backends.cudnn.allow_tf32 = enabled


def gib(value: int) -> float:
    return round(value / 2**30, 3)


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / |a| over entries finite in both (0 where both are NaN); inf if NaN patterns differ."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not np.array_equal(np.isnan(a), np.isnan(b)):
        return math.inf
    both = np.isfinite(a) & np.isfinite(b)
    if not both.any():
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(a[both] != 0, np.abs(a[both]), 1.0)
        return float(np.max(np.abs(a[both] - b[both]) / scale))


def decisions(record) -> tuple:
    """The four flags that decide the critical values (a search's margins only guide it)."""
    flags = flags_of(record)
    return flags.loss_catapult, flags.sharpness_catapult, flags.diverged, flags.barrier


def record_difference(a, b) -> float:
    return max(
        relative_difference(a.steps.to_numpy(), b.steps.to_numpy()),
        relative_difference([a.barrier_loss], [b.barrier_loss]),
    )


# --- part 1 ----------------------------------------------------------------------------
def part_equality(device: torch.device, deadline: float) -> dict[str, Any]:
    """Tiny float64 FCN: CPU one at a time (the reference) vs the device, one at a time and as an ensemble."""
    config = TrainConfig.build(
        dataset="digits", n_train=256, measure_size=128, batch_size=64, depth=4, width=32, steps=6, dtype="float64"
    )
    cs = [0.5, 2.0, 6.0, 1e4]
    on_cpu, on_device = prepare(config), config.replace(device=str(device))
    reference = [run_at_c(on_cpu, c) for c in cs]
    experiment = prepare(on_device)
    single = [run_at_c(experiment, c) for c in cs]
    if time.perf_counter() > deadline:
        raise OutOfTime
    ensemble = run_ensemble(prepare_ensemble(on_device, [(0, 0)]), [Member(c) for c in cs])
    out = {
        "config": "FCN depth 4 width 32, digits n_train 256, measure 128, B 64, T 6, float64",
        "c": cs,
        "device_single_vs_cpu_max_rel_diff": max(record_difference(r, s) for r, s in zip(reference, single)),
        "device_ensemble_vs_cpu_max_rel_diff": max(record_difference(r, e) for r, e in zip(reference, ensemble)),
        "flags_equal": all(
            decisions(r) == decisions(s) == decisions(e) for r, s, e in zip(reference, single, ensemble)
        ),
        "diverged": [r.diverged for r in reference],
    }
    out["equal_to_1e-9"] = (
        out["flags_equal"]
        and max(out["device_single_vs_cpu_max_rel_diff"], out["device_ensemble_vs_cpu_max_rel_diff"]) < 1e-9
    )
    return out


# --- part 2 and 4 ----------------------------------------------------------------------
def diagram_config(args: argparse.Namespace, width: int, device: torch.device) -> TrainConfig:
    return TrainConfig.build(
        arch="fcn",
        depth=args.depth,
        width=width,
        dataset="cifar10",
        data_path=args.data,
        n_train=args.n_train,
        measure_size=args.measure,
        batch_size=args.batch_size,
        steps=args.steps,
        device=str(device),
        dtype="float32",
    )


def lookahead_for(num_params: int, args: argparse.Namespace) -> int:
    """Speculative points per round: several where a run is cheap (launch-bound), one where it is compute-bound."""
    if args.lookahead is not None:
        return args.lookahead
    return 4 if num_params <= args.small_params else 1


def ensemble_search(
    ensemble, search: SearchSpec, lookahead: int, options: EnsembleOptions, deadline: float, epsilon: float
) -> tuple[SearchRuns, int, int]:
    """One search whose rounds run as ensembles (runs kept in memory): (its runs, rounds, runs computed).
    Raises OutOfTime at the deadline."""
    grid = search.grid
    rounds, computed = 0, 0

    def compute(keys: list[RunKey]) -> list:
        nonlocal rounds, computed
        if time.perf_counter() > deadline:
            raise OutOfTime
        rounds, computed = rounds + 1, computed + len(keys)
        return run_ensemble(ensemble, [Member(grid.c(index)) for _, index in keys], options)

    (runs,) = run_searches([search.plan()], MemoryStore(), compute, epsilon, lookahead)
    return runs, rounds, computed


def search_width(
    data, args, width: int, device: torch.device, deadline: float, options: EnsembleOptions
) -> dict[str, Any]:
    """Prepare one width and run its search; the rounds are ensembles. Raises OutOfTime at the deadline."""
    config = diagram_config(args, width, device)
    search = SearchSpec(method=args.search, x_max=args.x_max)
    grid = search.grid
    synchronise(device)
    reset_peak_memory(device)
    started = time.perf_counter()
    ensemble = prepare_ensemble(config, [(0, 0)], dataset=data)
    synchronise(device)
    prepared = time.perf_counter()
    num_params = ensemble.shared.num_params
    lookahead = lookahead_for(num_params, args)
    runs, rounds, computed = ensemble_search(ensemble, search, lookahead, options, deadline, config.protocol.epsilon)
    result = runs.result
    synchronise(device)
    finished = time.perf_counter()
    row = {
        "width": width,
        "num_params": num_params,
        "lambda0": ensemble.shared.lambda0,
        "loss0": ensemble.shared.loss0,
        "protocol": {"search": asdict(search), "lookahead": lookahead, "check_every": options.check_every},
        "memory_plan": memory_plan(ensemble, options).describe(),
        "prepare_s": round(prepared - started, 3),
        "search_s": round(finished - prepared, 3),
        "wall_s": round(finished - started, 3),
        "rounds": rounds,
        "runs_computed": computed,
        "runs_used": len(result.order),
        "peak_memory_gib": gib(peak_memory(device)),
        "critical": result.critical.as_row(),
        "evaluated_c": [grid.c(k) for k in sorted(result.flags)],
    }
    del ensemble
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def describe_row(row: dict[str, Any]) -> str:
    critical = row["critical"]

    def cell(name: str) -> str:
        value, low, high = critical[name], critical[f"{name}_low"], critical[f"{name}_high"]
        shown = "-" if value is None else f"{value:.3g}"
        return f"{name}={shown} [{'-' if low is None else f'{low:.3g}'}, {'-' if high is None else f'{high:.3g}'}]"

    return (
        f"  w={row['width']:5d} P={row['num_params'] / 1e6:6.2f}M lambda0={row['lambda0']:.4g}  "
        + "  ".join(cell(n) for n in ("c_loss", "c_sharp", "c_max", "c_barrier"))
        + f"\n          wall {row['wall_s']:.1f}s (prepare {row['prepare_s']:.1f}s, {row['rounds']} rounds, "
        f"{row['runs_computed']} runs computed / {row['runs_used']} used, lookahead {row['protocol']['lookahead']}), "
        f"peak {row['peak_memory_gib']:.2f} GiB; {row['memory_plan']}"
    )


def part_diagram(data, args, device: torch.device, deadline: float, tf32: bool, on_row=None) -> dict[str, Any]:
    """Every width in ascending order while the next one is predicted to fit before the deadline;
    ``on_row(rows)`` after each width (to save partial figures)."""
    set_tf32(tf32)
    options = EnsembleOptions(check_every=args.check_every)
    rows, skipped, previous = [], [], None
    started = time.perf_counter()
    try:
        for width in args.widths:
            left = deadline - time.perf_counter()
            if previous is not None:
                # an FCN's cost grows like its parameter count: (w_in + (d - 2) w) w
                grow = (
                    (3072 + (args.depth - 2) * width)
                    * width
                    / ((3072 + (args.depth - 2) * previous["width"]) * previous["width"])
                )
                predicted = previous["wall_s"] * grow
                if predicted > left:
                    skipped.append({"width": width, "reason": f"predicted {predicted:.0f}s > {left:.0f}s left"})
                    say(f"  w={width}: skipped (predicted {predicted:.0f}s, {left:.0f}s left)")
                    continue
            try:
                row = search_width(data, args, width, device, deadline, options)
            except OutOfTime:
                skipped.append({"width": width, "reason": "deadline reached during the search"})
                say(f"  w={width}: stopped at the part's deadline")
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            rows.append(row)
            previous = row
            say(describe_row(row))
            if on_row is not None:
                on_row(rows)
    finally:
        set_tf32(False)
    total = time.perf_counter() - started
    return {"tf32": tf32, "rows": rows, "skipped": skipped, "total_s": round(total, 3), "complete": not skipped}


def compare_diagrams(fp32: dict[str, Any], tf32: dict[str, Any]) -> dict[str, Any]:
    """Per width present in both: are all critical values and brackets equal? Time ratio."""
    base = {row["width"]: row for row in fp32["rows"]}
    comparisons = []
    for row in tf32["rows"]:
        if row["width"] not in base:
            continue
        reference = base[row["width"]]
        differing = [k for k, v in row["critical"].items() if v != reference["critical"][k]]
        comparisons.append(
            {
                "width": row["width"],
                "critical_values_equal": not differing,
                "differing": {k: (reference["critical"][k], row["critical"][k]) for k in differing},
                "lambda0_rel_diff": abs(row["lambda0"] - reference["lambda0"]) / abs(reference["lambda0"]),
                "search_time_ratio_fp32_over_tf32": round(reference["search_s"] / max(row["search_s"], 1e-9), 3),
            }
        )
    return {
        "comparisons": comparisons,
        "all_equal": bool(comparisons) and all(c["critical_values_equal"] for c in comparisons),
    }


# --- part 3 ----------------------------------------------------------------------------
def part_speedup(data, args, device: torch.device, deadline: float) -> dict[str, Any]:
    """The same c values one at a time (run_at_c) and as one ensemble (run_ensemble), after a warm-up of each."""
    set_tf32(False)
    config = diagram_config(args, args.speedup_width, device)
    cs = [2.0 ** (0.25 * k) for k in range(args.speedup_runs)]
    ensemble = prepare_ensemble(config, [(0, 0)], dataset=data)
    experiment = ensemble.shared  # what prepare(config, data) returns
    options = EnsembleOptions(check_every=args.check_every)
    run_at_c(experiment, cs[0])  # warm-up: kernels, allocator
    run_ensemble(ensemble, [Member(c) for c in cs[:2]], options)
    synchronise(device)
    started = time.perf_counter()
    singles = []
    for c in cs:
        if time.perf_counter() > deadline - 0.25 * (deadline - started):  # leave the ensemble its turn
            if len(singles) < 2:
                raise OutOfTime
            cs = cs[: len(singles)]  # compare on the values done
            break
        singles.append(run_at_c(experiment, c))
    synchronise(device)
    one_at_a_time = time.perf_counter() - started
    reset_peak_memory(device)
    started = time.perf_counter()
    together = run_ensemble(ensemble, [Member(c) for c in cs], options)
    synchronise(device)
    as_ensemble = time.perf_counter() - started
    return {
        "width": args.speedup_width,
        "num_params": experiment.num_params,
        "c": cs,
        "one_at_a_time_s": round(one_at_a_time, 3),
        "ensemble_s": round(as_ensemble, 3),
        "speedup": round(one_at_a_time / as_ensemble, 2),
        "ensemble_peak_memory_gib": gib(peak_memory(device)),
        "memory_plan": memory_plan(ensemble, options).describe(),
        "flags_equal": all(decisions(a) == decisions(b) for a, b in zip(singles, together)),
        "max_rel_diff_float32": max(record_difference(a, b) for a, b in zip(singles, together)),
        "diverged": sum(r.diverged for r in singles),
    }


# --- driver ----------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", default="data_cache/cifar10-jpeg.tar.gz", help="CIFAR-10 archive, folder or official batches"
    )
    parser.add_argument("--device", default="cuda", help="cuda (falls back to cpu when absent), cuda:N or cpu")
    parser.add_argument("--widths", default="256,512,1024,2048", help="comma-separated FCN widths of the diagram")
    parser.add_argument("--depth", type=int, default=8)
    parser.add_argument("--measure", type=int, default=4096, help="measurement batch size")
    parser.add_argument("--n-train", type=int, default=None, help="training examples (default: all 50000)")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--search", choices=("bisect", "grid"), default="bisect", help="search method (the sweep's)")
    parser.add_argument("--x-max", type=float, default=7.0, help="highest grid exponent (c up to 2^x_max)")
    parser.add_argument(
        "--lookahead",
        type=int,
        default=None,
        help="points per search round (default: 4 for small nets, 1 above --small-params)",
    )
    parser.add_argument(
        "--small-params",
        type=float,
        default=2e6,
        help="parameter count up to which rounds use lookahead 4 (launch-bound runs)",
    )
    parser.add_argument("--check-every", type=int, default=1, help="Lanczos products between host convergence checks")
    parser.add_argument("--speedup-width", type=int, default=256)
    parser.add_argument("--speedup-runs", type=int, default=16, help="c values in the speedup part (c = 2^(k/4))")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: equality, diagram, speedup, tf32")
    parser.add_argument(
        "--budget",
        type=float,
        default=435.0,
        help="seconds for the whole script after its imports (it stops short of it)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny CPU-sized settings: 4096 training examples, T = 6, 8 speedup runs"
    )
    args = parser.parse_args(argv)
    args.widths = [int(w) for w in args.widths.split(",") if w]
    args.skip = {part for part in args.skip.split(",") if part}
    unknown = args.skip - {"equality", "diagram", "speedup", "tf32"}
    if unknown:
        parser.error(f"unknown parts to skip: {sorted(unknown)}")
    if args.quick:
        args.n_train = args.n_train or 4096
        args.steps = min(args.steps, 6)
        args.speedup_runs = min(args.speedup_runs, 8)
        args.speedup_width = min(args.speedup_width, min(args.widths))
        args.small_params = max(args.small_params, 1e9)
    return args


def resolve(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        say(f"CUDA is not available: falling back to the CPU (requested {name})")
        return torch.device("cpu")
    return device


@dataclass
class Session:
    """The report being written ($OUT/accelerator.json) and the time left for the parts."""

    args: argparse.Namespace
    device: torch.device
    path: Path
    end: float
    report: dict[str, Any] = field(default_factory=dict)
    skip_reasons: dict[str, str] = field(default_factory=dict)
    """Why a part in args.skip is skipped, where not by --skip (no CIFAR-10 data)."""

    def save(self) -> None:
        self.report["elapsed_s"] = round(elapsed(), 1)
        self.path.write_text(json.dumps(self.report, indent=1, default=str))

    def run_part(self, name: str, share: float, part: Callable[[float], Any]) -> Any:
        """``part(deadline)`` with deadline min(now + share, end), its record kept in the report;
        None when skipped, out of time or failed (the failure is reported and the check goes on)."""
        if name in self.args.skip:
            reason = self.skip_reasons.get(name, "--skip")
            self.report["skipped"].append(f"{name}: {reason}")
            say(f"[{name}] skipped ({reason})")
            return None
        deadline = min(time.perf_counter() + share, self.end)
        if deadline - time.perf_counter() < 5:
            self.report["skipped"].append(f"{name}: out of time ({elapsed():.0f}s elapsed)")
            say(f"[{name}] skipped: out of time")
            return None
        say(f"[{name}] starting at {elapsed():.0f}s (deadline in {deadline - time.perf_counter():.0f}s)")
        try:
            result = part(deadline)
        except OutOfTime:
            self.report["skipped"].append(f"{name}: stopped at its deadline")
            say(f"[{name}] stopped at its deadline")
            result = None
        except Exception as error:  # report and go on with the next part
            self.report["parts"][name] = {
                **self.report["parts"].get(name, {}),
                "error": "".join(traceback.format_exception(error)),
            }
            say(f"[{name}] FAILED: {error!r}")
            traceback.print_exc()
            self.save()
            return None
        if result is not None:
            self.report["parts"][name] = result
        self.save()
        return result

    def partial(self, name: str) -> Callable[[list[dict[str, Any]]], None]:
        """on_row for ``part_diagram``: keep the rows finished so far as part ``name``."""

        def save_rows(rows: list[dict[str, Any]]) -> None:
            self.report["parts"][name] = {"rows": rows, "partial": True}
            self.save()

        return save_rows


def header(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """The report's description of the machine and the settings."""
    return {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "settings": {k: (sorted(v) if isinstance(v, set) else v) for k, v in vars(args).items()},
        "parts": {},
        "skipped": [],
    }


def run_equality(session: Session) -> dict[str, Any] | None:
    device = session.device
    equality = session.run_part("equality", PART_SHARES["equality"], lambda deadline: part_equality(device, deadline))
    if equality:
        say(
            f"  CPU vs {device}: single max rel diff {equality['device_single_vs_cpu_max_rel_diff']:.2e}, "
            f"ensemble {equality['device_ensemble_vs_cpu_max_rel_diff']:.2e}, flags equal {equality['flags_equal']}"
        )
    return equality


def load_data(session: Session):
    """The CIFAR-10 training data of the diagram (None, and the CIFAR parts skipped, when it cannot be read)."""
    args = session.args
    if {"diagram", "speedup", "tf32"} <= args.skip:
        return None
    started = time.perf_counter()
    data = None
    try:
        data = load_training_data(diagram_config(args, args.widths[0], session.device))
    except (OSError, ValueError) as error:  # a missing or unreadable archive: the CIFAR parts cannot run
        session.report["data"] = {"error": str(error)}
        session.skip_reasons.update(dict.fromkeys({"diagram", "speedup", "tf32"} - args.skip, "no CIFAR-10 data"))
        args.skip |= {"diagram", "speedup", "tf32"}
        say(f"[data] cannot load CIFAR-10 from {args.data}: {error}\n[data] skipping diagram, speedup, tf32")
    else:
        load_s = round(time.perf_counter() - started, 1)
        session.report["data"] = {"source": data.source, "n_train": len(data.x_train), "load_s": load_s}
        say(f"[data] {len(data.x_train)} training images from {args.data} in {load_s}s")
    session.save()
    return data


def run_diagram(session: Session, data) -> dict[str, Any] | None:
    """Part 2, leaving the speedup part its share of the time."""
    args, device, end = session.args, session.device, session.end
    speedup_share = 0 if "speedup" in args.skip else PART_SHARES["speedup"]
    diagram = session.run_part(
        "diagram",
        PART_SHARES["diagram"],
        lambda deadline: part_diagram(
            data, args, device, min(deadline, end - speedup_share), False, session.partial("diagram")
        ),
    )
    if diagram:
        say(
            f"  diagram: {diagram['total_s']:.1f}s for widths {[r['width'] for r in diagram['rows']]}"
            + (f"; skipped {[s['width'] for s in diagram['skipped']]}" if diagram["skipped"] else "")
        )
    return diagram


def run_speedup(session: Session, data) -> dict[str, Any] | None:
    args, device = session.args, session.device
    speedup = session.run_part(
        "speedup", PART_SHARES["speedup"], lambda deadline: part_speedup(data, args, device, deadline)
    )
    if speedup:
        say(
            f"  width {speedup['width']}, {len(speedup['c'])} values of c: one at a time {speedup['one_at_a_time_s']:.2f}s, "
            f"ensemble {speedup['ensemble_s']:.2f}s: speedup {speedup['speedup']:.2f}x (flags equal {speedup['flags_equal']}, "
            f"max rel diff {speedup['max_rel_diff_float32']:.1e}); peak {speedup['ensemble_peak_memory_gib']:.2f} GiB"
        )
    return speedup


def part_tf32(
    data, args: argparse.Namespace, device: torch.device, deadline: float, diagram: dict[str, Any], on_row=None
) -> dict[str, Any]:
    """Part 4: the widths the float32 diagram finished, again with TF32, compared to it."""
    done = argparse.Namespace(**{**vars(args), "widths": [row["width"] for row in diagram["rows"]]})
    tf32 = part_diagram(data, done, device, deadline, True, on_row)
    return {**compare_diagrams(diagram, tf32), "diagram": tf32}


def run_tf32(session: Session, data, diagram: dict[str, Any] | None) -> dict[str, Any] | None:
    args, device = session.args, session.device
    if device.type != "cuda":
        session.report["skipped"].append("tf32: needs CUDA")
        say("[tf32] skipped: TF32 needs CUDA")
        return None
    if "tf32" in args.skip:
        session.report["skipped"].append("tf32: --skip or no data")
        return None
    if not (diagram and diagram["rows"]):
        return None
    tf32 = session.run_part(
        "tf32",
        session.end - time.perf_counter(),
        lambda deadline: part_tf32(data, args, device, deadline, diagram, session.partial("tf32")),
    )
    if tf32:
        for row in tf32["comparisons"]:
            say(
                f"  w={row['width']}: critical values equal {row['critical_values_equal']} {row['differing'] or ''}, "
                f"search fp32/tf32 time {row['search_time_ratio_fp32_over_tf32']:.2f}x"
            )
    return tf32


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out_dir = Path(os.environ.get("OUT") or "out")
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="earlyphase-cache-")  # decoded-array cache
    device = resolve(args.device)
    session = Session(args, device, out_dir / "accelerator.json", STARTED + args.budget, header(args, device))
    say(
        f"earlyphase accelerator check: device {session.report['device']} ({session.report['device_name']}), torch {torch.__version__}"
    )
    set_tf32(False)
    session.save()
    run_equality(session)
    data = load_data(session)
    diagram = run_diagram(session, data)
    run_speedup(session, data)
    run_tf32(session, data, diagram)
    session.save()
    say(f"done in {elapsed():.0f}s; skipped: {session.report['skipped'] or 'nothing'}; figures in {session.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
