"""``earlyphase figures``: the committed figures, drawn from the small committed results.

figures/data/ holds everything the figures are drawn from (CSV and Parquet, a few MB):

    critical_values.csv       per-seed critical values of the sweep (``earlyphase sweep``)
    theory_linear.csv         deep-linear-network predictions at the same (d, w) (boundary table)
    theory_uv.csv             uv-model predictions at the same widths (boundary table)
    theory_*_per_seed.csv     each theory seed's thresholds and initial loss L_0
    early_runs.parquet        trajectory table: T-step runs over a c grid at several d/w
    long_run.parquet          trajectory table: one long run (sharpness regimes)
    saturation_runs.parquet   trajectory table: runs long enough to reach tau = K / c

``draw_figures`` redraws every figure from those files; ``recompute_data`` reruns the
experiments (the sweep machinery, the theory ensembles and the empirical engine on the CPU)
and rewrites them. Settings of both are ``FigureSettings``.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from earlyphase.compare.long_run import long_run_figure
from earlyphase.compare.phase_diagram import phase_diagram_figure
from earlyphase.compare.pipeline import width_panel_depth
from earlyphase.compare.report import comparison_report
from earlyphase.compare.style import save_figure
from earlyphase.compare.tables import CRITICAL_VALUES_FILE, check_per_seed, seed_average
from earlyphase.compare.theory_overlay import THEORY_NAMES, TheoryTables
from earlyphase.compare.trajectories import early_trajectories_figure, sharpness_ratio_figure
from earlyphase.core.grid import DEFAULT_X_MAX
from earlyphase.core.validate import ConfigError

DATA_DIR = "data"
REPORT_FILE = "comparison.txt"
DATA_GROUPS = ("sweep", "theory", "early_runs", "long_run", "saturation_runs")
"""What ``recompute_data`` can rerun: the sweep (critical_values.csv), the theory ensembles
(theory_*.csv) and the three trajectory tables."""


@dataclass(frozen=True)
class FigureSettings:
    """What the committed figures show and how their data are recomputed (CPU-sized).

    sweep: ReLU FCNs of ``depths`` x ``widths`` on ``dataset``, initialisation seeds ``seeds``
    (SGD seed: the first of them), bisection over c = 2^x, x in [0, x_max] step 0.1, T = ``steps``
    SGD steps with batch ``batch_size``.
    Theory: ``theory_seeds`` initialisations per (d, w) for each model of ``theories``.
    Early runs: ``early_pairs`` over c = 2^x for x in ``early_x`` (figures 2 and 4; the first
    and last pairs by d/w are drawn side by side in figure 2). Long run: an FCN with
    ``long_activation`` and (depth, width, c) = ``long_run``, ``long_steps`` full-batch GD
    steps, the loss on the whole training set, the sharpness every ``long_measure_every``
    steps (tanh at c just below 2 shows all four regimes on digits within a few thousand
    steps). Saturation: ReLU FCNs at ``saturation_pairs`` x ``saturation_c`` with the sweep's
    SGD protocol for tau = ceil(K / c) steps (``tau_k`` = K).
    """

    dataset: str = "digits"
    depths: tuple[int, ...] = (2, 4, 8)
    widths: tuple[int, ...] = (32, 64, 128, 256)
    seeds: tuple[int, ...] = (0, 1, 2, 3)
    x_max: float = DEFAULT_X_MAX
    steps: int = 10
    batch_size: int = 512
    theories: tuple[str, ...] = ("linear", "uv")
    theory_seeds: int = 16
    early_pairs: tuple[tuple[int, int], ...] = ((2, 256), (2, 64), (4, 64), (4, 32), (8, 32))
    early_x: tuple[float, ...] = tuple(0.25 * k for k in range(17))
    long_activation: str = "tanh"
    long_run: tuple[int, int, float] = (4, 128, 1.9)
    long_steps: int = 6000
    long_measure_every: int = 5
    saturation_pairs: tuple[tuple[int, int], ...] = ((2, 256), (4, 64), (8, 32))
    saturation_c: tuple[float, ...] = tuple(2.0 ** (k / 2) for k in range(7))
    tau_k: float = 200.0


def data_dir(figures_dir: str | Path) -> Path:
    return Path(figures_dir) / DATA_DIR


def read_data(figures_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Every committed data file of ``figures_dir``/data, by stem (ConfigError naming a missing one)."""
    root = data_dir(figures_dir)
    files = {
        "critical_values": root / CRITICAL_VALUES_FILE,
        **{f"theory_{name}": root / f"theory_{name}.csv" for name in THEORY_NAMES},
        **{f"theory_{name}_per_seed": root / f"theory_{name}_per_seed.csv" for name in THEORY_NAMES},
        "early_runs": root / "early_runs.parquet",
        "long_run": root / "long_run.parquet",
        "saturation_runs": root / "saturation_runs.parquet",
    }
    data = {}
    for name, path in files.items():
        if path.is_file():
            data[name] = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
        elif not name.startswith("theory_"):
            raise ConfigError(f"figure data {path} is missing: run `earlyphase figures --recompute`", "figure data")
    check_per_seed(data["critical_values"])
    return data


def draw_figures(figures_dir: str | Path, settings: FigureSettings = FigureSettings()) -> list[Path]:
    """Redraw figures 1-4 and the comparison report from ``figures_dir``/data; return the files written."""
    figures_dir = Path(figures_dir)
    data = read_data(figures_dir)
    per_seed = data["critical_values"]
    measured = seed_average(per_seed)
    theories = [
        TheoryTables(name, data[f"theory_{name}"], data.get(f"theory_{name}_per_seed", pd.DataFrame()))
        for name in settings.theories
        if f"theory_{name}" in data
    ]
    written = [
        save_figure(
            phase_diagram_figure(
                measured,
                [t.boundaries for t in theories],
                width_panel_depth(measured),
                title=f"Phase diagram, ReLU FCN on {settings.dataset}",
            ),
            figures_dir / "phase_diagram.png",
        )
    ]
    early = data["early_runs"]
    ordered = early[["depth", "width", "d_over_w"]].drop_duplicates().sort_values("d_over_w")
    panels = [(int(ordered.iloc[i]["depth"]), int(ordered.iloc[i]["width"])) for i in (0, len(ordered) - 1)]
    written.append(save_figure(early_trajectories_figure(early, panels), figures_dir / "early_trajectories.png"))
    written.append(save_figure(sharpness_ratio_figure(early), figures_dir / "sharpness_ratio.png"))
    long_run = long_run_figure(
        data["long_run"],
        data["saturation_runs"],
        settings.tau_k,
        run_label=f"({settings.long_activation}, full-batch GD)",
        saturation_label=f"(ReLU, SGD B = {settings.batch_size})",
    )
    written.append(save_figure(long_run, figures_dir / "long_run_sharpness.png"))
    report_path = figures_dir / REPORT_FILE
    report_path.write_text(comparison_report(measured, per_seed, theories) + "\n")
    written.append(report_path)
    return written


def recompute_data(
    figures_dir: str | Path,
    work_dir: str | Path,
    settings: FigureSettings = FigureSettings(),
    jobs: int = 2,
    groups: tuple[str, ...] = DATA_GROUPS,
) -> list[Path]:
    """Rerun the experiments behind the figures on the CPU and rewrite ``figures_dir``/data:
    every one, or those of ``groups`` (names in ``DATA_GROUPS``; e.g. ("theory",) takes seconds,
    the long run tens of minutes).

    The theory ensembles and the runs of figures 2-4 are independent tasks in a pool of
    ``jobs`` processes (the long run first); the sweep runs meanwhile with ``jobs`` workers of
    its own, its full results (every run's record) in ``work_dir``/sweep, its
    critical_values.csv copied into the figure data. Each data file is written as soon as its
    tasks are done.
    """
    unknown = sorted(set(groups) - set(DATA_GROUPS))
    if unknown:
        raise ConfigError(f"groups must be among {', '.join(DATA_GROUPS)}; got {', '.join(unknown)}", "groups")
    from earlyphase.compare.experiments import runs_over_c, runs_to_tau, task_pool
    from earlyphase.compare.theory_overlay import model_pairs, predict_at
    from earlyphase.empirical.sweep import LocalExecutor, run_sweep, spec_from_mapping
    from earlyphase.empirical.training import TrainConfig

    root = data_dir(figures_dir)
    root.mkdir(parents=True, exist_ok=True)
    spec = spec_from_mapping(sweep_mapping(settings))
    pairs = sorted({(point.depth, point.width) for point in spec.points()})
    base = TrainConfig.build(
        dataset=settings.dataset, batch_size=settings.batch_size, steps=settings.steps, barrier=False
    )
    depth, width, c = settings.long_run
    long_base = base.replace(
        activation=settings.long_activation,
        batch_size=None,
        eval_set="train",
        steps=settings.long_steps,
        measure_every=settings.long_measure_every,
    )
    c_values = [2.0**x for x in settings.early_x]
    tasks: dict[str, list] = {
        "long_run": [(runs_over_c, (long_base, [(depth, width)], [c], (0,), False))],
        **{
            f"theory_{name}": [
                (predict_at, (name, measured, settings.theory_seeds, False))
                for measured in model_pairs(name, pairs).values()
            ]
            for name in settings.theories
        },
        "early_runs": [(runs_over_c, (base, [pair], c_values, (0,), False)) for pair in settings.early_pairs],
        "saturation_runs": [
            (runs_to_tau, (base, [pair], settings.saturation_c, settings.tau_k, False))
            for pair in settings.saturation_pairs
        ],
    }
    tasks = {
        name: group for name, group in tasks.items() if ("theory" if name.startswith("theory_") else name) in groups
    }
    written = []
    with task_pool(jobs) as pool:
        futures = {name: [pool.submit(function, *args) for function, args in group] for name, group in tasks.items()}
        if "sweep" in groups:
            status = run_sweep(spec, Path(work_dir) / "sweep", LocalExecutor(jobs=jobs), force_spec=True)
            if status.failed:
                raise RuntimeError(status.describe())
            written.append(root / CRITICAL_VALUES_FILE)
            pd.read_csv(Path(work_dir) / "sweep" / CRITICAL_VALUES_FILE).to_csv(written[-1], index=False)
        pending = dict(futures)
        while pending:
            wait([f for group in pending.values() for f in group if not f.done()], return_when=FIRST_COMPLETED)
            for name in [n for n, group in pending.items() if all(f.done() for f in group)]:
                written += write_group(root, name, [f.result() for f in pending.pop(name)])
    return written


def write_group(root: Path, name: str, parts: list) -> list[Path]:
    """Write one data group: a theory's two tables (CSV) or a trajectory table (Parquet)."""
    if name.startswith("theory_"):
        boundaries, per_seed = root / f"{name}.csv", root / f"{name}_per_seed.csv"
        pd.concat([p.boundaries for p in parts], ignore_index=True).to_csv(boundaries, index=False)
        pd.concat([p.per_seed for p in parts], ignore_index=True).to_csv(per_seed, index=False)
        return [boundaries, per_seed]
    path = root / f"{name}.parquet"
    pd.concat(parts, ignore_index=True).to_parquet(path, index=False)
    return [path]


def sweep_mapping(settings: FigureSettings) -> dict:
    """The sweep spec (TOML layout) of the phase-diagram data."""
    return {
        "name": "figures-phase-diagram",
        "model": {
            "arch": "fcn",
            "depths": list(settings.depths),
            "widths": list(settings.widths),
            "activation": "relu",
        },
        "data": {"dataset": settings.dataset},
        "protocol": {"batch_size": settings.batch_size, "steps": settings.steps, "loss": "mse"},
        "seeds": {"init": list(settings.seeds), "sgd": list(settings.seeds[:1])},
        "search": {"method": "bisect", "x_min": 0.0, "x_max": settings.x_max},
    }
