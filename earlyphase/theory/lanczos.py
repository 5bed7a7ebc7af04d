"""Top (largest algebraic) eigenvalue of a symmetric operator by restarted Lanczos, in JAX.

One cycle of m steps with full reorthogonalisation (classical Gram-Schmidt, twice) builds
V (m x D) and the tridiagonal T = V H V^T; the top Ritz pair (theta, V^T y) of T has the
residual ||H x - theta x|| = |beta_m y_m|, reported relative to |theta|. A cycle that has
not converged restarts from its Ritz vector (warm starts along a trajectory make one cycle
the common case).

Breakdown: when orthogonalisation leaves beta_j <= BREAKDOWN ||H q_j|| the Krylov space is
numerically invariant and the remainder is rounding noise that two Gram-Schmidt passes cannot
make orthogonal (normalising it would plant spurious Ritz values above lambda_max). The cycle
then deflates: beta_j is dropped from T, later vectors are zero (Ritz values 0 only), and the
dropped |beta_j y_j| is added to the residual bound, which stays exact to that size.

Pure and traceable: ``jax.vmap`` over starts (and over the data ``matvec`` closes over)
batches it; the restart loop then runs until every active member has converged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import jax.numpy as jnp
from jax import lax

from earlyphase.core.validate import require_int, require_positive

Matvec = Callable[[jnp.ndarray], jnp.ndarray]

BREAKDOWN = 1e-10
"""beta_j / ||H q_j|| at or below which a cycle deflates (module docstring)."""


@dataclass(frozen=True)
class LanczosSettings:
    """Krylov dimension per cycle, the most cycles, and the relative residual to reach."""

    iterations: int = 8
    max_cycles: int = 8
    tol: float = 1e-7

    def __post_init__(self) -> None:
        require_int("iterations", self.iterations, 2)
        require_int("max_cycles", self.max_cycles, 1)
        require_positive("tol", self.tol)


class Eigenpair(NamedTuple):
    """Top eigenvalue, unit eigenvector, ||H v - lambda v|| / |lambda| and operator applications."""

    value: jnp.ndarray
    vector: jnp.ndarray
    residual: jnp.ndarray
    matvecs: jnp.ndarray


def lanczos_cycle(matvec: Matvec, start: jnp.ndarray, iterations: int) -> tuple[jnp.ndarray, ...]:
    """One Lanczos cycle from ``start``: (theta, unit Ritz vector, residual bound / |theta|)."""
    dim = start.shape[0]
    q0 = start / jnp.linalg.norm(start)

    def step(j: int, carry: tuple) -> tuple:
        basis, alphas, kept, dropped, q = carry
        basis = basis.at[j].set(q)
        hq = matvec(q)
        w = hq - basis.T @ (basis @ hq)
        w = w - basis.T @ (basis @ w)
        beta = jnp.linalg.norm(w)
        deflate = beta <= BREAKDOWN * jnp.linalg.norm(hq)
        q_next = jnp.where(deflate, 0.0, w / jnp.where(deflate, 1.0, beta))
        return (
            basis,
            alphas.at[j].set(jnp.dot(q, hq)),
            kept.at[j].set(jnp.where(deflate, 0.0, beta)),
            dropped.at[j].set(jnp.where(deflate, beta, 0.0)),
            q_next,
        )

    zeros = jnp.zeros(iterations, dtype=start.dtype)
    basis, alphas, kept, dropped, _ = lax.fori_loop(
        0, iterations, step, (jnp.zeros((iterations, dim), start.dtype), zeros, zeros, zeros, q0)
    )
    off = kept[:-1]
    tridiagonal = jnp.diag(alphas) + jnp.diag(off, 1) + jnp.diag(off, -1)
    values, vectors = jnp.linalg.eigh(tridiagonal)
    theta, y = values[-1], vectors[:, -1]
    ritz = basis.T @ y
    residual = jnp.abs(kept[-1] * y[-1]) + jnp.sum(jnp.abs(dropped * y))
    return theta, ritz / jnp.linalg.norm(ritz), residual / jnp.abs(theta)


def lanczos_top(
    matvec: Matvec,
    start: jnp.ndarray,
    settings: LanczosSettings = LanczosSettings(),
    active: jnp.ndarray | bool = True,
) -> Eigenpair:
    """Largest algebraic eigenpair of the symmetric ``matvec``, restarted until the residual
    ||H v - lambda v|| / |lambda| <= tol or ``max_cycles`` cycles. An inactive member (e.g. a
    diverged run) does no work and returns NaN. NaN residuals count as finished.
    """

    def keep_going(state: tuple) -> jnp.ndarray:
        cycle, _, _, residual = state
        return active & (cycle < settings.max_cycles) & (residual > settings.tol)

    def cycle(state: tuple) -> tuple:
        count, _, vector, _ = state
        theta, ritz, residual = lanczos_cycle(matvec, vector, settings.iterations)
        return count + 1, theta, ritz, residual

    nan = jnp.array(jnp.nan, dtype=start.dtype)
    count, theta, vector, residual = lax.while_loop(
        keep_going, cycle, (jnp.array(0), nan, start, jnp.array(jnp.inf, dtype=start.dtype))
    )
    residual = jnp.where(count > 0, residual, nan)
    return Eigenpair(theta, vector, residual, count * settings.iterations)
