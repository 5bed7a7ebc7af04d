"""``earlyphase compare``: a sweep's results against a theory, as a figure and a text report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from earlyphase.compare.collapse_figure import collapse_figure
from earlyphase.compare.controls import Control, control_label, main_label, spec_difference
from earlyphase.compare.phase_diagram import phase_diagram_figure
from earlyphase.compare.report import comparison_report
from earlyphase.compare.style import figure_path, save_figure
from earlyphase.compare.tables import read_critical_values, seed_average
from earlyphase.compare.theory_overlay import TheoryTables, predict_at
from earlyphase.core.validate import ConfigError
from earlyphase.empirical.sweep.spec import SweepSpec
from earlyphase.empirical.sweep.store import stored_spec


@dataclass(frozen=True)
class Comparison:
    """Everything ``compare_results`` produced: tables, the report text and the figure's path."""

    per_seed: pd.DataFrame
    measured: pd.DataFrame
    theory: TheoryTables | None
    report: str
    figure: Path
    incomplete: tuple[tuple[int, int, int, int], ...] = ()
    """(depth, width, seeds found, seeds in the spec) of every point with fewer seeds than its sweep's spec."""
    controls: tuple[Control, ...] = ()
    collapse_figure: Path | None = None

    def warnings(self) -> list[str]:
        """One line per incomplete point, naming it and its seed count."""
        return [
            f"warning: d = {d}, w = {w} has {n} of {expected} seeds (the other searches failed or are pending; "
            "its seed count is shown in the report and a black ring marks it in the figure)"
            for d, w, n, expected in self.incomplete
        ]


def select_arch(per_seed: pd.DataFrame, arch: str | None) -> pd.DataFrame:
    """Rows of one architecture: ``arch``, or the only one present (ConfigError when ambiguous)."""
    present = sorted(per_seed["arch"].unique())
    if arch is None:
        if len(present) != 1:
            raise ConfigError(f"the results hold several architectures {present}: choose one with --arch", "arch")
        return per_seed
    if arch not in present:
        raise ConfigError(f"arch must be one of the architectures in the results {present}, got {arch!r}", "arch")
    return per_seed[per_seed["arch"] == arch]


def stored_sweep(results_dir: str | Path) -> SweepSpec | None:
    """The spec stored in ``results_dir`` by ``earlyphase sweep``, or None (no readable spec there)."""
    try:
        return stored_spec(results_dir)
    except ValueError:
        return None


def load_control(results_dir: str | Path, main: SweepSpec | None, arch: str) -> Control:
    """The control sweep in ``results_dir``: its rows of architecture ``arch``, seed-averaged, labelled
    against the main sweep's spec ``main`` (``earlyphase.compare.controls``)."""
    per_seed = read_critical_values(results_dir)
    per_seed = per_seed[per_seed["arch"] == arch]
    if per_seed.empty:
        raise ConfigError(f"the control sweep {results_dir} holds no results of architecture {arch!r}", "control")
    spec = stored_sweep(results_dir)
    main_values = () if main is None or spec is None else tuple(spec_difference(spec, main).items())
    return Control(control_label(main, spec, Path(results_dir).name), seed_average(per_seed), main_values)


def expected_seeds(spec: SweepSpec | None, measured: pd.DataFrame) -> pd.DataFrame:
    """``measured`` with the column expected_seeds: the seeds per point of ``spec`` (without a
    spec, the seeds present)."""
    count = measured["seeds"] if spec is None else len(spec.init_seeds) * len(spec.sgd_seeds)
    return measured.assign(expected_seeds=count)


def incomplete_points(spec: SweepSpec | None, measured: pd.DataFrame) -> tuple[tuple[int, int, int, int], ...]:
    """(depth, width, seeds, expected seeds) of every point with fewer seeds than ``spec`` (a point of
    the spec with no finished seed at all included), sorted."""
    points = measured.drop_duplicates(["depth", "width"])
    found = {(int(r.depth), int(r.width)): (int(r.seeds), int(r.expected_seeds)) for r in points.itertuples()}
    if spec is not None and spec.base.model.arch == measured["arch"].iloc[0]:
        count = len(spec.init_seeds) * len(spec.sgd_seeds)
        for depth in spec.depths:
            for width in spec.widths:
                found.setdefault((depth, width), (0, count))
    return tuple((d, w, n, e) for (d, w), (n, e) in sorted(found.items()) if n < e)


def width_panel_depth(measured: pd.DataFrame) -> int | None:
    """The depth with the most widths (at least two) for the c-against-1/w panel; None if none has two."""
    widths = measured.groupby("depth")["width"].nunique()
    widths = widths[widths >= 2]
    return None if widths.empty else int(widths.sort_values(kind="stable").index[-1])


def compare_results(
    results_dir: str | Path,
    out: str | Path,
    theory: str | None = "linear",
    arch: str | None = None,
    theory_seeds: int = 16,
    progress: bool = True,
    controls: Sequence[str | Path] = (),
    collapse_out: str | Path | None = None,
) -> Comparison:
    """Seed-average the sweep in ``results_dir``, predict with ``theory`` at the same (d, w), draw
    (with the control sweeps in ``controls`` over it), report; with ``collapse_out``, also draw
    c_loss against d/w, one marker per depth, the sweep and each control in its own colour."""
    out = figure_path(out)
    collapse_out = None if collapse_out is None else figure_path(collapse_out)
    per_seed = select_arch(read_critical_values(results_dir), arch)
    spec = stored_sweep(results_dir)
    measured = expected_seeds(spec, seed_average(per_seed))
    drawn_controls = tuple(load_control(control, spec, str(per_seed["arch"].iloc[0])) for control in controls)
    predicted = None
    if theory is not None:
        pairs = sorted({(int(d), int(w)) for d, w in zip(measured["depth"], measured["width"])})
        predicted = predict_at(theory, pairs, seeds=theory_seeds, progress=progress)
    theories = [] if predicted is None else [predicted.boundaries]
    figure = phase_diagram_figure(
        measured,
        theories,
        width_panel_depth(measured),
        title=f"Phase diagram of {per_seed['arch'].iloc[0]}",
        controls=drawn_controls,
    )
    path = save_figure(figure, out)
    collapse_path = None
    if collapse_out is not None:
        series = {main_label(drawn_controls): measured, **{c.label: c.measured for c in drawn_controls}}
        collapse_path = collapse_figure(series, collapse_out)
    report = comparison_report(measured, per_seed, [] if predicted is None else [predicted], drawn_controls)
    return Comparison(
        per_seed, measured, predicted, report, path, incomplete_points(spec, measured), drawn_controls, collapse_path
    )
