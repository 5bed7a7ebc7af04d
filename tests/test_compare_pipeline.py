"""compare / demo / figures pipelines end to end, on sweeps of the sweep tests' toy runner
(closed-form critical values, tests/test_sweep_toy.py) and the uv theory (instant)."""

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_sweep_toy import expected_grid_thresholds

from earlyphase.cli import main as cli_main
from earlyphase.compare.controls import control_label, main_label, spec_difference
from earlyphase.compare.demo import DemoSettings, run_demo
from earlyphase.compare.figures import FigureSettings, draw_figures, recompute_data
from earlyphase.compare.phase_diagram import phase_diagram_figure
from earlyphase.compare.pipeline import compare_results, select_arch, width_panel_depth
from earlyphase.compare.style import BOUNDARY_LABELS
from earlyphase.compare.tables import read_critical_values
from earlyphase.compare.theory_overlay import model_pairs, predict_at
from earlyphase.core import CRITICAL_NAMES
from earlyphase.empirical.sweep import run_sweep, spec_from_mapping
from earlyphase.theory.predict import predict_critical_values

TOY = {
    "runner": "test_sweep_toy",
    "model": {"depths": [2, 4], "widths": [16, 64]},
    "protocol": {"steps": 4},
    "seeds": {"init": [0, 1, 2], "sgd": [0]},
    "search": {"x_min": 0.0, "x_max": 5.0},
}


@pytest.fixture(scope="module")
def toy_results(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy_sweep")
    spec = spec_from_mapping(TOY)
    run_sweep(spec, root, progress=False)
    return root, spec


def test_compare_reads_the_sweep_and_overlays_the_uv_model(toy_results, tmp_path):
    root, spec = toy_results
    result = compare_results(root, tmp_path / "diagram.png", theory="uv", theory_seeds=4, progress=False)
    assert result.figure.stat().st_size > 10_000
    # seed means of the measured table are the toy's closed-form thresholds averaged over seeds
    for point_depth, point_width in [(2, 16), (4, 64)]:
        points = [p for p in spec.points() if (p.depth, p.width) == (point_depth, point_width)]
        for name in CRITICAL_NAMES:
            values = [expected_grid_thresholds(spec.config(p), 0.0, 0.1, spec.search.grid.size)[name] for p in points]
            values = [v for v in values if v is not None]
            row = result.measured.query("depth == @point_depth and width == @point_width and boundary == @name").iloc[0]
            assert (row["mean"] if values else math.nan) == pytest.approx(
                np.mean(values) if values else math.nan, nan_ok=True
            )
    # the uv model at width w stands for every measured depth of that width
    uv = result.theory.boundaries
    direct = predict_critical_values("uv", 2, 64, seeds=4)
    for depth in (2, 4):
        row = uv.query(f"depth == {depth} and width == 64 and boundary == 'c_loss'").iloc[0]
        assert row["mean"] == pytest.approx(direct.summaries["c_loss"].mean)
        assert row["model_depth"] == 2
    assert "Agreement (uv model vs measured" in result.report
    assert "d/w collapse" in result.report and "Seed spread" in result.report


def test_compare_command(toy_results, tmp_path, capsys):
    root, _ = toy_results
    out = tmp_path / "diagram.svg"
    assert (
        cli_main(["compare", str(root), "--theory", "uv", "--theory-seeds", "3", "--out", str(out), "--no-progress"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "c_loss: uv model agrees with the measurement at" in printed
    assert out.read_text().startswith("<?xml")
    with pytest.raises(SystemExit):
        cli_main(["compare", str(root), "--out", str(tmp_path / "diagram.jpg")])
    assert "must end in one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["compare", str(tmp_path), "--theory", "none"])
    assert "critical_values.csv" in capsys.readouterr().err


def test_selection_helpers(toy_results):
    root, _ = toy_results
    per_seed = read_critical_values(root)
    assert select_arch(per_seed, None) is per_seed
    with pytest.raises(ValueError, match="arch must be one of"):
        select_arch(per_seed, "cnn")
    mixed = pd.concat([per_seed, per_seed.assign(arch="cnn")])
    with pytest.raises(ValueError, match="several architectures"):
        select_arch(mixed, None)
    table = pd.DataFrame({"depth": [2, 2, 4, 4, 4, 8], "width": [16, 32, 16, 32, 64, 8]})
    assert width_panel_depth(table) == 4
    assert width_panel_depth(table.iloc[[0, 5]]) is None
    assert model_pairs("uv", [(2, 16), (4, 16), (4, 32)]) == {(2, 16): [(2, 16), (4, 16)], (2, 32): [(4, 32)]}
    assert model_pairs("linear", [(4, 16)]) == {(4, 16): [(4, 16)]}
    with pytest.raises(ValueError, match="theory must be one of"):
        model_pairs("ntk", [(2, 16)])


def test_uv_per_seed_table_matches_the_prediction():
    tables = predict_at("uv", [(2, 32), (6, 32)], seeds=5, progress=False)
    assert len(tables.per_seed) == 5  # one model size: (2, 32)
    direct = predict_critical_values("uv", 2, 32, seeds=5)
    assert np.allclose(tables.per_seed["loss0"], direct.loss0)
    assert tables.per_seed["c_loss"].tolist() == [cv.c_loss.estimate for cv in direct.critical]


def test_demo_pipeline_with_the_toy_engine(tmp_path):
    settings = DemoSettings(
        depths=(2, 4),
        widths=(16,),
        seeds=(0, 1),
        steps=4,
        x_max=5.0,
        theories=("uv",),
        theory_seeds=3,
        runner="test_sweep_toy",
    )
    result = run_demo(tmp_path / "demo", settings, jobs=1, progress=False)
    assert result.figure.is_file() and result.critical_values.is_file()
    assert result.report_path.read_text().startswith("Measured critical values")
    assert "Predicted by the uv model" in result.report


def test_figures_command_redraws_the_committed_figures(tmp_path, capsys):
    committed = Path(__file__).resolve().parent.parent / "figures" / "data"
    shutil.copytree(committed, tmp_path / "data")
    assert cli_main(["figures", str(tmp_path)]) == 0
    for name in ("phase_diagram.png", "early_trajectories.png", "sharpness_ratio.png", "long_run_sharpness.png"):
        assert Image.open(tmp_path / name).size[0] > 800
    report = (tmp_path / "comparison.txt").read_text()
    assert "Agreement (deep linear net vs measured" in report and "Agreement (uv model vs measured" in report
    (tmp_path / "data" / "long_run.parquet").unlink()
    with pytest.raises(SystemExit):
        cli_main(["figures", str(tmp_path)])
    assert "--recompute" in capsys.readouterr().err


@pytest.mark.slow
def test_recompute_on_a_tiny_configuration(tmp_path):
    settings = FigureSettings(
        depths=(2,),
        widths=(16,),
        seeds=(0,),
        x_max=2.0,
        steps=2,
        theory_seeds=2,
        early_pairs=((2, 16), (2, 32)),
        early_x=(0.0, 1.0),
        long_run=(2, 16, 1.0),
        long_steps=30,
        long_measure_every=5,
        saturation_pairs=((2, 16),),
        saturation_c=(2.0, 4.0),
        tau_k=20.0,
    )
    written = recompute_data(tmp_path / "figs", tmp_path / "work", settings, jobs=2)
    assert {p.name for p in written} == {p.name for p in (tmp_path / "figs" / "data").iterdir()}
    assert len(written) == 8
    assert len(draw_figures(tmp_path / "figs", settings)) == 5


def test_recompute_refuses_unknown_groups(tmp_path):
    settings = FigureSettings(depths=(2,), widths=(16,), seeds=(0,), theory_seeds=2)
    with pytest.raises(ValueError, match="groups must be among"):
        recompute_data(tmp_path / "figs", tmp_path / "work", settings, groups=("theroy",))
    assert not (tmp_path / "figs").exists()


@pytest.mark.slow  # 30-90 s; the theory tables' numbers are covered by test_uv_per_seed_table_matches_the_prediction
def test_recompute_only_the_theory_tables(tmp_path):
    settings = FigureSettings(depths=(2,), widths=(16,), seeds=(0,), theory_seeds=2)
    written = recompute_data(tmp_path / "figs", tmp_path / "work", settings, jobs=1, groups=("theory",))
    assert sorted(p.name for p in written) == [
        "theory_linear.csv",
        "theory_linear_per_seed.csv",
        "theory_uv.csv",
        "theory_uv_per_seed.csv",
    ]
    linear = pd.read_csv(tmp_path / "figs" / "data" / "theory_linear.csv")
    assert set(linear["boundary"]) == {"c_loss", "c_sharp", "c_max", "c_barrier"}
    assert not (tmp_path / "work" / "sweep").exists()
    with pytest.raises(ValueError, match="groups must be among"):
        recompute_data(tmp_path / "figs", tmp_path / "work", settings, groups=("theroy",))


def test_spec_difference_names_what_a_control_changes():
    main = spec_from_mapping(TOY)
    control = spec_from_mapping(
        {
            **TOY,
            "model": {"depths": [2], "widths": [16], "readout": "zero"},
            "protocol": {"steps": 4, "epsilon": 0.05},
            "search": {"x_min": 0.0, "x_max": 3.0},  # how it searched: not a control
            "execution": {"device": "cpu"},
        }
    )
    assert spec_difference(main, control) == {"model.readout": "zero", "protocol.epsilon": 0.05}
    assert control_label(main, control, "fallback") == "readout = zero, epsilon = 0.05"
    assert control_label(main, main, "fallback") == "fallback"
    assert control_label(None, control, "fallback") == "fallback"
    authors = spec_from_mapping({**TOY, "runner": "earlyphase.empirical.authors_protocol"})
    assert control_label(main, authors, "x") == "runner = authors_protocol"


def test_compare_draws_a_control_sweep_over_the_diagram(toy_results, tmp_path, capsys):
    root, _ = toy_results
    control_spec = spec_from_mapping({**TOY, "model": {"depths": [2, 4], "widths": [64], "readout": "zero"}})
    control_root = tmp_path / "zero"
    run_sweep(control_spec, control_root, progress=False)
    result = compare_results(
        root,
        tmp_path / "diagram.png",
        theory=None,
        progress=False,
        controls=[control_root],
        collapse_out=tmp_path / "collapse.png",
    )
    (control,) = result.controls
    assert control.label == "readout = zero" and main_label(result.controls) == "readout = standard"
    assert result.collapse_figure == tmp_path / "collapse.png" and result.collapse_figure.stat().st_size > 10_000
    assert set(zip(control.measured["depth"], control.measured["width"])) == {(2, 64), (4, 64)}
    assert "Control sweep (readout = zero): measured critical values:" in result.report
    # the figure: one dotted line per control boundary found, at the control's censored medians
    figure = phase_diagram_figure(result.measured, (), 2, controls=result.controls)
    d_over_w_ax = figure.axes[0]
    lines = {line.get_label(): line for line in d_over_w_ax.lines if line.get_label().startswith("readout = zero")}
    c_loss_line = lines["readout = zero: " + BOUNDARY_LABELS["c_loss"]]
    rows = control.measured[control.measured["boundary"] == "c_loss"].sort_values("d_over_w")
    assert c_loss_line.get_linestyle() == ":" and c_loss_line.get_markerfacecolor() == "white"
    assert np.allclose(c_loss_line.get_xdata(), rows["d_over_w"]) and np.allclose(
        c_loss_line.get_ydata(), rows["median"]
    )
    # the 1/w panel at depth 2 shows the control's depth-2 point only
    width_lines = [line for line in figure.axes[1].lines if line.get_label() == c_loss_line.get_label()]
    assert np.allclose(width_lines[0].get_xdata(), [1 / 64])
    # the command line: repeatable --control, refused with --predicted
    out = tmp_path / "cli.png"
    args = ["compare", str(root), "--theory", "none", "--control", str(control_root), "--out", str(out)]
    assert cli_main([*args, "--no-progress"]) == 0
    assert "Control sweep (readout = zero)" in capsys.readouterr().out and out.is_file()
    for extra in (["--control", str(control_root)], ["--collapse", str(tmp_path / "c.png")]):
        with pytest.raises(SystemExit):
            cli_main(["compare", str(root), "--predicted", *extra])
        assert "--control and --collapse" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["compare", str(root), "--theory", "none", "--control", str(tmp_path / "missing")])


def test_main_label_without_known_controls_says_main_sweep():
    assert main_label([]) == "main sweep"
