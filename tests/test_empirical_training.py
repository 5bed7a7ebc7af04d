"""prepare / run_at_c: the early-training protocol against independent oracles."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from earlyphase.core import Trajectory, describe_loss
from earlyphase.empirical import TrainConfig, prepare, run_at_c
from earlyphase.empirical.data import load_dataset
from earlyphase.empirical.models import build_model
from earlyphase.empirical.training import sgd_batches
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)

SMALL = dict(dataset="digits", n_train=96, measure_size=48, batch_size=32, depth=3, width=16, steps=4)


@pytest.fixture(scope="module")
def small_experiment():
    return prepare(TrainConfig.build(**SMALL))


def test_zero_readout_loss0_is_half_mean_square_target():
    experiment = prepare(TrainConfig.build(**SMALL, readout="zero"))
    y = experiment.dataset.y_measure
    assert experiment.loss0 == pytest.approx(0.5 * np.mean(y.astype(np.float64) ** 2), rel=1e-7)
    assert experiment.loss0 == pytest.approx(0.5 / experiment.dataset.num_classes, rel=1e-7)


def test_record_is_complete(small_experiment, tmp_path):
    trajectory = run_at_c(small_experiment, 1.5)
    config = small_experiment.config
    assert trajectory.eta == pytest.approx(1.5 / small_experiment.lambda0)
    assert trajectory.num_steps == config.protocol.steps
    assert trajectory.lambda0 == small_experiment.lambda0 and trajectory.loss0 == small_experiment.loss0
    assert trajectory.loss_convention == describe_loss("mse")
    assert dict(trajectory.seeds) == {"init": 0, "sgd": 0, "measure": 0}
    assert {k: trajectory.config[k] for k in config.flat()} == config.flat()  # records hold the flat settings
    assert trajectory.config["dataset_source"] == small_experiment.dataset.source
    steps = trajectory.steps
    assert steps[["loss", "sharpness", "sharpness_residual", "hvp_count", "accuracy"]].notna().all().all()
    assert steps["batch_loss"].iloc[1:].notna().all() and math.isnan(steps["batch_loss"].iloc[0])
    assert (steps["sharpness_residual"] <= config.measurement.lanczos_tol).all()
    assert steps["ntk_top"].isna().all()  # not requested
    assert trajectory.barrier_loss >= trajectory.loss0  # s = 0 is on the path
    loaded = Trajectory.load(trajectory.save(tmp_path / "run"))
    pd.testing.assert_frame_equal(loaded.steps, trajectory.steps)
    assert loaded.config["num_params"] == small_experiment.num_params


def test_same_initialisation_and_batch_order_for_every_c(small_experiment):
    slow, fast = run_at_c(small_experiment, 0.5), run_at_c(small_experiment, 3.0)
    pd.testing.assert_series_equal(slow.steps.iloc[0], fast.steps.iloc[0])
    # the first SGD batch is drawn before any update: same batch, same theta_0, same loss
    assert slow.steps["batch_loss"].iloc[1] == fast.steps["batch_loss"].iloc[1]
    assert slow.steps["loss"].iloc[1] != fast.steps["loss"].iloc[1]


def test_identical_seeds_give_identical_records():
    first = run_at_c(prepare(TrainConfig.build(**SMALL, seed_sgd=3)), 2.0)
    second = run_at_c(prepare(TrainConfig.build(**SMALL, seed_sgd=3)), 2.0)
    pd.testing.assert_frame_equal(first.steps, second.steps)
    assert first.barrier_loss == second.barrier_loss
    other = run_at_c(prepare(TrainConfig.build(**SMALL, seed_sgd=4)), 2.0)
    assert other.loss0 == first.loss0 and other.steps["batch_loss"].iloc[2] != first.steps["batch_loss"].iloc[2]


def test_huge_learning_rate_diverges_into_a_record():
    experiment = prepare(TrainConfig.build(**SMALL, ntk=True))
    trajectory = run_at_c(experiment, 1e4)
    assert trajectory.diverged
    stop = trajectory.divergence_step
    assert not np.isfinite(trajectory.loss[stop]) or trajectory.loss[stop] > experiment.config.protocol.loss_max
    assert trajectory.steps.drop(columns="step").iloc[stop + 1 :].isna().all().all()
    assert math.isnan(trajectory.sharpness[stop]) and math.isnan(trajectory.barrier_loss)
    assert trajectory.metadata()["diverged"] is True


def test_sgd_with_momentum_and_barrier_match_torch_optim():
    """Oracle: the same network trained by torch.optim.SGD on the same batches, then the line theta_0 -> theta_T."""
    config = TrainConfig.build(**SMALL, momentum=0.9, eval_set="train", barrier_set="eval", measure_every=100)
    experiment = prepare(config)
    c = 1.7
    trajectory = run_at_c(experiment, c)
    net = build_model("fcn", (1, 8, 8), 10, config.model.depth, config.model.width, seed=config.seeds.init)
    theta0 = nn.utils.parameters_to_vector(net.parameters()).detach().clone()
    optimiser = torch.optim.SGD(net.parameters(), lr=c / experiment.lambda0, momentum=0.9)
    x, y = torch.tensor(experiment.dataset.x_train), torch.tensor(experiment.dataset.y_train)
    batches = sgd_batches(len(x), config.protocol.batch_size, config.seeds.sgd)
    losses = []
    for _ in range(config.protocol.steps):
        index = next(batches)
        optimiser.zero_grad()
        (0.5 * torch.mean((net(x[index]) - y[index]) ** 2)).backward()
        optimiser.step()
        with torch.no_grad():
            losses.append(float(0.5 * torch.mean((net(x) - y) ** 2)))
    np.testing.assert_allclose(trajectory.loss[1:], losses, rtol=1e-5)
    theta_final = nn.utils.parameters_to_vector(net.parameters()).detach().clone()
    path = []
    for s in np.linspace(0, 1, 101):
        nn.utils.vector_to_parameters((1 - s) * theta0 + s * theta_final, net.parameters())
        with torch.no_grad():
            path.append(float(0.5 * torch.mean((net(x) - y) ** 2)))
    assert trajectory.barrier_loss == pytest.approx(max(path), rel=1e-5)


def test_full_batch_gd_batch_loss_is_previous_training_loss():
    config = TrainConfig.build(**{**SMALL, "batch_size": None}, eval_set="train", barrier=False)
    trajectory = run_at_c(prepare(config), 1.0)
    np.testing.assert_allclose(trajectory.steps["batch_loss"].to_numpy()[1:], trajectory.loss[:-1], rtol=1e-6)


def test_sgd_batches_cover_each_epoch_once():
    batches = sgd_batches(10, 3, seed=5)
    epoch = torch.cat([next(batches) for _ in range(3)])  # floor(10 / 3) batches per epoch
    assert len(set(epoch.tolist())) == 9
    assert next(sgd_batches(10, 10, seed=5)) is None  # full batch


def test_warm_start_uses_fewer_products_than_cold_start():
    counts = {}
    for warm in (True, False):
        config = TrainConfig.build(**{**SMALL, "steps": 6}, warm_start=warm, barrier=False)
        trajectory = run_at_c(prepare(config), 1.0)
        counts[warm] = trajectory.steps["hvp_count"].iloc[1:].sum()
        assert (trajectory.steps["sharpness_residual"] <= config.measurement.lanczos_tol).all()
    assert counts[True] < counts[False]


def test_measure_every_k_steps():
    config = TrainConfig.build(**{**SMALL, "steps": 7}, measure_every=3, barrier=False)
    trajectory = run_at_c(prepare(config), 1.0)
    measured = np.flatnonzero(np.isfinite(trajectory.sharpness))
    assert measured.tolist() == [0, 3, 6, 7]
    assert np.isfinite(trajectory.loss).all()


class UserNet(nn.Module):
    """A user's module: the same function as the built-in FCN (depth 3, width 16, relu)."""

    def __init__(self, net):
        super().__init__()
        self.inner = net

    def forward(self, x):
        return self.inner(x)


def test_user_module_gives_the_same_record_as_the_builtin():
    builtin = run_at_c(prepare(TrainConfig.build(**SMALL)), 2.0)
    net = build_model("fcn", (1, 8, 8), 10, SMALL["depth"], SMALL["width"], seed=0)
    custom = run_at_c(prepare(TrainConfig.build(**{**SMALL, "arch": "custom"}), model=UserNet(net)), 2.0)
    pd.testing.assert_frame_equal(builtin.steps, custom.steps)
    assert custom.config["model"] == "UserNet"
    factory = prepare(
        TrainConfig.build(**{**SMALL, "arch": "custom"}), model=lambda: build_model("fcn", (1, 8, 8), 10, 3, 16)
    )
    assert factory.lambda0 == builtin.lambda0


def test_user_module_checks():
    config = TrainConfig.build(**{**SMALL, "arch": "custom"})
    with pytest.raises(ValueError, match="batch norm"):
        prepare(config, model=nn.Sequential(nn.Flatten(), nn.Linear(64, 8), nn.BatchNorm1d(8), nn.Linear(8, 10)))
    with pytest.raises(ValueError, match="needs a model"):
        prepare(config)
    with pytest.raises(ValueError, match="arch must be 'custom'"):
        prepare(TrainConfig.build(**SMALL), model=nn.Linear(64, 10))


def test_given_dataset_is_used():
    dataset = load_dataset("synthetic", n_train=64, n_measure=16, seed=2, input_dim=12, num_outputs=3)
    experiment = prepare(TrainConfig.build(dataset="synthetic", depth=2, width=8, steps=1), dataset=dataset)
    assert experiment.probe.measure_batch.size == 16 and experiment.num_params == 12 * 8 + 8 * 3
    with pytest.raises(ValueError, match="config.data.dataset"):
        prepare(TrainConfig.build(dataset="digits"), dataset=dataset)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("batch_size", 0, "batch_size must be >= 1"),
        ("loss", "l1", "loss must be one of"),
        ("momentum", 1.0, "momentum must be in"),
        ("device", "gpu", "device must be"),
        ("eval_set", "test", "eval_set must be one of"),
        ("lanczos_tol", 0.0, "lanczos_tol"),
        ("readout", "small", "readout must be one of"),
        ("arch", "vgg", "arch must be one of"),
    ],
)
def test_config_validation_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.build(**{field: value})


def test_missing_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    with pytest.raises(ValueError, match="CUDA is not available"):
        prepare(TrainConfig.build(**SMALL, device="cuda"))


def test_on_step_sees_every_theta_t(small_experiment):
    seen = []
    trajectory = run_at_c(small_experiment, 1.0, on_step=lambda t, theta: seen.append((t, theta.clone())))
    assert [t for t, _ in seen] == list(range(1, small_experiment.config.protocol.steps + 1))
    assert small_experiment.probe.loss(seen[-1][1])[0] == trajectory.loss[-1]
