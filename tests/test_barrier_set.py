"""barrier_set: the straight path theta_0 -> theta_T on the measurement batch (default) or on the evaluation set.

Oracle: the loss along the path recomputed here with plain torch on the chosen batch, from the
run's own theta_T (docs/PROTOCOL.md section 3), and the configuration hashes of before the field.
"""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

from earlyphase.core import Trajectory
from earlyphase.core.critical import interpolation_grid
from earlyphase.core.search import flags_of
from earlyphase.empirical import TrainConfig, prepare, run_at_c
from earlyphase.empirical.sweep.spec import config_key
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)

SMALL = dict(dataset="digits", n_train=96, measure_size=24, batch_size=32, depth=3, width=16, steps=4, eval_set="train")


@pytest.fixture(scope="module")
def experiment():
    return prepare(TrainConfig.build(**SMALL))


def path_peak_and_start(experiment, theta_t: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(max_s L(theta(s)), L(theta_0)) of the half mean square error 1/(2 n k) sum (f - y)^2 on (x, y)."""
    module = experiment.model
    losses = []
    with torch.no_grad():
        for s in interpolation_grid():
            output = module((1 - s) * experiment.theta0 + s * theta_t, x)
            losses.append(float(0.5 * torch.mean((output - y) ** 2)))
    return max(losses), losses[0]


@pytest.mark.parametrize("barrier_set", ["measure", "eval"])
def test_the_barrier_is_read_on_the_chosen_batch(experiment, barrier_set):
    chosen = dataclasses.replace(experiment, config=experiment.config.replace(barrier_set=barrier_set))
    last = {}
    record = run_at_c(chosen, 2.0, on_step=lambda t, theta: last.update(theta=theta.clone()))
    if barrier_set == "measure":
        index = torch.as_tensor(experiment.dataset.measure_index)
        x, y = experiment.train_x[index], experiment.train_y[index]
    else:
        x, y = experiment.train_x, experiment.train_y
    peak, start = path_peak_and_start(experiment, last["theta"], x, y)
    assert record.barrier_loss == pytest.approx(peak, rel=1e-5)
    if barrier_set == "measure":
        assert (
            record.barrier_loss0 == pytest.approx(start, rel=1e-5) and record.barrier_reference == record.barrier_loss0
        )
        assert not math.isclose(start, record.loss0, rel_tol=1e-3)  # a different set than L_0's
    else:
        assert math.isnan(record.barrier_loss0) and record.barrier_reference == record.loss0
        assert start == pytest.approx(record.loss0, rel=1e-5)


def test_on_a_measured_eval_set_both_settings_are_one_record():
    config = TrainConfig.build(**{**SMALL, "eval_set": "measure"})
    records = [run_at_c(prepare(config.replace(barrier_set=name)), 2.0) for name in ("measure", "eval")]
    pd.testing.assert_frame_equal(records[0].steps, records[1].steps)
    assert records[0].barrier_loss == records[1].barrier_loss and math.isnan(records[0].barrier_loss0)


def test_the_barrier_flag_compares_with_the_loss_at_theta0_on_the_same_set():
    steps = dict(loss=[2.0, 1.5, 1.0], sharpness=[1.0, 0.9, 0.8])
    on_its_set = Trajectory.from_arrays(
        c=1.0, eta=0.1, loss_convention="mse", barrier_loss=1.0, barrier_loss0=0.5, **steps
    )
    on_eval_set = Trajectory.from_arrays(c=1.0, eta=0.1, loss_convention="mse", barrier_loss=1.0, **steps)
    assert flags_of(on_its_set).barrier is True and flags_of(on_eval_set).barrier is False  # 1.0 > 0.5, 1.0 < L_0 = 2


def test_records_keep_barrier_loss0(tmp_path):
    record = Trajectory.from_arrays(
        c=1.0, eta=0.1, loss=np.ones(3), loss_convention="mse", barrier_loss=1.2, barrier_loss0=0.7
    )
    assert Trajectory.load(record.save(tmp_path / "run")).barrier_loss0 == 0.7


def test_hashes_change_only_where_the_barrier_leaves_the_evaluation_set():
    # the hashes of these configurations before barrier_set existed (barrier then on the evaluation set)
    assert config_key(TrainConfig.build(eval_set="train", barrier_set="eval"), "x") == "7dcffb5397"
    assert config_key(TrainConfig.build(eval_set="train", barrier=False), "x") == "d15da801fc"
    assert config_key(TrainConfig(), "earlyphase.empirical.training") == "145845dc95"
    assert config_key(TrainConfig.build(barrier_set="eval"), "earlyphase.empirical.training") == "145845dc95"
    assert (
        config_key(TrainConfig.build(eval_set="train"), "x") != "7dcffb5397"
    )  # the default now reads the measurement batch


def test_bad_barrier_set_is_refused():
    with pytest.raises(ValueError, match="barrier_set"):
        TrainConfig.build(barrier_set="train")
