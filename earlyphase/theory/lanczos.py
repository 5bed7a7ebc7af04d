"""Top (largest algebraic) eigenvalue of a symmetric operator by Lanczos, in JAX.

Lanczos with full reorthogonalisation (classical Gram-Schmidt, twice) builds V (j x D) and the
tridiagonal T_j = V H V^T one product at a time; after every product the top Ritz pair
(theta, V^T y) of T_j has the residual ||H x - theta x|| = |beta_j y_j|, reported relative to
|theta|, and the iteration stops as soon as it is <= tol (a warm start along a trajectory often
needs a handful of products). A cycle that reaches ``iterations`` products without converging
restarts from its Ritz vector, up to ``max_cycles`` cycles.

Breakdown: when orthogonalisation leaves beta_j <= BREAKDOWN ||H q_j|| the Krylov space is
numerically invariant and the remainder is rounding noise that two Gram-Schmidt passes cannot
make orthogonal (normalising it would plant spurious Ritz values above lambda_max): the cycle
stops there, and its residual |beta_j y_j| is exact to that size. Unused slots of T are set
below its Gershgorin bound, so they never pose as the top Ritz value.

Pure and traceable: ``jax.vmap`` over starts (and over the data ``matvec`` closes over)
batches it; the loops then run until every active member has converged. The networks' solver,
``earlyphase.empirical.curvature.lanczos`` (torch), has the same stopping rule, default
tolerance and result (``earlyphase.core.eigen.TopEigenpair``); it is separate because its
operators are torch autograd graphs, which a jitted JAX loop cannot call, and its eager loop
(members leaving as they converge) cannot be traced by JAX. The settings stay this solver's
own (``LanczosSettings``): its restart length, cycle count and start-vector noise have no
counterpart in the torch solver, which grows one Krylov basis up to ``max_iter`` products.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax.numpy as jnp
from jax import lax

from earlyphase.core.conventions import LANCZOS_TOL
from earlyphase.core.eigen import TopEigenpair
from earlyphase.core.validate import require_int, require_positive

Matvec = Callable[[jnp.ndarray], jnp.ndarray]

BREAKDOWN = 1e-10
"""beta_j / ||H q_j|| at or below which a cycle deflates (module docstring)."""


@dataclass(frozen=True)
class LanczosSettings:
    """Most products per cycle (the Krylov dimension), the most cycles, the relative residual to reach.

    The default tol is ``earlyphase.core.conventions.LANCZOS_TOL``, the empirical engine's too
    (the residual of every solve is recorded).
    """

    iterations: int = 12
    max_cycles: int = 6
    tol: float = LANCZOS_TOL
    noise: float = 0.01
    """Relative weight of a seeded random direction added to every start (used by the callers):
    a warm start alone could lack any component along a new top eigenvector."""

    def __post_init__(self) -> None:
        require_int("iterations", self.iterations, 2)
        require_int("max_cycles", self.max_cycles, 1)
        require_positive("tol", self.tol)
        require_positive("noise", self.noise, allow_zero=True)


def lanczos_cycle(
    matvec: Matvec, start: jnp.ndarray, iterations: int, tol: float, active: jnp.ndarray | bool = True
) -> tuple[jnp.ndarray, ...]:
    """Lanczos from ``start`` until the relative residual is <= tol, a breakdown, or ``iterations``
    products: (theta, unit Ritz vector, |beta_j y_j| / |theta|, products used)."""
    dim = start.shape[0]
    index = jnp.arange(iterations)

    def ritz(count: jnp.ndarray, alphas: jnp.ndarray, betas: jnp.ndarray) -> tuple:
        """Top eigenpair of T_count; unused slots sit below every Ritz value (Gershgorin)."""
        used = index < count
        floor = -(jnp.max(jnp.abs(alphas)) + 2 * jnp.max(betas) + 1.0)
        off = jnp.where(index[:-1] < count - 1, betas[:-1], 0.0)
        values, vectors = jnp.linalg.eigh(
            jnp.diag(jnp.where(used, alphas, floor)) + jnp.diag(off, 1) + jnp.diag(off, -1)
        )
        theta, y = values[-1], vectors[:, -1]
        last = jnp.sum(jnp.where(index == count - 1, betas * y, 0.0))
        return theta, y, jnp.abs(last) / jnp.abs(theta)

    def keep_going(state: tuple) -> jnp.ndarray:
        count, residual, broken = state[0], state[-2], state[-1]
        return active & (count < iterations) & (residual > tol) & ~broken

    def step(state: tuple) -> tuple:
        count, basis, alphas, betas, q, _, _ = state
        basis = basis.at[count].set(q)
        hq = matvec(q)
        w = hq - basis.T @ (basis @ hq)
        w = w - basis.T @ (basis @ w)
        beta = jnp.linalg.norm(w)
        alphas = alphas.at[count].set(jnp.dot(q, hq))
        betas = betas.at[count].set(beta)
        broken = beta <= BREAKDOWN * jnp.linalg.norm(hq)
        residual = ritz(count + 1, alphas, betas)[2]
        return count + 1, basis, alphas, betas, w / jnp.where(broken, 1.0, beta), residual, broken

    zeros = jnp.zeros(iterations, dtype=start.dtype)
    initial = (
        jnp.array(0),
        jnp.zeros((iterations, dim), start.dtype),
        zeros,
        zeros,
        start / jnp.linalg.norm(start),
        jnp.array(jnp.inf, dtype=start.dtype),
        jnp.array(False),
    )
    count, basis, alphas, betas, _, _, _ = lax.while_loop(keep_going, step, initial)
    theta, y, residual = ritz(count, alphas, betas)
    vector = basis.T @ y
    return theta, vector / jnp.linalg.norm(vector), residual, count


def lanczos_top(
    matvec: Matvec,
    start: jnp.ndarray,
    settings: LanczosSettings = LanczosSettings(),
    active: jnp.ndarray | bool = True,
) -> TopEigenpair[jnp.ndarray]:
    """Largest algebraic eigenpair of the symmetric ``matvec``, restarted from the Ritz vector
    until ||H v - lambda v|| / |lambda| <= tol (``converged``) or ``max_cycles`` cycles. An
    inactive member (e.g. a diverged run) does no work and returns NaN, not converged. NaN
    residuals count as finished.
    """

    def keep_going(state: tuple) -> jnp.ndarray:
        cycle, residual = state[0], state[3]
        return active & (cycle < settings.max_cycles) & (residual > settings.tol)

    def cycle(state: tuple) -> tuple:
        count, _, vector, _, products = state
        theta, ritz, residual, used = lanczos_cycle(matvec, vector, settings.iterations, settings.tol, active)
        return count + 1, theta, ritz, residual, products + used

    nan = jnp.array(jnp.nan, dtype=start.dtype)
    initial = (jnp.array(0), nan, start, jnp.array(jnp.inf, dtype=start.dtype), jnp.array(0))
    count, theta, vector, residual, products = lax.while_loop(keep_going, cycle, initial)
    residual = jnp.where(count > 0, residual, nan)
    return TopEigenpair(theta, vector, residual, products, residual <= settings.tol)
