"""The ``analytic`` predictor: c_loss from the first SGD step's ray with frozen ReLU gates.

The first SGD step moves theta_0 along the ray theta(eta) = theta_0 - eta g_0 (g_0 the gradient
of the first SGD batch, eta = c / lambda_H0). Freezing every ReLU gate at theta_0 makes the
network a polynomial in eta (``earlyphase.empirical.ray_polynomial``),

    P(eta; x) = sum_{k=0}^{D} a_k(x) eta^k,   a_0 = f(theta_0),  a_1 = -J g_0,  a_k = (1/k!) d^k f / d eta^k,

so for the MSE loss the frozen look-ahead loss on the evaluation set is a polynomial of degree 2 D,

    L(eta) = 1/(2 N k) sum_{i,a} (P(eta; x_i)_a - y_ia)^2
           = L_0 - eta g_0^T grad L + (eta^2 / 2) g_0^T H g_0 + sum_{m=3}^{2D} eta^m C_m,
    C_m = 1/(2 N k) sum_{i,a} sum_{j+l=m} a_j a_l   (with a_0 - y in place of a_0),

known from D + 1 frozen forward passes (docs/PROTOCOL.md section 7). The loss catapult of the
one-step look-ahead, L(theta_1)/L_0 > 1, is then read on the whole c grid for free:

    c_loss = first grid c with L(c / lambda_H0) / L(0) > 1.

The quadratic truncation gives c = 2 lambda_H0 g^T grad L / g^T H g (about 2). The terms
m >= 3 (products with a_j, j >= 2: the network's curvature along its own gradient) grow against
the first-order ones with d/w (digits, c = 4: rms a_3 eta^3 / rms a_1 eta = 0.15 at d = 8,
w = 32 and 0.016 at d = 8, w = 512) and lift c_loss above 2; but with the gates of theta_0 they
overshoot. Gates flip along the ray (at the exact c_loss: 15-44 % of them in w = 32 nets, 2-9 %
at w = 128, d <= 4) and rectification keeps the true loss below the frozen polynomial, so the
theta_0-frozen crossing comes too early where d/w is large: what makes c_loss grow with d/w is
the gates that flip (numbers: benchmarks/bench_analytic_ray.py).

Re-freezing (``refreeze`` > 0): the polynomial with the gates of theta(eta_a) is exact near
eta_a, so the prediction is iterated: anchor eta_a = c_loss / lambda_H0 of the previous
polynomial, until the anchor repeats (a self-consistent crossing: the polynomial with the gates
of c_loss crosses L_0 at c_loss) or ``refreeze`` re-anchorings are spent. Each costs D + 3
forward passes; no grid of look-ahead evaluations is made.

c_sharp, c_max and c_barrier are not predicted (reported not found, reasons in ``details``):
the frozen Rayleigh quotient u_0^T H u_0 along the ray (tried) misses the rotation of the top
eigenvector and predicts no sharpness catapult where one is measured; divergence develops over
several steps after the first-step overshoot, which a single step cannot see.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from earlyphase.core.cost import Cost
from earlyphase.core.critical import CriticalValues, Threshold, first_true
from earlyphase.core.search import CGrid
from earlyphase.core.validate import require_int
from earlyphase.empirical.objective import Batch, LossFn, loss_and_gradient
from earlyphase.empirical.ray_polynomial import FrozenRay, degree_bound, frozen_ray
from earlyphase.empirical.training import Experiment, sgd_batches

DEFAULT_REFREEZE = 4
"""Re-anchorings of the gates at most (the digits FCNs of depth 2-8 settle within 1-3)."""

NOT_PREDICTED = {
    "c_sharp": "not predicted: the frozen-ray Rayleigh quotient along u_0 ignores the rotation of the top "
    "eigenvector and misses the measured sharpness catapults",
    "c_max": "not predicted: divergence develops over several steps after the first-step overshoot, "
    "which the one-step ray cannot see",
    "c_barrier": "not predicted: needs the end point of a T-step run",
}


@dataclass(frozen=True, eq=False)
class RayDetails:
    """What the analytic predictor computed on the grid ``c``: L(c/lambda_H0)/L_0 of the polynomial
    with the gates of theta_0 (``loss_ratio_at_init``, its crossing ``c_loss_at_init``) and with the
    gates of the last anchor (``loss_ratio``); the anchors visited (c values, 0 = theta_0); the
    degree D, the Taylor coefficients a_k at theta_0 (rms over examples and outputs, and per output),
    the number of frozen gated calls, the largest off-node misfit and why the other values are missing."""

    c: np.ndarray
    loss_ratio_at_init: np.ndarray
    c_loss_at_init: float | None
    loss_ratio: np.ndarray
    anchors: tuple[float, ...]
    degree: int
    taylor_rms: np.ndarray
    taylor_rms_per_output: np.ndarray
    gate_calls: int
    check_error: float
    not_predicted: dict[str, str]

    def term_rms(self, c: float, lambda0: float) -> np.ndarray:
        """rms over examples and outputs of a_k eta^k at eta = c / lambda0, k = 0 .. D."""
        return self.taylor_rms * (c / lambda0) ** np.arange(self.degree + 1)

    def as_dict(self) -> dict:
        """JSON-ready summary."""
        return {
            "c_loss_at_init": self.c_loss_at_init,
            "anchors": list(self.anchors),
            "degree": self.degree,
            "taylor_rms": self.taylor_rms.tolist(),
            "gate_calls": self.gate_calls,
            "check_error": self.check_error,
            "not_predicted": dict(self.not_predicted),
        }


def first_step_gradient(experiment: Experiment) -> tuple[torch.Tensor, Cost]:
    """g_0: the gradient at theta_0 of the first SGD batch (``sgd_batches(n, B, seed_sgd)``), and its cost."""
    start = time.perf_counter()
    config = experiment.config
    index = next(sgd_batches(len(experiment.train_x), config.protocol.batch_size, config.seeds.sgd))
    x, y = experiment.train_x, experiment.train_y
    if index is not None:
        index = index.to(x.device)
        x, y = x[index], y[index]
    _, gradient = loss_and_gradient(
        experiment.model, experiment.probe.loss_fn, experiment.theta0, Batch.of(x, y, config.measurement.chunk_size)
    )
    return gradient, Cost(gradients=1, seconds=time.perf_counter() - start)


def analytic_prediction(
    experiment: Experiment,
    g0: torch.Tensor | None = None,
    grid: CGrid | None = None,
    refreeze: int = DEFAULT_REFREEZE,
    degree: int | None = None,
) -> tuple[CriticalValues, Cost, RayDetails]:
    """c_loss of the frozen-gate one-step ray over ``grid`` (None: the default CGrid), re-frozen at most ``refreeze`` times
    (0: the gates of theta_0 only); c_sharp, c_max, c_barrier not found (reasons in the details).

    ``g0``: the first SGD batch's gradient (None: computed, one gradient added to the cost).
    ``degree``: the frozen network's degree in theta (None: ``degree_bound``, the number of
    parameter tensors). Raises ``FrozenGatesUnavailable`` (a ValueError) with the reason when the
    network has a nonlinearity other than ReLU gates. Cost: D + 3 forward passes on the
    evaluation set per anchor (record the gates, D + 1 nodes, the off-node check).
    """
    require_int("refreeze", refreeze, minimum=0)
    grid = CGrid() if grid is None else grid
    cost = Cost()
    if g0 is None:
        g0, cost = first_step_gradient(experiment)
    start = time.perf_counter()
    probe = experiment.probe
    degree = degree_bound(experiment.model) if degree is None else degree
    c = grid.values
    eta = np.concatenate([[0.0], c / experiment.lambda0])

    def loss_ratio(anchor: float) -> tuple[np.ndarray, list[FrozenRay]]:
        rays = [
            frozen_ray(experiment.model, experiment.theta0, g0, x, float(eta[-1]), degree, anchor / experiment.lambda0)
            for x, _ in probe.eval_batch.chunks
        ]
        return ray_loss(rays, probe.eval_batch, probe.loss_fn, eta), rays

    at_init, rays = loss_ratio(0.0)
    loss0 = at_init[0]  # the true L_0 (the gates of theta_0 are those of the network there)
    ratio_at_init = at_init[1:] / loss0
    threshold = first_true("c_loss", c, ratio_at_init > 1.0)
    anchors, ratio = [0.0], ratio_at_init
    gated = rays[0].gate_calls > 0  # without gates (a linear net) the polynomial is the ray itself
    while gated and len(anchors) <= refreeze and threshold.estimate is not None and threshold.estimate not in anchors:
        anchors.append(threshold.estimate)
        ratio = loss_ratio(threshold.estimate)[0][1:] / loss0
        threshold = first_true("c_loss", c, ratio > 1.0)
    taylor = np.concatenate([ray.taylor() for ray in rays], axis=1)
    values = CriticalValues(
        c_loss=threshold,
        **{name: Threshold(name, None, None, None) for name in NOT_PREDICTED},
    )
    cost = cost + Cost(forwards=len(anchors) * (degree + 3), seconds=time.perf_counter() - start)
    details = RayDetails(
        c=c,
        loss_ratio_at_init=ratio_at_init,
        c_loss_at_init=first_true("c_loss", c, ratio_at_init > 1.0).estimate,
        loss_ratio=ratio,
        anchors=tuple(anchors),
        degree=degree,
        taylor_rms=np.sqrt(np.mean(taylor**2, axis=(1, 2))),
        taylor_rms_per_output=np.sqrt(np.mean(taylor**2, axis=1)),
        gate_calls=rays[0].gate_calls,
        check_error=max(ray.check_error for ray in rays),
        not_predicted=dict(NOT_PREDICTED),
    )
    return values, cost, details


def ray_loss(rays: list[FrozenRay], batch: Batch, loss_fn: LossFn, eta: np.ndarray) -> np.ndarray:
    """L(theta_0 - eta g) of the frozen network on ``batch`` for each eta: sum_c (n_c / N) L_c."""
    total = np.zeros(len(eta))
    for weight, ray, (_, y) in zip(batch.weights, rays, batch.chunks):
        outputs = torch.from_numpy(ray.evaluate(eta))
        targets = y.detach().double().cpu()
        total += weight * np.array([float(loss_fn(output, targets)) for output in outputs])
    return total
