"""The uv model calibrated at a network's initialisation (docs/PROTOCOL.md sections 5 and 7).

The reduced model is the uv map of ``earlyphase.theory.uv`` (one example, one output,
L = (f - y)^2 / 2, g = f - y, A = g^2 + 2 f g):

    f'       = f - eta lambda g + (eta^2 / w) f g^2
    lambda'  = lambda + (eta g / w)(eta lambda g - 4 f)
    lambda_H = max(lambda/2 + sqrt(lambda^2/4 + A/w), |g|/sqrt(w))   (``calibrated_sharpness``)

with its free scales (f_0, y, lambda, w) set from what a network measures at theta_0 on its
measurement batch of B examples and k outputs (``entries`` n = B k), MSE L = |r|^2 / (2 n),
r = vec(f - y):

- e, the unit top eigenvector of the NTK Theta = J J^T (n x n), eigenvalue theta_top;
  ``top_output`` p = e . vec f and ``top_residual`` q = e . r (the top mode's output and
  residual; their common sign is e's and drops out);
- normalisation: the top mode is one uv "example" with f = p / sqrt(n), g = q / sqrt(n),
  y = (p - q) / sqrt(n), so that (f - y)^2 / 2 = q^2 / (2 n) = L_top, the loss the top mode
  carries, and the linearised step g' = (1 - eta lambda) g is the network's
  q' = (1 - eta theta_top / n) q: lambda = theta_top / n, the top eigenvalue of the
  Gauss-Newton matrix J^T J / n;
- the effective width w from kappa, the first-order rate of sharpness change along the
  gradient step, d/d eta of the sharpness at theta_0 - eta grad L, eta = 0 (units of lambda per
  unit eta). Two conventions (``curvature``):

  "ntk":     ``lambda0`` = theta_top / n and kappa = d lambda / d eta = -4 f g / w, so
             w = -4 f g / kappa = -4 p q / (n kappa).
  "hessian": ``lambda0`` = lambda_H0, the Hessian's top eigenvalue, and kappa = d lambda_H / d eta
             (= -grad lambda_H . grad L, what a network measures). lambda_H is the root of
             x^2 - lambda x - A/w = 0 (the Hessian's block), so along the step
             kappa = -(g/w) [4 f lambda_H + lambda (4 g + 2 f)] / (2 lambda_H - lambda)
             (``uv_sharpness_rate``); eliminating lambda = lambda_H - A u / lambda_H leaves a
             quadratic in u = 1/w: a u^2 + b u + c = 0 with a = g (4 g + 2 f) A,
             b = -(kappa A + g (6 f + 4 g) lambda_H^2), c = -kappa lambda_H^2. Its admissible
             roots (u > 0, lambda > ``NTK_FLOOR`` lambda_H, lambda_H >= |g| sqrt(u): the block's
             eigenvalue is the top one) may be two, both reproducing (lambda_H0, kappa): given
             ``ntk_lambda0`` (theta_top / n, which the network has, e being its eigenvector) the
             root whose lambda is nearest to it is taken; without it the smallest, the branch
             that tends to the lazy limit u -> 0 as kappa -> 0 (the other has w ~ g^2 / lambda^2:
             a Hessian dominated by its residual term).

  Where no finite w > 0 reproduces kappa (kappa = 0, kappa of the sign opposite to -f g, p q = 0,
  or no admissible root) the model is lazy: w = inf, lambda = lambda0, the sharpness never
  moves and g_t = (1 - c)^t g_0: c_loss is the first grid point above 2. ``symbolic.
  derive_uv_calibration`` derives these formulas from the uv model and checks that the uv
  model's own (f, f - y, lambda, kappa) give back its width exactly.

The rest of the network's loss, L_rest = L_0 - L_top, does not catapult in this model: given as
``rest_loss`` it enters as a constant, L_t = L_top,t + L_rest, so the ratio L_t / L_0 is
(L_top,t + L_rest) / (L_top,0 + L_rest). It leaves the loss-catapult flag (L_t > L_0 iff
L_top,t > L_top,0) unchanged and moves only the ratios and the divergence bound L_t > loss_max.

The protocol is the theory models' (``earlyphase.theory.protocol``): eta = c / lambda_H0 with
the model's OWN top Hessian eigenvalue (equal to lambda0 in the "hessian" convention); the
sharpness tracked is that eigenvalue; a run whose loss is not finite or exceeds loss_max is
frozen there; the whole grid is evaluated at once in closed form, so there is no walk: the
thresholds are ``earlyphase.core.search.search_result``'s over every point (the range a
``GridPlan`` scans). The model has no parameter-space
path, so c_barrier is reported not found. The effective width is a scale, not a count: the
complement eigenvalue |g|/sqrt(w) is kept at every w (the uv model lacks it at w = 1 only), so
the dynamics depend on (f, y, w, lambda, eta) only through (s f, s y, s^2 w) and
(alpha lambda, eta / alpha, w / alpha^2) invariants.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from earlyphase.core.conventions import DEFAULT_LOSS_MAX, is_diverged
from earlyphase.core.cost import Cost
from earlyphase.core.critical import CriticalValues
from earlyphase.core.search import CGrid
from earlyphase.core.validate import require_choice, require_int, require_positive
from earlyphase.theory.protocol import every_point_critical_values
from earlyphase.theory.uv import uv_map_step, uv_sharpness

CURVATURES = ("hessian", "ntk")
SWEEP_GRID = CGrid()
"""The empirical sweeps' grid: c = 2**x, x = 0, 0.1, .., 6."""
NTK_FLOOR = 1e-9
"""The smallest lambda / lambda_H0 an admissible "hessian" calibration may have: a positive NTK
beyond rounding (a root with lambda -> 0 is a Hessian made of its residual term alone)."""


@dataclass(frozen=True)
class UVCalibration:
    """The uv model's state at theta_0: output ``f0``, target ``y``, NTK ``lambda0`` (the uv
    lambda = |grad f|^2) and effective ``width`` (math.inf: lazy), in the uv model's units."""

    f0: float
    y: float
    lambda0: float
    width: float

    def __post_init__(self) -> None:
        for name in ("f0", "y"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite, got {getattr(self, name)!r}")
        require_positive("lambda0", self.lambda0)
        if not self.width > 0:
            raise ValueError(f"width must be > 0 (math.inf for the lazy model), got {self.width!r}")

    @property
    def lazy(self) -> bool:
        return math.isinf(self.width)

    @property
    def loss0(self) -> float:
        """L_top,0 = (f0 - y)^2 / 2."""
        return (self.f0 - self.y) ** 2 / 2

    @property
    def sharpness0(self) -> float:
        """lambda_H0, the model's exact top Hessian eigenvalue (``calibrated_sharpness``)."""
        return float(calibrated_sharpness(self.f0, self.lambda0, self.y, self.width))

    @property
    def sharpness_rate(self) -> float:
        """kappa_H = d lambda_H / d eta at eta = 0 along the gradient step (``uv_sharpness_rate``)."""
        return float(uv_sharpness_rate(self.f0, self.lambda0, self.y, self.width))


def calibrated_sharpness(f: ArrayLike, lam: ArrayLike, y: ArrayLike, width: float) -> np.ndarray:
    """lambda_H = max(lambda/2 + sqrt(lambda^2/4 + A/w), |g|/sqrt(w)): ``uv_sharpness`` with the
    eigenvalue |g|/sqrt(w) of the block's complement at every width. The effective width is a
    scale, not a count of parameters: the uv model has no complement at w = 1 only (and agrees
    with this for every w >= 2), and with it the dynamics depend on (f, y, w) only through
    (s f, s y, s^2 w)."""
    g = np.asarray(f, dtype=float) - np.asarray(y, dtype=float)
    with np.errstate(invalid="ignore"):
        return np.maximum(uv_sharpness(f, lam, y, width), np.abs(g) / np.sqrt(width))  # type: ignore[arg-type]  # a float width: a scale


def uv_sharpness_rate(f: ArrayLike, lam: ArrayLike, y: ArrayLike, width: ArrayLike) -> np.ndarray:
    """kappa_H = d lambda_H / d eta at eta = 0 of the uv model, lambda_H the block's eigenvalue:

        kappa_H = -(g/w) [4 f lambda_H + lambda (4 g + 2 f)] / (2 lambda_H - lambda),

    the derivative of the root of x^2 - lambda x - A/w = 0 (A = g^2 + 2 f g) with
    d lambda/d eta = -4 f g / w and d f/d eta = -lambda g (module docstring). Where |g|/sqrt(w)
    is the larger eigenvalue (only for |g| > lambda sqrt(w), far from any initialisation) this
    is not that eigenvalue's rate.
    """
    f, lam, y, width = (np.asarray(a, dtype=float) for a in (f, lam, y, width))
    g = f - y
    sharp = lam / 2 + np.sqrt(np.maximum(lam**2 / 4 + (g**2 + 2 * f * g) / width, 0.0))
    return -(g / width) * (4 * f * sharp + lam * (4 * g + 2 * f)) / (2 * sharp - lam)


def calibrate_uv(
    top_output: float,
    top_residual: float,
    lambda0: float,
    kappa: float,
    *,
    entries: int = 1,
    curvature: str = "hessian",
    ntk_lambda0: float | None = None,
) -> UVCalibration:
    """The uv model's (f0, y, lambda0, width) from a network's top mode at theta_0 (module docstring).

    ``top_output`` p = e . vec f and ``top_residual`` q = e . vec(f - y) over the ``entries``
    n = B k (example, output) pairs of the measurement batch, e the unit top NTK eigenvector;
    ``lambda0`` and ``kappa`` the sharpness and its first-order rate along the gradient step in
    the ``curvature`` convention ("hessian": lambda_H0 and d lambda_H / d eta; "ntk":
    theta_top / n and d lambda / d eta). ``ntk_lambda0`` (theta_top / n, "hessian" only) picks
    between two admissible widths. For the uv model itself: entries = 1, p = f, q = f - y.
    """
    entries = require_int("entries", entries, 1)
    require_choice("curvature", curvature, CURVATURES)
    lambda0 = require_positive("lambda0", lambda0)
    values = {"top_output": top_output, "top_residual": top_residual, "kappa": kappa}
    for name, value in values.items():
        if not math.isfinite(float(value)):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    scale = 1.0 / math.sqrt(entries)
    f, g = float(top_output) * scale, float(top_residual) * scale
    y = f - g
    if curvature == "ntk":
        with np.errstate(divide="ignore", invalid="ignore"):
            width = -4.0 * f * g / float(kappa) if kappa else math.inf
        return UVCalibration(f, y, lambda0, width if 0 < width < math.inf else math.inf)
    if ntk_lambda0 is not None:
        ntk_lambda0 = require_positive("ntk_lambda0", ntk_lambda0)
    inverse = _inverse_width(f, g, lambda0, float(kappa), ntk_lambda0)
    if inverse is None:
        return UVCalibration(f, y, lambda0, math.inf)
    return UVCalibration(f, y, lambda0 - (g**2 + 2 * f * g) * inverse / lambda0, 1.0 / inverse)


def _inverse_width(f: float, g: float, sharp: float, kappa: float, ntk: float | None) -> float | None:
    """The admissible root u = 1/w > 0 of a u^2 + b u + c = 0 ("hessian" convention, module
    docstring): the one whose lambda is nearest ``ntk``, or the smallest; None when there is none."""
    area = g**2 + 2 * f * g
    a = g * (4 * g + 2 * f) * area
    b = -(kappa * area + g * (6 * f + 4 * g) * sharp**2)
    c = -kappa * sharp**2
    if c == 0:
        return None
    if a == 0:
        roots = [-c / b] if b else []
    else:
        disc = b * b - 4 * a * c
        if disc < 0:
            return None
        # the stable pair of roots: q / a and c / q
        big = -(b + math.copysign(math.sqrt(disc), b)) / 2
        roots = [big / a, c / big] if big else []
    admissible = [
        u
        for u in roots
        if math.isfinite(u)
        and u > 0
        and sharp - area * u / sharp > NTK_FLOOR * sharp
        and sharp >= abs(g) * math.sqrt(u)
    ]
    if not admissible:
        return None
    if ntk is None:
        return min(admissible)
    return min(admissible, key=lambda u: abs(sharp - area * u / sharp - ntk))


class CalibratedTrajectories(NamedTuple):
    """Per-step arrays (C, T + 1) over c: ``loss`` = L_top,t + L_rest and ``sharpness``
    lambda_H,t (the model's exact top Hessian eigenvalue), NaN after divergence (a divergent
    step keeps its loss, as in ``uv_trajectories``)."""

    c: np.ndarray
    loss: np.ndarray
    sharpness: np.ndarray

    @property
    def loss_ratio(self) -> np.ndarray:
        """L_t / L_0."""
        return self.loss / self.loss[:, :1]

    @property
    def sharpness_ratio(self) -> np.ndarray:
        """lambda_H,t / lambda_H0."""
        return self.sharpness / self.sharpness[:, :1]


def calibrated_trajectories(
    calibration: UVCalibration,
    c_values: ArrayLike,
    steps: int,
    rest_loss: float = 0.0,
    loss_max: float = DEFAULT_LOSS_MAX,
) -> CalibratedTrajectories:
    """T steps of the calibrated uv map at eta = c / lambda_H0 for every c (vectorised, float64).

    L_t = (f_t - y)^2 / 2 + ``rest_loss`` (module docstring); a run whose L_t is not finite or
    exceeds ``loss_max`` is frozen at that step.
    """
    steps = require_int("steps", steps, 0)
    rest_loss = require_positive("rest_loss", rest_loss, allow_zero=True)
    c = np.atleast_1d(np.asarray(c_values, dtype=float))
    if c.ndim != 1:
        raise ValueError(f"c_values must be a scalar or one-dimensional, got shape {c.shape}")
    width, y = calibration.width, calibration.y
    eta = c / calibration.sharpness0
    f = np.full(c.shape, calibration.f0)
    lam = np.full(c.shape, calibration.lambda0)
    loss = np.full((c.size, steps + 1), np.nan)
    sharpness = np.full((c.size, steps + 1), np.nan)
    alive = np.ones(c.shape, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            if t:
                f, lam, _ = uv_map_step(f, lam, 0.0, np.where(alive, eta, 0.0), y, width)
            total = (f - y) ** 2 / 2 + rest_loss
            record = alive.copy()
            alive &= ~is_diverged(total, loss_max)
            loss[:, t] = np.where(record, total, np.nan)
            sharpness[:, t] = np.where(alive, calibrated_sharpness(f, lam, y, width), np.nan)
    return CalibratedTrajectories(c, loss, sharpness)


def calibrated_prediction(
    calibration: UVCalibration,
    grid: CGrid = SWEEP_GRID,
    steps: int = 10,
    epsilon: float = 0.0,
    loss_max: float = DEFAULT_LOSS_MAX,
    rest_loss: float = 0.0,
) -> tuple[CriticalValues, Cost]:
    """c_loss, c_sharp, c_max of the calibrated model over every point of ``grid`` (the sweeps'
    grid by default), flags and thresholds from ``earlyphase.theory.protocol.every_point_critical_values``
    (c_barrier not found), and the predictor's cost: no network evaluations, its wall seconds."""
    start = time.perf_counter()
    require_positive("epsilon", epsilon, allow_zero=True)
    runs = calibrated_trajectories(calibration, grid.values, steps, rest_loss, loss_max)
    critical = every_point_critical_values(grid, runs.loss, runs.sharpness, epsilon, loss_max)
    return critical, Cost(seconds=time.perf_counter() - start)


__all__ = [
    "CURVATURES",
    "SWEEP_GRID",
    "CalibratedTrajectories",
    "UVCalibration",
    "calibrate_uv",
    "calibrated_prediction",
    "calibrated_sharpness",
    "calibrated_trajectories",
    "uv_sharpness_rate",
]
