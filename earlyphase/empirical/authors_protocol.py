"""The paper authors' measurement protocol as a sweep runner (docs/PROTOCOL.md section 2).

    experiment = prepare(config)            # data, theta_0, lambda_H0, L_0: once
    trajectory = run_at_c(experiment, c)    # the same Trajectory as earlyphase.empirical.training's

``runner = "earlyphase.empirical.authors_protocol"`` in a sweep spec runs a sweep with it. Models,
data, losses, the SGD step, Hessian-vector products, divergence and records are the toolkit's;
what differs:

- the sharpness is POWER_STEPS = 20 steps of the power iteration from the fixed start
  v_0 = random_start(P, seed_init):  v_{k+1} = H v_k / |H v_k|,  lambda = v_19 . H v_19, the
  Rayleigh quotient after 20 products (the eigenvalue of largest |lambda|, with its sign, once
  converged; there is no convergence test), with residual |H v_19 - lambda v_19| / |lambda|;
- lambda_H0 is measured on the measurement batch (min(measure_size, n) examples drawn with
  seed_measure; the paper: 4096), lambda_H_t for t >= 1 on the NEXT SGD minibatch, which the
  measurement consumes: of the stream B_0, B_1, ... (``sgd_batches``, seed_sgd) step t trains on
  B_{2(t-1)}, theta_t = theta_{t-1} - eta grad L_{B_{2(t-1)}}(theta_{t-1}), and lambda_H_t is
  measured at theta_t on B_{2t-1};
- L_t and the accuracy are on the whole training set, whatever ``eval_set`` says;
- the barrier max_s L((1 - s) theta_0 + s theta_T) is read on the lambda_H0 batch and compared
  with L(theta_0) there (the record's ``barrier_loss0``);
- the NTK is not measured; ``measure_every``, ``measure_mode`` and the Lanczos settings are unused.

Each record's config says ``"protocol": "authors"`` (records without that key are the toolkit's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from earlyphase.core.conventions import is_diverged
from earlyphase.core.critical import interpolation_grid
from earlyphase.core.eigen import TopEigenpair
from earlyphase.core.trajectory import Trajectory
from earlyphase.core.validate import require_positive
from earlyphase.empirical.barrier import path_losses
from earlyphase.empirical.config import TrainConfig
from earlyphase.empirical.curvature.operators import Operator
from earlyphase.empirical.functional import flatten_module
from earlyphase.empirical.loop import COLUMNS, StackedSGD, random_start, sgd_batches, trajectory_record
from earlyphase.empirical.objective import Batch, evaluate_tensors, hessian_operator
from earlyphase.empirical.training import (
    TORCH_DTYPES,
    Experiment,
    Measurement,
    Probe,
    build_network,
    load_training_data,
    resolve_device,
)

__all__ = ["POWER_STEPS", "PROTOCOL", "power_iteration", "prepare", "run_at_c"]

POWER_STEPS = 20
"""Hessian-vector products per sharpness measurement (the authors' notebooks)."""
PROTOCOL = "authors"
"""The value of a record's ``config["protocol"]``."""


@dataclass(frozen=True)
class PowerIteration:
    """lambda = v . H v after ``products`` steps, the unit vector v, and |H v - lambda v| / |lambda|."""

    value: float
    vector: torch.Tensor
    residual: float
    products: int


def power_iteration(product: Operator, start: torch.Tensor, steps: int = POWER_STEPS) -> PowerIteration:
    """v_0 = start / |start|, v_{k+1} = H v_k / |H v_k|; lambda = v_{s-1} . H v_{s-1} after s = ``steps`` products."""
    require_positive("steps", steps)
    vector = start / torch.linalg.vector_norm(start)
    for step in range(steps):
        image = product(vector)
        if step < steps - 1:
            vector = image / torch.linalg.vector_norm(image)
    value = float(torch.dot(vector, image))
    residual = float(torch.linalg.vector_norm(image - value * vector) / abs(value))  # lambda = 0: inf
    return PowerIteration(value, vector, residual, steps)


def sharpness(experiment: Experiment, theta: torch.Tensor, batch: Batch) -> tuple[PowerIteration, str]:
    """The power iteration of the Hessian of the loss on ``batch`` at theta from the fixed start,
    and the HVP method used."""
    config = experiment.config
    operator, product = hessian_operator(
        experiment.model, experiment.probe.loss_fn, theta, batch, config.measurement.hvp_method
    )
    start = random_start(experiment.num_params, config.seeds.init, theta.device)
    return power_iteration(operator, start), product.method


def prepare(config: TrainConfig) -> Experiment:
    """The toolkit's data and theta_0 (seed_init), with L_0 on the whole training set and lambda_H0
    by the power iteration on the measurement batch (the evaluation set set to "train")."""
    config = config.replace(eval_set="train", barrier_set="measure")
    device, dtype = resolve_device(config.execution.device), TORCH_DTYPES[config.execution.dtype]
    dataset = load_training_data(config)
    model, theta0 = flatten_module(build_network(config, dataset, None), device, dtype)
    train_x = torch.as_tensor(dataset.x_train, device=device, dtype=dtype)
    train_y = torch.as_tensor(dataset.y_train, device=device, dtype=dtype)
    index = torch.as_tensor(dataset.measure_index, device=device)
    measure_batch = Batch.of(train_x[index], train_y[index], config.measurement.chunk_size)
    probe = Probe(config, model, measure_batch, Batch.of(train_x, train_y, config.measurement.chunk_size))
    staged = Experiment(config, dataset, model, theta0, train_x, train_y, probe, Measurement(math.nan, math.nan), "")
    power, method = sharpness(staged, theta0, measure_batch)
    solve = TopEigenpair(
        value=torch.tensor(power.value, dtype=torch.float64),
        vector=power.vector,
        residual=torch.tensor(power.residual, dtype=torch.float64),
        matvecs=torch.tensor(power.products),
        converged=torch.tensor(False),
    )
    initial = Measurement(*probe.loss(theta0), solve)
    return replace(staged, initial=initial, hvp_method=method)


def run_at_c(experiment: Experiment, c: float) -> Trajectory:
    """T steps at eta = c / lambda_H0 under the module docstring's protocol; never raises for divergence."""
    require_positive("c", c)
    config, probe = experiment.config, experiment.probe
    eta = c / experiment.lambda0
    columns = {name: np.full(config.protocol.steps + 1, np.nan) for name in COLUMNS}
    initial = experiment.initial
    columns["loss"][0], columns["accuracy"][0] = initial.loss, initial.accuracy
    columns["sharpness"][0], columns["sharpness_residual"][0] = (
        experiment.lambda0,
        float(experiment.initial_sharpness.residual),
    )
    columns["hvp_count"][0] = 0  # lambda_H0's products are the experiment's: counted once, in the record's config
    sgd = StackedSGD.start(experiment.theta0[None], [eta], config.protocol.momentum)
    stream = sgd_batches(len(experiment.train_x), config.protocol.batch_size, config.seeds.sgd)
    diverged = False
    for t in range(1, config.protocol.steps + 1):
        columns["batch_loss"][t] = float(sgd.step(probe, minibatch(experiment, next(stream)), per_member=False)[0])
        theta = sgd.theta[0]
        columns["loss"][t], columns["accuracy"][t] = probe.loss(theta)
        if is_diverged(columns["loss"][t], config.protocol.loss_max):
            diverged = True
            break
        power, _ = sharpness(experiment, theta, minibatch(experiment, next(stream)))
        columns["sharpness"][t], columns["sharpness_residual"][t] = power.value, power.residual
        columns["hvp_count"][t] = power.products
    barrier_loss = barrier_loss0 = math.nan
    if config.measurement.barrier and not diverged:
        loss_at = lambda point: evaluate_tensors(probe.model, probe.loss_fn, point, probe.measure_batch)[0]  # noqa: E731
        path = path_losses(loss_at, experiment.theta0, sgd.theta[0], interpolation_grid())
        barrier_loss, barrier_loss0 = float(path.max()), float(path[0])
    return trajectory_record(
        experiment, c, eta, columns, barrier_loss, barrier_loss0, {"protocol": PROTOCOL, "power_steps": POWER_STEPS}
    )


def minibatch(experiment: Experiment, index: torch.Tensor | None) -> Batch:
    """The training examples at ``index`` (None: all of them, full-batch GD), chunked as the run's batches."""
    x, y = experiment.train_x, experiment.train_y
    if index is not None:
        index = index.to(x.device)
        x, y = x[index], y[index]
    return Batch.of(x, y, experiment.config.measurement.chunk_size)
