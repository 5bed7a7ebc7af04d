"""Early training at eta = c / lambda_H0 while tracking loss, sharpness and NTK (docs/PROTOCOL.md section 2).

    experiment = prepare(TrainConfig.build(...))      # data, network (seed_init), lambda_H0, L_0: once
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
(earlyphase.core.is_diverged) stops there; later rows are NaN. The loop itself, shared with the
ensembles, is ``earlyphase.empirical.loop.train_runs`` (``run_at_c`` is its case of one run).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import nn

from earlyphase.core.eigen import TopEigenpair
from earlyphase.core.trajectory import Trajectory
from earlyphase.core.validate import ConfigError, require_positive
from earlyphase.empirical.config import CUSTOM_ARCH, TrainConfig
from earlyphase.empirical.data import Dataset, load_dataset
from earlyphase.empirical.data.dataset import measure_indices
from earlyphase.empirical.functional import FlatModel, flatten_module
from earlyphase.empirical.loop import random_start, sgd_batches, sgd_updates, train_runs, training_batches
from earlyphase.empirical.losses import LOSSES
from earlyphase.empirical.models import build_model
from earlyphase.empirical.objective import Batch, evaluate, evaluate_tensors
from earlyphase.empirical.stacked import HessianProducts, ntk_products, top_eigenpairs

__all__ = [
    "Experiment",
    "Measurement",
    "Probe",
    "TrainConfig",
    "prepare",
    "random_start",
    "run_at_c",
    "sgd_batches",
    "sgd_updates",
    "training_batches",
]

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}

ModelSource = nn.Module | Callable[[], nn.Module]


@dataclass(frozen=True)
class Measurement:
    """One measured state: loss and accuracy on the evaluation set, Lanczos solves on the measurement batch.

    ``ntk`` solves J^T J, so ``ntk.value`` is lambda_max(Theta) (not yet divided by B k).
    """

    loss: float
    accuracy: float
    sharpness: TopEigenpair[torch.Tensor] | None = None
    ntk: TopEigenpair[torch.Tensor] | None = None


@dataclass(frozen=True, eq=False)
class Probe:
    """Measures a parameter vector theta of ``model`` under ``config``'s settings."""

    config: TrainConfig
    model: FlatModel
    measure_batch: Batch
    eval_batch: Batch

    @property
    def loss_fn(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        return LOSSES[self.config.protocol.loss]

    def loss(self, theta: torch.Tensor) -> tuple[float, float]:
        """(L, accuracy) on the evaluation set."""
        return evaluate(self.model, self.loss_fn, theta, self.eval_batch)

    def loss_tensors(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, accuracy) on the evaluation set as tensors on theta's device (vmaps over an ensemble's theta)."""
        return evaluate_tensors(self.model, self.loss_fn, theta, self.eval_batch)

    def curvature(
        self, theta: torch.Tensor, sharpness_start: torch.Tensor, ntk_start: torch.Tensor | None
    ) -> tuple[TopEigenpair[torch.Tensor], TopEigenpair[torch.Tensor] | None, str]:
        """Lanczos solves on the measurement batch: the sharpness from ``sharpness_start``, the NTK
        (J^T J) from ``ntk_start`` unless None; and the HVP method used (``stacked_curvature`` of one run)."""
        sharpness, ntk, method = self.stacked_curvature(
            theta[None],
            sharpness_start[None],
            None if ntk_start is None else ntk_start[None],
            self.config.measurement.hvp_method,
        )
        return sharpness.member(0), None if ntk is None else ntk.member(0), method

    def stacked_curvature(
        self,
        theta: torch.Tensor,
        sharpness_start: torch.Tensor,
        ntk_start: torch.Tensor | None,
        hvp_method: str,
        check_every: int = 1,
        stop_above: torch.Tensor | None = None,
    ) -> tuple[TopEigenpair[torch.Tensor], TopEigenpair[torch.Tensor] | None, str]:
        """``curvature`` of M stacked runs, theta (M, P) and starts (M, P), by one batched Lanczos
        each (``earlyphase.empirical.stacked.top_eigenpairs``; results of shape (M,), vectors (M, P));
        ``stop_above`` (M,): a sharpness solve also stops once its Ritz value exceeds the member's threshold."""
        config = self.config
        hessian = HessianProducts(self.model, self.loss_fn, self.measure_batch, hvp_method)
        tol, max_iter = config.measurement.lanczos_tol, config.measurement.lanczos_max_iter
        sharpness = top_eigenpairs(hessian, theta, sharpness_start, tol, max_iter, check_every, stop_above)
        ntk = None
        if ntk_start is not None:
            ntk = top_eigenpairs(
                ntk_products(self.model, self.measure_batch), theta, ntk_start, tol, max_iter, check_every
            )
        return sharpness, ntk, hessian.method_used

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
    def initial_sharpness(self) -> TopEigenpair[torch.Tensor]:
        """The Lanczos solve of lambda_H0 at theta_0 (``prepare`` always makes it)."""
        if self.initial.sharpness is None:
            raise RuntimeError("an Experiment's initial measurement has no sharpness: build it with prepare()")
        return self.initial.sharpness

    @property
    def lambda0(self) -> float:
        """lambda_H0: the top algebraic Hessian eigenvalue at theta_0 on the measurement batch."""
        return float(self.initial_sharpness.value)

    @property
    def loss0(self) -> float:
        """L_0: the loss at theta_0 on the evaluation set."""
        return self.initial.loss

    @property
    def num_params(self) -> int:
        return self.model.num_params

    def record_config(self) -> dict:
        """The full TrainConfig, flat (``TrainConfig.flat``: the settings by name, as records have always
        held them), plus what was resolved at preparation (for the record's JSON),
        with ``lambda0_hvps``: the products of the lambda_H0 solve, shared by every run (row 0 of
        a record counts 0 of them)."""
        return {
            **self.config.flat(),
            "dataset_source": self.dataset.source,
            "n_train_used": int(len(self.dataset.x_train)),
            "batch_size_used": min(
                self.config.protocol.batch_size or len(self.dataset.x_train), len(self.dataset.x_train)
            ),
            "measure_batch_size": self.probe.measure_batch.size,
            "eval_examples": self.probe.eval_batch.size,
            "sigma_w2_used": self.config.model.sigma_w2_value,
            "model": type(self.model.module).__name__,
            "num_params": self.num_params,
            "hvp_method_used": self.hvp_method,
            "lambda0_hvps": int(self.initial.sharpness.matvecs),
        }


# --- preparation ----------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    """torch.device(name), or ConfigError if that device is not available here."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {name!r} requested but CUDA is not available on this machine (use --device cpu)", "device"
        )
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(
            f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist", "device"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} requested but MPS is not available on this machine", "device")
    return device


def load_training_data(config: TrainConfig) -> Dataset:
    """``config.data.dataset`` with n_train examples and a measurement batch of
    min(measure_size, n_train) examples drawn with seed_measure."""
    dataset = load_dataset(
        config.data.dataset,
        n_train=config.data.n_train,
        n_measure=None,
        seed=config.seeds.measure,
        path=config.data.data_path,
    )
    n = len(dataset.x_train)
    if config.data.measure_size >= n:
        return dataset
    return replace(dataset, measure_index=measure_indices(n, config.data.measure_size, config.seeds.measure))


def build_network(config: TrainConfig, dataset: Dataset, model: ModelSource | None) -> nn.Module:
    """The built-in network of ``config``, or the user's module (a factory is called with torch's RNG seeded by seed_init)."""
    if model is None:
        if config.model.arch == CUSTOM_ARCH:
            raise ConfigError("arch 'custom' needs a model: prepare(config, model=your_module_or_factory)", "arch")
        return build_model(
            config.model.arch,
            dataset.input_shape,
            dataset.num_classes,
            config.model.depth,
            config.model.width,
            config.model.activation,
            config.model.sigma_w2,
            config.model.readout,
            config.model.parameterization,
            seed=config.seeds.init,
        )
    if config.model.arch != CUSTOM_ARCH:
        raise ConfigError(f"a model was given, so arch must be {CUSTOM_ARCH!r} (got {config.model.arch!r})", "arch")
    if isinstance(model, nn.Module):
        return model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seeds.init)
        module = model()
    if not isinstance(module, nn.Module):
        raise ConfigError(f"model factory must return a torch.nn.Module, got {type(module).__name__}", "model")
    return module


def prepare(config: TrainConfig, dataset: Dataset | None = None, model: ModelSource | None = None) -> Experiment:
    """Load the data, build theta_0 (seed_init) and measure lambda_H0 and L_0 once for all c.

    ``dataset``: a Dataset to use instead of loading ``config.data.dataset`` (its name must match).
    ``model``: your own torch module (or a zero-argument factory), with ``config.model.arch = "custom"``;
    it must map a batch (B, *input_shape) to (B, k) outputs and must not use batch norm or
    dropout in train mode. Its trainable parameters become theta; buffers stay fixed.
    """
    device = resolve_device(config.execution.device)
    dtype = TORCH_DTYPES[config.execution.dtype]
    if dataset is None:
        dataset = load_training_data(config)
    elif dataset.name != config.data.dataset:
        raise ConfigError(f"dataset is {dataset.name!r} but config.data.dataset is {config.data.dataset!r}", "dataset")
    flat, theta0 = flatten_module(build_network(config, dataset, model), device, dtype)
    train_x = torch.as_tensor(dataset.x_train, device=device, dtype=dtype)
    train_y = torch.as_tensor(dataset.y_train, device=device, dtype=dtype)
    measure_index = torch.as_tensor(dataset.measure_index, device=device)
    measure_batch = Batch.of(train_x[measure_index], train_y[measure_index], config.measurement.chunk_size)
    eval_batch = (
        measure_batch
        if config.data.eval_set == "measure"
        else Batch.of(train_x, train_y, config.measurement.chunk_size)
    )
    probe = Probe(config, flat, measure_batch, eval_batch)
    start = random_start(flat.num_params, config.seeds.init, device)
    sharpness, ntk, method = probe.curvature(theta0, start, start if config.measurement.ntk else None)
    initial = Measurement(*probe.loss(theta0), sharpness, ntk)
    return Experiment(config, dataset, flat, theta0, train_x, train_y, probe, initial, method)


# --- training -------------------------------------------------------------------------
def run_at_c(
    experiment: Experiment,
    c: float,
    progress: bool = False,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
) -> Trajectory:
    """Train from theta_0 at eta = c / lambda_H0 for config.protocol.steps steps; never raises for divergence.

    ``progress`` shows a tqdm bar over the steps (for long runs). ``on_step(t, theta_t)`` is
    called after every update that did not diverge (e.g. to keep checkpoints or measure more);
    theta_t is the flat parameter vector (``experiment.model.unflatten`` names its pieces).
    """
    require_positive("c", c)
    each_step = None if on_step is None else (lambda t, theta: on_step(t, theta[0]))
    return train_runs([experiment], [c], progress=progress, on_step=each_step)[0]
