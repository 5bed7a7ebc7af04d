"""The network along a gradient ray with its ReLU gates frozen at theta_0: an exact polynomial in eta.

Along theta(eta) = theta_0 - eta g, with the gates of every ReLU held at their theta_0 values
(``earlyphase.empirical.gates``), a bias-free ReLU or linear network is a polynomial in eta of
degree D, the number of weight layers on its longest path (docs/PROTOCOL.md section 7):

    f_frozen(theta_0 - eta g; x) = sum_{k=0}^{D} a_k(x) eta^k,   a_k = (1/k!) d^k f / d eta^k at eta = 0,

so a_0 = f(theta_0), a_1 = -J g, a_2 = (1/2) g^T (grad^2 f) g, ... ``frozen_ray`` finds the
polynomial from D + 1 frozen forward passes at the Chebyshev nodes of [0, eta_top]: the
interpolant in the Chebyshev basis of t = 2 eta / eta_top - 1 is exact up to rounding (a
well-conditioned fit), and one more forward pass off the nodes checks that the frozen network
IS a polynomial of that degree (a module that uses a parameter twice, or a nonlinearity that is
not a gate, fails the check).

The gates may be frozen at another point of the ray, theta(eta_a) (``anchor``): the polynomial
is then exact near eta_a instead of near 0 (the true ray is piecewise polynomial, one piece per
gate pattern).

D is not known for a general module; ``degree_bound`` takes the number of parameter tensors,
which bounds it when each tensor enters the network once (each weight layer is then linear in
its own tensor, and the frozen network multilinear in all of them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from numpy.polynomial import chebyshev

from earlyphase.core.validate import require_int, require_positive
from earlyphase.empirical.functional import FlatModel
from earlyphase.empirical.gates import FrozenGatesUnavailable, record_gates, replay_gates

CHECK_POINT = 0.3183098861837907
"""t of the off-node check (1/pi: never a Chebyshev node of a small degree)."""

CHECK_TOLERANCE = 1e-6
"""Largest relative misfit max|f - P| / max|f| at the check point of a polynomial frozen network."""


@dataclass(frozen=True, eq=False)
class FrozenRay:
    """Chebyshev coefficients (degree + 1, n, k), in t = 2 eta / eta_top - 1, of the frozen network
    along theta_0 - eta g on [0, eta_top], its gates those of theta_0 - eta_anchor g.

    ``check_error``: the relative misfit of the polynomial at the off-node check point.
    ``gate_calls``: the number of gated (ReLU) calls frozen per forward pass.
    """

    eta_top: float
    eta_anchor: float
    outputs: np.ndarray
    check_error: float
    gate_calls: int

    @property
    def degree(self) -> int:
        return len(self.outputs) - 1

    def evaluate(self, eta: np.ndarray) -> np.ndarray:
        """f_frozen(theta_0 - eta g) for each eta: shape (len(eta), n, k)."""
        return chebyshev_values(self.outputs, 2.0 * np.asarray(eta, dtype=float) / self.eta_top - 1.0)

    def taylor(self) -> np.ndarray:
        """a_k = (1/k!) d^k f_frozen / d eta^k at eta = 0 for k = 0 .. degree: shape (degree + 1, n, k)."""
        scale = 2.0 / self.eta_top
        derivatives = [self.outputs] + [
            chebyshev.chebder(self.outputs, order, axis=0) for order in range(1, self.degree + 1)
        ]
        return np.stack(
            [chebyshev.chebval(-1.0, d) * scale**order / math.factorial(order) for order, d in enumerate(derivatives)]
        )


def chebyshev_values(coefficients: np.ndarray, t: np.ndarray) -> np.ndarray:
    """sum_j c_j T_j(t) for each t: shape (len(t),) + coefficients.shape[1:]."""
    values = chebyshev.chebval(t, coefficients.reshape(len(coefficients), -1))  # (m, len(t))
    return np.moveaxis(values, -1, 0).reshape((len(t),) + coefficients.shape[1:])


def chebyshev_nodes(count: int) -> np.ndarray:
    """t_j = cos((2 j + 1) pi / (2 count)), j = 0 .. count - 1: the Chebyshev points of the first kind."""
    return np.cos((2 * np.arange(count) + 1) * np.pi / (2 * count))


def degree_bound(model: FlatModel) -> int:
    """The number of parameter tensors: the frozen network's degree in theta when each enters once."""
    return len(model.shapes)


def in_float64(model: FlatModel) -> FlatModel:
    """``model`` with its floating-point buffers in float64 (call it with float64 theta and x)."""
    buffers = {name: b.double() if b.is_floating_point() else b for name, b in model.buffers.items()}
    return replace(model, buffers=buffers)


def frozen_ray(
    model: FlatModel,
    theta0: torch.Tensor,
    direction: torch.Tensor,
    inputs: torch.Tensor,
    eta_top: float,
    degree: int,
    eta_anchor: float = 0.0,
) -> FrozenRay:
    """The polynomial f_frozen(theta_0 - eta ``direction``; ``inputs``) on [0, eta_top] in float64,
    the gates recorded at theta_0 - eta_anchor ``direction``, from degree + 1 forward passes at the
    Chebyshev nodes (and one to record the gates, one to check).

    Raises ``FrozenGatesUnavailable`` if the network has a nonlinearity other than (leaky) ReLU
    or its frozen form is not a polynomial of ``degree`` (off-node check misfit > CHECK_TOLERANCE).
    """
    require_positive("eta_top", eta_top)
    require_positive("eta_anchor", eta_anchor, allow_zero=True)
    degree = require_int("degree", degree, minimum=0)
    model64 = in_float64(model)
    theta0, direction, inputs = theta0.double(), direction.double(), inputs.double()
    freezer, _ = record_gates(lambda: model64(theta0 - eta_anchor * direction, inputs))

    def frozen_at(t: float) -> np.ndarray:
        theta = theta0 - (eta_top * (t + 1.0) / 2.0) * direction
        with torch.no_grad():
            return replay_gates(freezer, lambda: model64(theta, inputs)).cpu().numpy()

    nodes = chebyshev_nodes(degree + 1)
    values = np.stack([frozen_at(float(t)) for t in nodes])
    coefficients = chebyshev.chebfit(nodes, values.reshape(len(nodes), -1), degree).reshape(
        (degree + 1,) + values.shape[1:]
    )
    check = frozen_at(CHECK_POINT)
    misfit = float(np.max(np.abs(chebyshev_values(coefficients, np.array([CHECK_POINT]))[0] - check)))
    check_error = misfit / max(float(np.max(np.abs(check))), np.finfo(float).tiny)
    if not check_error <= CHECK_TOLERANCE:
        raise FrozenGatesUnavailable(
            f"with its ReLU gates frozen the network is not a polynomial of degree {degree} in theta "
            f"(relative misfit {check_error:.2e} off the interpolation nodes): a parameter used more than "
            "once, or a nonlinearity that is not a ReLU gate; pass a larger degree if it is polynomial"
        )
    return FrozenRay(float(eta_top), float(eta_anchor), coefficients, check_error, freezer.calls)
