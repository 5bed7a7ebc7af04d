"""The network linearised at theta_0, trained by the protocol's own SGD: the lazy (NTK) prediction
of a run's loss trajectory (docs/PROTOCOL.md sections 5 and 7).

The linearised network is f_lin(theta; x) = f(theta_0; x) + J(x) (theta - theta_0), J = d f / d theta
at theta_0 (one forward-mode Jacobian-vector product per evaluation). ``linearised_losses`` trains
it exactly as ``run_at_c`` trains the network, from theta_0 with v_0 = 0 on the same batches B_t:

    v_t = momentum v_{t-1} + grad L_{B_t}(f_lin(theta_{t-1})),   theta_t = theta_{t-1} - eta v_t,
    eta = c / lambda_H0 (the network's sharpness, the run's own step size),

and records L(f_lin(theta_t)) on the evaluation set. For the MSE the residual g = f_lin - y then
obeys g_t = (I - eta J_{B_t} J_{B_t}^T / (B k)) g_{t-1} on the batch (full-batch GD:
g_t = (I - eta Theta / (n k))^t g_0, each NTK mode decaying by 1 - eta mu_i / (n k), as in
``earlyphase.theory.ntk.linearized_trajectories``). The Hessian of the linearised MSE loss is
J^T J / (n k) at every theta: its sharpness never moves (lambda_t / lambda_0 = 1), and full-batch
GD diverges once eta mu_max / (n k) > 2.
"""

from __future__ import annotations

import numpy as np
import torch

from earlyphase.core.conventions import is_diverged
from earlyphase.core.validate import require_int, require_positive
from earlyphase.empirical.functional import FlatModel
from earlyphase.empirical.objective import Network, evaluate, loss_and_gradient
from earlyphase.empirical.training import Experiment, training_batches


def linearised_network(model: FlatModel, theta0: torch.Tensor) -> Network:
    """f_lin(theta, x) = f(theta_0, x) + J(x) (theta - theta_0), differentiable in theta (torch.func.jvp)."""
    anchor = theta0.detach()

    def network(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        outputs_and_tangent = torch.func.jvp(lambda point: model(point, x), (anchor,), (theta - anchor,))
        return outputs_and_tangent[0] + outputs_and_tangent[1]

    return network


def linearised_losses(experiment: Experiment, c: float, steps: int) -> np.ndarray:
    """(L_0, L_1, .., L_T) on the evaluation set of the linearised network trained for T = ``steps``
    steps of ``run_at_c``'s SGD at eta = c / lambda_H0 (module docstring); NaN after the first
    divergent loss (``earlyphase.core.is_diverged`` with the config's loss_max)."""
    eta = require_positive("c", c) / experiment.lambda0
    steps = require_int("steps", steps, 0)
    network = linearised_network(experiment.model, experiment.theta0)
    loss_fn, eval_batch = experiment.probe.loss_fn, experiment.probe.eval_batch
    momentum = experiment.config.protocol.momentum
    losses = np.full(steps + 1, np.nan)
    losses[0] = evaluate(network, loss_fn, experiment.theta0, eval_batch)[0]
    theta = experiment.theta0
    velocity = torch.zeros_like(theta)
    for t, batch in zip(range(1, steps + 1), training_batches(experiment)):
        _, gradient = loss_and_gradient(network, loss_fn, theta, batch)
        velocity = momentum * velocity + gradient
        theta = theta - eta * velocity
        losses[t] = evaluate(network, loss_fn, theta, eval_batch)[0]
        if bool(is_diverged(losses[t], experiment.config.protocol.loss_max)):
            break
    return losses


__all__ = ["linearised_losses", "linearised_network"]
