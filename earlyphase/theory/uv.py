"""The uv model (Lewkowycz et al. 2020; docs/PROTOCOL.md section 5), vectorised in numpy float64.

    f = v . u / sqrt(w),   u, v in R^w with N(0, 1) entries,   L = (f - y)^2 / 2,   g = f - y.

Gradient descent on (u, v) with step eta:

    u <- u - eta g v / sqrt(w),   v <- v - eta g u / sqrt(w).

It closes on (f, lambda, Delta), lambda = (|u|^2 + |v|^2) / w the NTK, Delta = |u|^2 - |v|^2:

    f'      = f - eta lambda g + (eta^2 / w) f g^2
    lambda' = lambda + (eta g / w)(eta lambda g - 4 f)
    Delta'  = (1 - eta^2 g^2 / w) Delta

The Hessian is grad f grad f^T + g grad^2 f with grad f = (v, u)/sqrt(w) and
grad^2 f = [[0, I], [I, 0]] / sqrt(w); its spectrum follows from (f, lambda, g) alone
(``uv_sharpness``). Every function broadcasts over leading axes (seeds, c values, ...):
vectors carry the width on the LAST axis.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from earlyphase.core.conventions import DEFAULT_LOSS_MAX, is_diverged
from earlyphase.core.critical import interpolation_grid
from earlyphase.core.validate import require_int


class UVTrajectories(NamedTuple):
    """Per-step arrays (..., T + 1) of an ensemble of uv runs, NaN after divergence; and
    ``barrier`` (...,): max over s = 0.01, .., 1 of L((1 - s) theta_0 + s theta_T), NaN for a
    run that diverged (s = 0 is L_0 itself)."""

    loss: np.ndarray
    sharpness: np.ndarray
    output: np.ndarray
    ntk: np.ndarray
    barrier: np.ndarray


def uv_init(width: int, seeds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """u, v of shape (len(seeds), w) with N(0, 1) entries, one generator per seed."""
    width = require_int("width", width, 1)
    u = np.empty((len(seeds), width))
    v = np.empty((len(seeds), width))
    for row, seed in enumerate(seeds):
        rng = np.random.default_rng(require_int("seed", seed, 0))
        u[row], v[row] = rng.standard_normal((2, width))
    return u, v


def uv_output(u: ArrayLike, v: ArrayLike) -> np.ndarray:
    """f = v . u / sqrt(w)."""
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    return np.sum(u * v, axis=-1) / np.sqrt(u.shape[-1])


def uv_ntk(u: ArrayLike, v: ArrayLike) -> np.ndarray:
    """lambda = |grad f|^2 = (|u|^2 + |v|^2) / w."""
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    return np.sum(u * u + v * v, axis=-1) / u.shape[-1]


def uv_gd_step(u: ArrayLike, v: ArrayLike, eta: ArrayLike, y: ArrayLike = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One GD step on L = (f - y)^2 / 2: u - eta g v / sqrt(w), v - eta g u / sqrt(w).

    ``eta`` and ``y`` broadcast against the leading axes of u and v.
    """
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    step = (np.asarray(eta, dtype=float) * (uv_output(u, v) - np.asarray(y, dtype=float)))[..., None]
    step = step / np.sqrt(u.shape[-1])
    return u - step * v, v - step * u


def uv_map_step(f: Any, lam: Any, delta: Any, eta: Any, y: Any, width: Any) -> tuple[Any, Any, Any]:
    """The closed map (f, lambda, Delta) -> (f', lambda', Delta') of one GD step (module docstring).

    Plain arithmetic only, so it accepts numpy arrays and sympy symbols alike.
    """
    g = f - y
    f_next = f - eta * lam * g + eta**2 / width * f * g**2
    lam_next = lam + eta * g / width * (eta * lam * g - 4 * f)
    delta_next = (1 - eta**2 * g**2 / width) * delta
    return f_next, lam_next, delta_next


def uv_hessian(u: ArrayLike, v: ArrayLike, y: float = 0.0) -> np.ndarray:
    """Dense Hessian of L = (f - y)^2 / 2 in theta = (u, v): grad f grad f^T + g grad^2 f (one run)."""
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    if u.ndim != 1 or u.shape != v.shape:
        raise ValueError("uv_hessian takes one run: u and v must be vectors of equal length")
    width = u.shape[0]
    grad = np.concatenate([v, u]) / np.sqrt(width)
    g = float(uv_output(u, v)) - y
    mixed = np.block([[np.zeros((width, width)), np.eye(width)], [np.eye(width), np.zeros((width, width))]])
    return np.outer(grad, grad) + g * mixed / np.sqrt(width)


def uv_sharpness(f: ArrayLike, lam: ArrayLike, y: ArrayLike, width: int) -> np.ndarray:
    """Top (largest algebraic) Hessian eigenvalue from (f, lambda, g = f - y) alone.

    With z = (v, u) = z+ + z- split over the +-1 eigenspaces of [[0, I], [I, 0]],
    |z+|^2 = (w lambda + 2 sqrt(w) f)/2 and |z-|^2 = (w lambda - 2 sqrt(w) f)/2, the Hessian is
    the 2x2 block [[|z+|^2/w + g/sqrt(w), |z+||z-|/w], [., |z-|^2/w - g/sqrt(w)]] on span(z+, z-)
    and +-g/sqrt(w) on its complement (present when w >= 2):

        lambda_H = max( lambda/2 + sqrt(lambda^2/4 + (g^2 + 2 f g)/w),  |g|/sqrt(w) ).
    """
    f, lam = np.asarray(f, dtype=float), np.asarray(lam, dtype=float)
    g = f - np.asarray(y, dtype=float)
    with np.errstate(invalid="ignore"):
        block = lam / 2 + np.sqrt(np.maximum(lam**2 / 4 + (g**2 + 2 * f * g) / width, 0.0))
    return np.maximum(block, np.abs(g) / np.sqrt(width)) if width >= 2 else block


def uv_trajectories(
    u: ArrayLike,
    v: ArrayLike,
    eta: ArrayLike,
    steps: int,
    y: float = 0.0,
    loss_max: float = DEFAULT_LOSS_MAX,
) -> UVTrajectories:
    """Parameter-space GD for an ensemble: u, v (..., w), eta broadcasting against (...).

    Row t of each output is the state after t steps. A run whose loss is not finite or
    exceeds ``loss_max`` is frozen there: that step keeps its loss, later rows are NaN.
    """
    steps = require_int("steps", steps, 0)
    u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    eta = np.asarray(eta, dtype=float)
    shape = np.broadcast_shapes(u.shape[:-1], eta.shape)
    u = np.broadcast_to(u, (*shape, u.shape[-1])).copy()
    v = np.broadcast_to(v, (*shape, v.shape[-1])).copy()
    eta = np.broadcast_to(eta, shape)
    columns = {name: np.full((*shape, steps + 1), np.nan) for name in UVTrajectories._fields[:-1]}
    alive = np.ones(shape, dtype=bool)
    u0, v0 = u, v
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            if t:
                u, v = uv_gd_step(u, v, np.where(alive, eta, 0.0), y)
            f, lam = uv_output(u, v), uv_ntk(u, v)
            loss = (f - y) ** 2 / 2
            record = alive.copy()
            alive &= ~is_diverged(loss, loss_max)
            columns["loss"][..., t] = np.where(record, loss, np.nan)
            columns["output"][..., t] = np.where(record, f, np.nan)
            columns["ntk"][..., t] = np.where(alive, lam, np.nan)
            columns["sharpness"][..., t] = np.where(alive, uv_sharpness(f, lam, y, u.shape[-1]), np.nan)
        path = np.stack([uv_output(u0 + s * (u - u0), v0 + s * (v - v0)) for s in interpolation_grid()[1:]])
        barrier = np.where(alive, np.max((path - y) ** 2 / 2, axis=0), np.nan)
    return UVTrajectories(**columns, barrier=barrier)
