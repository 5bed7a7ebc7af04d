"""``predict --model init``: the orchestration of the predictors, the sweep-wide table and the CLI.

The predictors themselves are tested against their oracles in test_empirical_lookahead.py,
test_empirical_gates.py and test_theory_calibrated.py; here: the lazy baseline against its closed
form, the JSON contract, custom modules, and that a sweep-wide prediction resumes."""

import json

import pandas as pd
import pytest
from torch import nn

from earlyphase.cli import main
from earlyphase.compare import init_sweep
from earlyphase.compare.init_predict import predict_from_init
from earlyphase.compare.init_sweep import predict_sweep
from earlyphase.core.search import CGrid
from earlyphase.empirical import TrainConfig, prepare
from earlyphase.empirical.sweep import spec_from_mapping
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)

TINY = dict(dataset="digits", n_train=256, measure_size=128, batch_size=64, dtype="float64", barrier=False, steps=3)
GRID = CGrid(x_min=0.0, x_max=5.0)


def test_lazy_baseline_is_the_linearised_closed_form():
    # g_t = (1 - c)^t g_0: the loss rises iff |1 - c| > 1, i.e. c > 2; it then grows without bound
    prediction = predict_from_init(prepare(TrainConfig.build(**TINY, depth=2, width=16)), ("lazy",), GRID)
    lazy = prediction.predictors["lazy"].critical
    assert lazy.c_loss.estimate == pytest.approx(2**1.1) and lazy.c_loss.low == pytest.approx(2.0)
    assert lazy.c_max.estimate == pytest.approx(2.0) and lazy.c_max.high == pytest.approx(2**1.1)
    assert not lazy.c_sharp.found and "c_sharp" in prediction.predictors["lazy"].not_predicted


def test_json_names_every_predictor_its_values_and_its_cost():
    experiment = prepare(TrainConfig.build(**TINY, depth=3, width=16, seed_init=1))
    result = predict_from_init(experiment, ("lookahead", "analytic", "calibrated_uv", "lazy"), GRID).as_json()
    assert set(result) == {"measurements", "predictors", "recommended", "cost", "config"}
    assert result["recommended"] == "lookahead"
    assert result["measurements"]["lambda0"] == pytest.approx(experiment.lambda0)
    for name in ("lookahead", "analytic", "calibrated_uv", "lazy"):
        row = result["predictors"][name]
        assert {"c_loss", "c_sharp", "c_max", "c_barrier", "not_predicted", "cost"} <= set(row)
        assert set(result["cost"][name]) == {"hvps", "gradients", "forwards", "seconds"}
    assert result["cost"]["lookahead"]["gradients"] >= 1 and result["cost"]["analytic"]["forwards"] > 0
    assert result["cost"]["calibrated_uv"]["hvps"] > 0  # it needs the NTK top mode and grad lambda
    json.dumps(result)


def test_a_users_module_gets_every_predictor_that_applies():
    def tanh_net():
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 24, bias=False), nn.Tanh(), nn.Linear(24, 10, bias=False))

    experiment = prepare(TrainConfig.build(**TINY, arch="custom"), model=tanh_net)
    prediction = predict_from_init(experiment, ("lookahead", "analytic", "uv"), GRID)
    assert prediction.predictors["lookahead"].cost.gradients > 1 and prediction.predictors["lookahead"].cost.hvps > 0
    assert "tanh" in prediction.predictors["analytic"].not_predicted["c_loss"].lower()
    assert not prediction.predictors["analytic"].critical.c_loss.found
    assert "fully connected" in prediction.predictors["uv"].not_predicted["c_loss"]


def test_sweep_prediction_writes_every_seed_and_resumes(tmp_path, monkeypatch):
    spec = spec_from_mapping(
        {
            "model": {"arch": "fcn", "depths": [2], "widths": [16], "activation": "relu"},
            "data": {"dataset": "digits", "n_train": 256, "measure_size": 128},
            "protocol": {"batch_size": 64, "steps": 3},
            "seeds": {"init": [0, 1], "sgd": [0]},
            "search": {"method": "bisect", "x_min": 0.0, "x_max": 5.0},
        }
    )
    measured = pd.DataFrame(
        {
            "arch": "fcn",
            "depth": 2,
            "width": 16,
            "seed_init": [0, 1],
            "seed_sgd": 0,
            "runs": 9,
            "c_loss": [3.0, 4.0],
            "c_sharp": [5.0, None],
            "c_max": [20.0, 30.0],
            "c_barrier": [None, None],
        }
    )
    out = tmp_path / "pvm.csv"
    table = predict_sweep(spec, measured, out, ("lazy",), progress=False)
    assert len(table) == 2 * 4 and out.is_file()
    assert set(table["seed_init"]) == {0, 1} and (table["predictor"] == "lazy").all()
    row = table[(table["seed_init"] == 0) & (table["boundary"] == "c_loss")].iloc[0]
    assert row["measured"] == 3.0 and row["predicted"] == pytest.approx(2**1.1)

    def refuse(*args, **kwargs):
        raise AssertionError("a finished network was predicted again")

    monkeypatch.setattr(init_sweep, "predict_from_init", refuse)
    assert len(predict_sweep(spec, measured, out, ("lazy",), progress=False)) == 8


def test_cli_prints_json_for_a_network(capsys):
    code = main(
        [
            "predict",
            "--model",
            "init",
            "--depth",
            "2",
            "--width",
            "16",
            "--n-train",
            "256",
            "--measure-size",
            "128",
            "--batch-size",
            "64",
            "--steps",
            "3",
            "--dtype",
            "float64",
            "--predictors",
            "lookahead,lazy",
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["predictors"]) == {"lookahead", "lazy"} and result["config"]["depth"] == 2


def test_cli_refuses_an_unknown_predictor(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "--model", "init", "--predictors", "lookahead,oracle"])
    assert exit_.value.code == 2 and "--predictors" in capsys.readouterr().err
