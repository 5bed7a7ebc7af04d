"""Early training at eta = c / lambda_H0 while tracking loss, sharpness and NTK (docs/PROTOCOL.md section 2).

    experiment = prepare(TrainConfig(...))      # data, network (seed_init), lambda_H0, L_0: once
    trajectory = run_at_c(experiment, c=2.0)    # SGD from the SAME theta_0 for every c

``prepare`` draws everything random except the SGD order: the initialisation (``seed_init``), the
measurement batch (``seed_measure``) and the Lanczos start vector (from ``seed_init``). Each
``run_at_c`` replays the same batch order (``seed_sgd``), so runs at different c differ only
in eta. Row t of the returned ``earlyphase.core.Trajectory`` is the state after t updates:

    theta_{t} = theta_{t-1} - eta v_t,   v_t = momentum v_{t-1} + grad L_{B_t}(theta_{t-1})

with ``batch_loss`` = L_{B_t}(theta_{t-1}) (the SGD batch of step t), ``loss`` and ``accuracy``
on the evaluation set at theta_t, and every ``measure_every`` steps the sharpness lambda_H_t
(top algebraic Hessian eigenvalue on the measurement batch, with its residual and HVP count)
and, if asked, ``ntk_top`` = lambda_max(Theta_t) / (B k). A run that diverges
(earlyphase.core.is_diverged) stops there; later rows are NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from earlyphase.core.conventions import describe_loss, is_diverged
from earlyphase.core.critical import interpolation_grid
from earlyphase.core.trajectory import Trajectory
from earlyphase.core.validate import require_positive
from earlyphase.empirical.barrier import path_losses
from earlyphase.empirical.config import CUSTOM_ARCH, TrainConfig
from earlyphase.empirical.curvature.lanczos import LanczosResult
from earlyphase.empirical.data import Dataset, load_dataset
from earlyphase.empirical.data.dataset import measure_indices
from earlyphase.empirical.functional import FlatModel, flatten_module
from earlyphase.empirical.losses import LOSSES
from earlyphase.empirical.models import build_model
from earlyphase.empirical.objective import (
    Batch,
    evaluate,
    evaluate_tensors,
    loss_and_gradient,
    top_hessian_eigenpair,
    top_ntk_eigenpair,
)

__all__ = ["Experiment", "Measurement", "TrainConfig", "prepare", "run_at_c"]

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}

ModelSource = nn.Module | Callable[[], nn.Module]


@dataclass(frozen=True)
class Measurement:
    """One measured state: loss and accuracy on the evaluation set, Lanczos solves on the measurement batch.

    ``ntk`` solves J^T J, so ``ntk.value`` is lambda_max(Theta) (not yet divided by B k).
    """

    loss: float
    accuracy: float
    sharpness: LanczosResult | None = None
    ntk: LanczosResult | None = None


@dataclass(frozen=True, eq=False)
class Probe:
    """Measures a parameter vector theta of ``model`` under ``config``'s settings."""

    config: TrainConfig
    model: FlatModel
    measure_batch: Batch
    eval_batch: Batch

    @property
    def loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return LOSSES[self.config.loss]

    def loss(self, theta: torch.Tensor) -> tuple[float, float]:
        """(L, accuracy) on the evaluation set."""
        return evaluate(self.model, self.loss_fn, theta, self.eval_batch)

    def loss_tensors(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, accuracy) on the evaluation set as tensors on theta's device (vmaps over an ensemble's theta)."""
        return evaluate_tensors(self.model, self.loss_fn, theta, self.eval_batch)

    def curvature(
        self, theta: torch.Tensor, sharpness_start: torch.Tensor, ntk_start: torch.Tensor | None
    ) -> tuple[LanczosResult, LanczosResult | None, str]:
        """Lanczos solves on the measurement batch: the sharpness from ``sharpness_start``, the NTK
        (J^T J) from ``ntk_start`` unless None; and the HVP method used."""
        config = self.config
        sharpness, method = top_hessian_eigenpair(
            self.model, self.loss_fn, theta, self.measure_batch, sharpness_start,
            config.lanczos_tol, config.lanczos_max_iter, config.hvp_method,
        )  # fmt: skip
        ntk = None
        if ntk_start is not None:
            ntk = top_ntk_eigenpair(
                self.model, theta, self.measure_batch, ntk_start, config.lanczos_tol, config.lanczos_max_iter
            )
        return sharpness, ntk, method

    @property
    def ntk_normalisation(self) -> float:
        """B k of the measurement batch: ntk_top = lambda_max(Theta) / (B k)."""
        return float(self.measure_batch.size * self.measure_batch.num_outputs)


@dataclass(frozen=True, eq=False)
class Experiment:
    """Everything shared by the runs of one configuration: data, theta_0, lambda_H0 and L_0.

    ``model`` is the network as a function of a flat parameter vector (``model.module`` is the
    torch module); ``theta0`` the initial parameters; ``initial`` the measurement at theta_0.
    """

    config: TrainConfig
    dataset: Dataset
    model: FlatModel
    theta0: torch.Tensor
    train_x: torch.Tensor
    train_y: torch.Tensor
    probe: Probe
    initial: Measurement
    hvp_method: str

    @property
    def lambda0(self) -> float:
        """lambda_H0: the top algebraic Hessian eigenvalue at theta_0 on the measurement batch."""
        return float(self.initial.sharpness.value)

    @property
    def loss0(self) -> float:
        """L_0: the loss at theta_0 on the evaluation set."""
        return self.initial.loss

    @property
    def num_params(self) -> int:
        return self.model.num_params

    def record_config(self) -> dict:
        """The full TrainConfig plus what was resolved at preparation (for the record's JSON)."""
        return {
            **asdict(self.config),
            "dataset_source": self.dataset.source,
            "n_train_used": int(len(self.dataset.x_train)),
            "measure_batch_size": self.probe.measure_batch.size,
            "eval_examples": self.probe.eval_batch.size,
            "sigma_w2_used": self.config.sigma_w2_value,
            "model": type(self.model.module).__name__,
            "num_params": self.num_params,
            "hvp_method_used": self.hvp_method,
        }


# --- preparation ----------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    """torch.device(name), or ValueError if that device is not available here."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available on this machine (use --device cpu)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} requested but MPS is not available on this machine")
    return device


def load_training_data(config: TrainConfig) -> Dataset:
    """``config.dataset`` with n_train examples and a measurement batch of
    min(measure_size, n_train) examples drawn with seed_measure."""
    dataset = load_dataset(
        config.dataset, n_train=config.n_train, n_measure=None, seed=config.seed_measure, path=config.data_path
    )
    n = len(dataset.x_train)
    if config.measure_size >= n:
        return dataset
    return replace(dataset, measure_index=measure_indices(n, config.measure_size, config.seed_measure))


def build_network(config: TrainConfig, dataset: Dataset, model: ModelSource | None) -> nn.Module:
    """The built-in network of ``config``, or the user's module (a factory is called with torch's RNG seeded by seed_init)."""
    if model is None:
        if config.arch == CUSTOM_ARCH:
            raise ValueError("arch 'custom' needs a model: prepare(config, model=your_module_or_factory)")
        return build_model(
            config.arch, dataset.input_shape, dataset.num_classes, config.depth, config.width, config.activation,
            config.sigma_w2, config.readout, config.parameterization, seed=config.seed_init,
        )  # fmt: skip
    if config.arch != CUSTOM_ARCH:
        raise ValueError(f"a model was given, so arch must be {CUSTOM_ARCH!r} (got {config.arch!r})")
    if isinstance(model, nn.Module):
        return model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed_init)
        module = model()
    if not isinstance(module, nn.Module):
        raise ValueError(f"model factory must return a torch.nn.Module, got {type(module).__name__}")
    return module


def random_start(num_params: int, seed: int, device: torch.device) -> torch.Tensor:
    """A float64 Gaussian vector drawn on the CPU from torch.Generator().manual_seed(seed)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(num_params, generator=generator, dtype=torch.float64).to(device)


def prepare(config: TrainConfig, dataset: Dataset | None = None, model: ModelSource | None = None) -> Experiment:
    """Load the data, build theta_0 (seed_init) and measure lambda_H0 and L_0 once for all c.

    ``dataset``: a Dataset to use instead of loading ``config.dataset`` (its name must match).
    ``model``: your own torch module (or a zero-argument factory), with ``config.arch = "custom"``;
    it must map a batch (B, *input_shape) to (B, k) outputs and must not use batch norm or
    dropout in train mode. Its trainable parameters become theta; buffers stay fixed.
    """
    device = resolve_device(config.device)
    dtype = TORCH_DTYPES[config.dtype]
    if dataset is None:
        dataset = load_training_data(config)
    elif dataset.name != config.dataset:
        raise ValueError(f"dataset is {dataset.name!r} but config.dataset is {config.dataset!r}")
    flat, theta0 = flatten_module(build_network(config, dataset, model), device, dtype)
    train_x = torch.as_tensor(dataset.x_train, device=device, dtype=dtype)
    train_y = torch.as_tensor(dataset.y_train, device=device, dtype=dtype)
    measure_index = torch.as_tensor(dataset.measure_index, device=device)
    measure_batch = Batch.of(train_x[measure_index], train_y[measure_index], config.chunk_size)
    eval_batch = measure_batch if config.eval_set == "measure" else Batch.of(train_x, train_y, config.chunk_size)
    probe = Probe(config, flat, measure_batch, eval_batch)
    start = random_start(flat.num_params, config.seed_init, device)
    sharpness, ntk, method = probe.curvature(theta0, start, start if config.ntk else None)
    initial = Measurement(*probe.loss(theta0), sharpness, ntk)
    return Experiment(config, dataset, flat, theta0, train_x, train_y, probe, initial, method)


# --- training -------------------------------------------------------------------------
def sgd_batches(n: int, batch_size: int | None, seed: int) -> Iterator[torch.Tensor | None]:
    """Batch indices per step: None (all n examples) for full-batch GD (batch_size None or >= n);
    otherwise epochs of torch.randperm(n) (generator seeded with ``seed``) cut into floor(n / B)
    batches of B (the remainder of each epoch is skipped, so every batch has B examples)."""
    if batch_size is None or batch_size >= n:
        while True:
            yield None
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator)
        for first in range(0, n - batch_size + 1, batch_size):
            yield order[first : first + batch_size]


def training_batches(experiment: Experiment) -> Iterator[Batch]:
    """The SGD batch B_t of each step t = 1, 2, ... in ``run_at_c``'s order (``sgd_batches`` with
    seed_sgd; the whole training set for full-batch GD), chunked like every batch of the run."""
    config = experiment.config
    full_batch = Batch.of(experiment.train_x, experiment.train_y, config.chunk_size)
    for index in sgd_batches(len(experiment.train_x), config.batch_size, config.seed_sgd):
        yield full_batch if index is None else Batch.of(*_take(experiment, index), config.chunk_size)


def sgd_updates(experiment: Experiment, eta: float) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The protocol's SGD from theta_0, endless: yields (L_{B_t}(theta_{t-1}), theta_t) for t = 1, 2, ...

        v_t = momentum v_{t-1} + grad L_{B_t}(theta_{t-1})  (v_0 = 0),   theta_t = theta_{t-1} - eta v_t

    (without momentum v_t is the gradient itself), B_t from ``training_batches``.
    """
    config, loss_fn = experiment.config, experiment.probe.loss_fn
    theta = experiment.theta0.clone()
    velocity = torch.zeros_like(theta) if config.momentum else None
    for batch in training_batches(experiment):
        batch_loss, gradient = loss_and_gradient(experiment.model, loss_fn, theta, batch)
        if velocity is not None:
            velocity = config.momentum * velocity + gradient
            gradient = velocity
        theta = theta - eta * gradient
        yield batch_loss, theta


def step_columns(steps: int) -> dict[str, np.ndarray]:
    """The per-step columns of a record (rows t = 0 .. steps), all NaN."""
    names = ("loss", "batch_loss", "sharpness", "sharpness_residual", "hvp_count", "ntk_top", "accuracy")
    return {name: np.full(steps + 1, np.nan) for name in names}


def store_measurement(columns: dict[str, np.ndarray], t: int, measurement: Measurement, ntk_normalisation: float) -> None:
    """Write ``measurement`` into row t (ntk_top = lambda_max(Theta) / (B k))."""
    columns["loss"][t] = measurement.loss
    columns["accuracy"][t] = measurement.accuracy
    if measurement.sharpness is not None:
        columns["sharpness"][t] = float(measurement.sharpness.value)
        columns["sharpness_residual"][t] = float(measurement.sharpness.residual)
        columns["hvp_count"][t] = int(measurement.sharpness.matvecs)
    if measurement.ntk is not None:
        columns["ntk_top"][t] = float(measurement.ntk.value) / ntk_normalisation


def run_at_c(
    experiment: Experiment,
    c: float,
    progress: bool = False,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
) -> Trajectory:
    """Train from theta_0 at eta = c / lambda_H0 for config.steps steps; never raises for divergence.

    ``progress`` shows a tqdm bar over the steps (for long runs). ``on_step(t, theta_t)`` is
    called after every update that did not diverge (e.g. to keep checkpoints or measure more);
    theta_t is the flat parameter vector (``experiment.model.unflatten`` names its pieces).
    """
    require_positive("c", c)
    config, probe = experiment.config, experiment.probe
    eta = c / experiment.lambda0
    columns = step_columns(config.steps)
    store_measurement(columns, 0, experiment.initial, probe.ntk_normalisation)
    cold_start = random_start(experiment.num_params, config.seed_init, experiment.theta0.device)
    sharpness_start = experiment.initial.sharpness.vector
    ntk_start = experiment.initial.ntk.vector if experiment.initial.ntk is not None else None
    updates = sgd_updates(experiment, eta)
    theta = experiment.theta0
    diverged = False
    for t in tqdm(range(1, config.steps + 1), desc=f"c={c:.4g}", disable=not progress, leave=False):
        batch_loss, theta = next(updates)
        columns["batch_loss"][t] = float(batch_loss)
        loss, accuracy = probe.loss(theta)
        if bool(is_diverged(loss, config.loss_max)):
            store_measurement(columns, t, Measurement(loss, accuracy), probe.ntk_normalisation)
            diverged = True
            break
        if on_step is not None:
            on_step(t, theta)
        sharpness = ntk = None
        if t % config.measure_every == 0 or t == config.steps:
            sharpness, ntk, _ = probe.curvature(
                theta,
                sharpness_start if config.warm_start else cold_start,
                None if ntk_start is None else (ntk_start if config.warm_start else cold_start),
            )
            sharpness_start = sharpness.vector
            ntk_start = None if ntk is None else ntk.vector
        store_measurement(columns, t, Measurement(loss, accuracy, sharpness, ntk), probe.ntk_normalisation)
    barrier_loss = math.nan
    if config.barrier and not diverged:
        path = path_losses(lambda point: probe.loss_tensors(point)[0], experiment.theta0, theta, interpolation_grid())
        barrier_loss = float(torch.max(path))
    return trajectory_record(experiment, c, eta, columns, barrier_loss)


def trajectory_record(
    experiment: Experiment, c: float, eta: float, columns: dict[str, np.ndarray], barrier_loss: float
) -> Trajectory:
    """The ``Trajectory`` of one run of ``experiment`` at c (eta = c / lambda_H0) from its step columns."""
    config = experiment.config
    return Trajectory.from_arrays(
        c=c,
        eta=eta,
        loss_convention=describe_loss(config.loss),
        loss_max=config.loss_max,
        barrier_loss=barrier_loss,
        config=experiment.record_config(),
        seeds={"init": config.seed_init, "sgd": config.seed_sgd, "measure": config.seed_measure},
        **columns,
    )


def _take(experiment: Experiment, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    index = index.to(experiment.train_x.device)
    return experiment.train_x[index], experiment.train_y[index]
