"""``earlyphase demo``: the whole pipeline on the embedded default dataset in a few CPU minutes.

1. a sweep (``earlyphase.empirical.sweep``) of ReLU FCNs over a few depths and widths and
   two initialisation seeds on scikit-learn's digits: critical values c_loss, c_sharp, c_max,
   c_barrier of every (d, w, seed) by bracketing search over c = 2^x;
2. the theory's predictions at the same (d, w): the uv model and deep linear nets;
3. the phase diagram with both overlaid (PNG) and the report (critical values, agreement,
   d/w collapse, seed spread), printed and written next to the figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from earlyphase.compare.phase_diagram import phase_diagram_figure
from earlyphase.compare.pipeline import width_panel_depth
from earlyphase.compare.report import comparison_report
from earlyphase.compare.style import save_figure
from earlyphase.compare.tables import CRITICAL_VALUES_FILE, read_critical_values, seed_average
from earlyphase.compare.theory_overlay import predict_at
from earlyphase.core.grid import DEFAULT_X_MAX

REPORT_FILE = "report.txt"
FIGURE_FILE = "phase_diagram.png"


@dataclass(frozen=True)
class DemoSettings:
    """The demo's sweep (digits, ReLU FCN, MSE, SGD with B = 512 for T = 10 steps, the sharpness
    on a fixed batch of ``measure_size`` examples) and theory ensembles."""

    dataset: str = "digits"
    measure_size: int = 512
    depths: tuple[int, ...] = (2, 6)
    widths: tuple[int, ...] = (32, 128)
    seeds: tuple[int, ...] = (0, 1)
    batch_size: int = 512
    steps: int = 10
    x_max: float = DEFAULT_X_MAX
    theories: tuple[str, ...] = ("uv", "linear")
    theory_seeds: int = 8
    runner: str = "earlyphase.empirical.training"
    """the sweep's engine: a module with prepare(config) and run_at_c(experiment, c)."""

    def sweep_mapping(self) -> dict:
        """The sweep spec, in the layout of a TOML spec file."""
        return {
            "name": "earlyphase-demo",
            "runner": self.runner,
            "model": {"arch": "fcn", "depths": list(self.depths), "widths": list(self.widths), "activation": "relu"},
            "data": {"dataset": self.dataset, "measure_size": self.measure_size},
            "protocol": {"batch_size": self.batch_size, "steps": self.steps, "loss": "mse"},
            "seeds": {"init": list(self.seeds), "sgd": [0]},
            "search": {"method": "bisect", "x_min": 0.0, "x_max": self.x_max},
        }


@dataclass(frozen=True)
class DemoResult:
    figure: Path
    report: str
    report_path: Path
    critical_values: Path


def run_demo(
    out: str | Path, settings: DemoSettings = DemoSettings(), jobs: int = 2, progress: bool = True
) -> DemoResult:
    """Sweep, predict, draw and report into ``out`` (resumes a sweep already there)."""
    from earlyphase.empirical.sweep import LocalExecutor, run_sweep, spec_from_mapping

    out = Path(out)
    sweep_dir = out / "sweep"
    status = run_sweep(
        spec_from_mapping(settings.sweep_mapping()), sweep_dir, LocalExecutor(jobs=jobs), progress=progress
    )
    if status.failed:
        raise RuntimeError(status.describe())
    per_seed = read_critical_values(sweep_dir)
    measured = seed_average(per_seed)
    pairs = sorted({(int(d), int(w)) for d, w in zip(measured["depth"], measured["width"])})
    theories = [predict_at(name, pairs, seeds=settings.theory_seeds, progress=progress) for name in settings.theories]
    figure = save_figure(
        phase_diagram_figure(
            measured,
            [t.boundaries for t in theories],
            width_panel_depth(measured),
            title=f"Demo: ReLU FCN on {settings.dataset}",
        ),
        out / FIGURE_FILE,
    )
    report = comparison_report(measured, per_seed, theories)
    report_path = out / REPORT_FILE
    report_path.write_text(report + "\n")
    return DemoResult(figure, report, report_path, sweep_dir / CRITICAL_VALUES_FILE)


def summary_lines(result: DemoResult) -> list[str]:
    """The closing lines printed by the command: where everything went."""
    return [
        f"phase diagram:     {result.figure}",
        f"report:            {result.report_path}",
        f"critical values:   {result.critical_values} (per seed)",
    ]
