"""What a network measures at its initialisation theta_0, for the predictions from the
initialisation (docs/PROTOCOL.md section 7).

    measurements = measure_initial(prepare(config))

Everything is measured on the fixed measurement batch of the experiment (N = B examples, k
outputs, the MSE L = 1/(2 B k) |f - y|^2 of docs/PROTOCOL.md section 1), except the first SGD
step's gradient g_0, which is taken on the first SGD batch B_1 exactly as ``run_at_c`` takes it:

- the sharpness lambda_H0 and its unit eigenvector u (the solve of ``prepare``, not repeated);
- the residual r = f(theta_0) - y and the top eigenpair of the NTK Theta = J J^T (B k x B k),
  e = J v / |J v| from the top eigenvector v of J^T J, which splits the loss into the part
  carried by that mode and the rest;
- the sharpness gradient grad lambda = grad_theta (u^T H(theta) u) at theta_0 (a third
  derivative contracted twice with u; by Hellmann-Feynman the gradient of the eigenvalue
  itself when u is its exact eigenvector), and the rates kappa = -grad lambda . grad L
  (= d lambda_H(theta_0 - eta grad L) / d eta at eta = 0) on the measurement batch and
  kappa_B = -grad lambda . g_0 along the first SGD step (Damian, Nichani & Lee 2023);
- g_0, L_{B_1}(theta_0) and the Rayleigh quotient g_0^T H g_0 / |g_0|^2.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import torch

from earlyphase.core.conventions import MSE
from earlyphase.core.cost import Cost
from earlyphase.empirical.curvature.ntk import jacobian_product
from earlyphase.empirical.functional import FlatModel
from earlyphase.empirical.objective import (
    Batch,
    LossFn,
    hessian_operator,
    loss_and_gradient,
    top_ntk_eigenpair,
)
from earlyphase.empirical.training import Experiment, training_batches

THIRD_ORDER_HVPS = 3
"""HVP-equivalents charged for one third-derivative contraction grad (u^T H u): one more reverse
pass through the graph of an HVP; it took 2.3-2.6 times a double-backward HVP that builds its
graph (3.4-4.8 times one that reuses a kept graph) on a digits FCN of depth 4, width 128, CPU."""


@dataclass(frozen=True, eq=False)
class InitialMeasurements:
    """Measurements at theta_0 (float64 scalars and tensors), on the measurement batch unless
    named after the first SGD batch B_1. N examples, k outputs, P parameters.

    Sharpness and loss:
      ``lambda0``       lambda_H0 = u^T H u, the top algebraic eigenvalue of H = grad^2 L;
      ``sharpness_vector``  u (P,), unit, its eigenvector (from ``prepare``);
      ``loss0``         L_0 = L(theta_0) on the measurement batch.

    The NTK's top mode (J = d vec f / d theta, (N k) x P):
      ``residual``      r = f(theta_0) - y, shape (N, k);
      ``ntk_top``       lambda_max(Theta), Theta = J J^T (not divided by N k; the Gauss-Newton
                        estimate of lambda_H0 is ``ntk_sharpness`` = ntk_top / (N k));
      ``ntk_vector``    e (N, k), the unit top eigenvector of Theta, e = J v / |J v| with v the
                        top eigenvector of J^T J; its sign makes e . r >= 0;
      ``top_output``    p = e . f(theta_0) / sqrt(N k);
      ``top_residual``  q = e . r / sqrt(N k) >= 0.
                        With these normalisations the top mode is a one-example, one-output
                        model: the scalar output phi = e . f / sqrt(N k) has |grad phi|^2 =
                        ntk_sharpness, the target p - q, and the MSE carried by the mode is q^2 / 2
                        (the uv model's f, g = f - y and lambda at its own theta_0);
      ``loss_top``      (e . r)^2 / (2 N k) = q^2 / 2 (MSE only, None for cross-entropy);
      ``loss_rest``     L_0 - loss_top = |r - (e . r) e|^2 / (2 N k) (MSE only, else None).

    Rates of the sharpness:
      ``sharpness_gradient``  grad lambda = grad_theta (u^T H(theta) u) at theta_0, u held fixed;
      ``sharpness_gradient_norm2``  |grad lambda|^2;
      ``gradient``      grad L(theta_0) on the measurement batch;
      ``kappa``         -grad lambda . grad L: d/d eta lambda_H(theta_0 - eta grad L) at eta = 0;
      ``kappa_batch``   -grad lambda . g_0: d/d eta lambda_H(theta_0 - eta g_0) at eta = 0.

    The first SGD step (batch B_1 of ``run_at_c``, whatever the momentum: v_1 = g_0):
      ``first_batch_loss``  L_{B_1}(theta_0);
      ``first_gradient``    g_0 = grad L_{B_1}(theta_0), so theta_1 = theta_0 - (c / lambda_H0) g_0;
      ``first_gradient_rayleigh``  g_0^T H g_0 / |g_0|^2 (H on the measurement batch).

    ``ntk_residual`` and ``ntk_products``: the NTK solve's relative residual and J^T J products.
    ``cost``: the work of ``measure_initial`` (not the sharpness solve of ``prepare``).
    """

    lambda0: float
    sharpness_vector: torch.Tensor
    loss0: float
    residual: torch.Tensor
    ntk_top: float
    ntk_vector: torch.Tensor
    ntk_residual: float
    ntk_products: int
    top_output: float
    top_residual: float
    loss_top: float | None
    loss_rest: float | None
    sharpness_gradient: torch.Tensor
    sharpness_gradient_norm2: float
    gradient: torch.Tensor
    kappa: float
    first_batch_loss: float
    first_gradient: torch.Tensor
    kappa_batch: float
    first_gradient_rayleigh: float
    cost: Cost

    @property
    def ntk_sharpness(self) -> float:
        """lambda_max(Theta) / (N k): the Gauss-Newton part's top eigenvalue, = lambda_H0 when r = 0 (MSE)."""
        return self.ntk_top / self.residual.numel()

    def scalars(self) -> dict[str, float | None]:
        """Every scalar measurement by field name (for tables and JSON), plus ``ntk_sharpness``,
        |grad L|^2 and |g_0|^2."""
        names = (
            "lambda0",
            "loss0",
            "ntk_top",
            "ntk_residual",
            "ntk_products",
            "top_output",
            "top_residual",
            "loss_top",
            "loss_rest",
            "sharpness_gradient_norm2",
            "kappa",
            "first_batch_loss",
            "kappa_batch",
            "first_gradient_rayleigh",
        )
        values: dict[str, float | None] = {name: getattr(self, name) for name in names}
        values["ntk_sharpness"] = self.ntk_sharpness
        values["gradient_norm2"] = float(self.gradient @ self.gradient)
        values["first_gradient_norm2"] = float(self.first_gradient @ self.first_gradient)
        return values


def measure_initial(experiment: Experiment) -> InitialMeasurements:
    """The ``InitialMeasurements`` of ``experiment`` at theta_0 (equations in its docstring).

    Solves: the NTK's top eigenpair by Lanczos on J^T J warm-started from u (``lanczos_tol``,
    ``lanczos_max_iter`` of the config); one Jacobian-vector product for e = J v / |J v|; one
    third-derivative contraction for grad lambda; one HVP for g_0^T H g_0; two gradients (grad L,
    g_0) and one forward pass. ``cost`` counts J^T J and J v products as HVPs (each is a
    forward and two reverse passes, like a double-backward HVP) and the third-derivative
    contraction as ``THIRD_ORDER_HVPS``.
    """
    started = time.perf_counter()
    config, probe, model = experiment.config, experiment.probe, experiment.model
    theta, batch = experiment.theta0, probe.measure_batch
    u = experiment.initial_sharpness.vector
    with torch.no_grad():
        chunk_outputs = [model(theta, x) for x, _ in batch.chunks]
    loss0 = float(sum(w * probe.loss_fn(f, y) for w, f, (_, y) in zip(batch.weights, chunk_outputs, batch.chunks)))
    outputs = torch.cat(chunk_outputs).to(torch.float64)
    residual = outputs - torch.cat([y for _, y in batch.chunks]).to(torch.float64)

    ntk = top_ntk_eigenpair(model, theta, batch, u, config.measurement.lanczos_tol, config.measurement.lanczos_max_iter)
    direction = ntk.vector.to(theta.dtype)
    image = torch.cat(
        [jacobian_product(functools.partial(_forward, model, x=x), theta, direction) for x, _ in batch.chunks]
    )
    e = image.to(torch.float64) / torch.linalg.vector_norm(image.to(torch.float64))
    if float(torch.sum(e * residual)) < 0:
        e = -e
    size = residual.numel()
    projection = float(torch.sum(e * residual))
    loss_top = projection**2 / (2 * size) if config.protocol.loss == MSE else None

    _, gradient = loss_and_gradient(model, probe.loss_fn, theta, batch)
    first_batch_loss, first_gradient = first_batch_gradient(experiment)
    sharpness_gradient = sharpness_gradient_at(model, probe.loss_fn, theta, batch, u)
    hessian, _ = hessian_operator(model, probe.loss_fn, theta, batch, config.measurement.hvp_method)
    g0 = first_gradient
    rayleigh = float(g0 @ hessian(g0)) / float(g0 @ g0)

    grad_lambda = sharpness_gradient.to(torch.float64)
    gradient = gradient.to(torch.float64)
    hvps = int(ntk.matvecs) + len(batch.chunks) * (1 + THIRD_ORDER_HVPS) + 1
    return InitialMeasurements(
        lambda0=experiment.lambda0,
        sharpness_vector=u,
        loss0=loss0,
        residual=residual,
        ntk_top=float(ntk.value),
        ntk_vector=e,
        ntk_residual=float(ntk.residual),
        ntk_products=int(ntk.matvecs),
        top_output=float(torch.sum(e * outputs)) / math.sqrt(size),
        top_residual=projection / math.sqrt(size),
        loss_top=loss_top,
        loss_rest=None if loss_top is None else loss0 - loss_top,
        sharpness_gradient=grad_lambda,
        sharpness_gradient_norm2=float(grad_lambda @ grad_lambda),
        gradient=gradient,
        kappa=-float(grad_lambda @ gradient),
        first_batch_loss=float(first_batch_loss),
        first_gradient=g0,
        kappa_batch=-float(grad_lambda @ g0),
        first_gradient_rayleigh=rayleigh,
        cost=Cost(hvps=hvps, gradients=2, forwards=1, seconds=time.perf_counter() - started),
    )


def first_batch_gradient(experiment: Experiment) -> tuple[float, torch.Tensor]:
    """L_{B_1}(theta_0) and g_0 = grad L_{B_1}(theta_0) (float64) on the first SGD batch B_1 of
    ``run_at_c``, so that its first step is theta_1 = theta_0 - (c / lambda_H0) g_0 (one gradient)."""
    loss, gradient = loss_and_gradient(
        experiment.model, experiment.probe.loss_fn, experiment.theta0, next(training_batches(experiment))
    )
    return float(loss), gradient.to(torch.float64)


def sharpness_gradient_at(
    model: FlatModel, loss_fn: LossFn, theta: torch.Tensor, batch: Batch, vector: torch.Tensor
) -> torch.Tensor:
    """grad_theta (u^T H(theta) u) = sum_c (n_c / N) grad_theta (u^T H_c(theta) u) for a fixed u,
    i.e. the third derivative T_ijk u_j u_k, by reverse mode through a double-backward HVP:

        g = grad L_c(theta)  (with graph),   H_c u = grad_theta (g . u)  (with graph),
        grad_theta (u . H_c u)  (a third reverse pass; zero where H_c does not depend on theta).
    """
    u = vector.to(theta.dtype)
    total = torch.zeros_like(theta)
    for weight, (x, y) in zip(batch.weights, batch.chunks):
        with torch.enable_grad():
            point = theta.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(loss_fn(model(point, x), y), point, create_graph=True)
            (product,) = torch.autograd.grad(grad, point, u, create_graph=True)
            if product.requires_grad:
                (third,) = torch.autograd.grad(product @ u, point, allow_unused=True)
                if third is not None:
                    total = total + weight * third
    return total


def _forward(model: FlatModel, theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """f(theta, x) with x bound first (``functools.partial``): the network on one chunk."""
    return model(theta, x)
