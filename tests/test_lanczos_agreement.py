"""Both Lanczos solvers (torch and JAX) answer the same ``TopEigenpair`` on the same matrix.

A = U diag(spectrum) U^T (float64, Haar-random U), lambda_1 = 2 above lambda_2 = 1 and negative
eigenvalues down to -3 (larger in magnitude: the top ALGEBRAIC eigenvalue is asked for). Oracle:
``numpy.linalg.eigh``. For a unit v with Rayleigh-Ritz value theta in (lambda_2, lambda_1] and
r = ||A v - theta v|| (relative residual rho = r / |theta|):

    Kato-Temple:  0 <= lambda_1 - theta <= r^2 / (theta - lambda_2),
    Davis-Kahan:  sin angle(v, u_1) <= r / (theta - lambda_2),

so a residual at the tolerance fixes the value to ~tol^2 and the vector to ~tol: each solver's
answer is checked against these bounds with its own, independently recomputed, residual.
"""

from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from earlyphase.core.conventions import LANCZOS_TOL
from earlyphase.core.eigen import TopEigenpair
from earlyphase.empirical.curvature.lanczos import lanczos_top as torch_lanczos_top
from earlyphase.theory.lanczos import LanczosSettings
from earlyphase.theory.lanczos import lanczos_top as jax_lanczos_top
from earlyphase.theory.precision import x64
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)

N = 40
ROUNDING = 1e-12
"""Float64 slack on bounds that hold exactly in exact arithmetic (||A|| = 3)."""


def matrix_and_start(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    spectrum = np.concatenate([[2.0, 1.0, -3.0], rng.uniform(-3.0, 1.0, N - 3)])
    basis, _ = np.linalg.qr(rng.standard_normal((N, N)))
    matrix = (basis * spectrum) @ basis.T
    return (matrix + matrix.T) / 2, rng.standard_normal(N)


@cache
def jax_solver(tol: float, max_products: int):
    """The JAX solver in cycles of 12 products (its default), jitted with the matrix an argument:
    one compilation per (tol, max_products)."""
    settings = LanczosSettings(iterations=12, max_cycles=-(-max_products // 12), tol=tol, noise=0.0)
    return jax.jit(lambda matrix, start: jax_lanczos_top(lambda v: matrix @ v, start, settings))


def solve_both(matrix: np.ndarray, start: np.ndarray, tol: float, max_products: int) -> dict[str, TopEigenpair]:
    """Each solver's answer as numpy arrays."""
    a = torch.tensor(matrix)
    by_torch = torch_lanczos_top(lambda v: a @ v, torch.tensor(start), tol=tol, max_iter=max_products)
    with x64():
        by_jax = jax_solver(tol, max_products)(jnp.asarray(matrix), jnp.asarray(start))
    return {
        "torch": TopEigenpair(*(np.asarray(field) for field in by_torch)),
        "jax": TopEigenpair(*(np.asarray(field) for field in by_jax)),
    }


@pytest.mark.parametrize("tol", [LANCZOS_TOL, 1e-10])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_both_solvers_meet_the_same_bounds(seed, tol):
    matrix, start = matrix_and_start(seed)
    eigenvalues, eigenvectors = np.linalg.eigh(matrix)
    top, second, top_vector = eigenvalues[-1], eigenvalues[-2], eigenvectors[:, -1]
    answers = solve_both(matrix, start, tol, max_products=100)
    for solver, pair in answers.items():
        theta, v = float(pair.value), pair.vector
        assert bool(pair.converged), solver
        assert float(pair.residual) <= tol, solver
        true_residual = np.linalg.norm(matrix @ v - theta * v)
        assert abs(true_residual / abs(theta) - float(pair.residual)) <= 1e-3 * tol + ROUNDING, solver
        assert abs(np.linalg.norm(v) - 1.0) <= ROUNDING, solver
        assert second < theta <= top + ROUNDING, solver
        assert top - theta <= true_residual**2 / (theta - second) + ROUNDING, solver
        sine = np.sqrt(max(0.0, 1.0 - float(v @ top_vector) ** 2))
        assert sine <= true_residual / (theta - second) + 1e-7, solver
        assert 0 < int(pair.matvecs) <= 108, solver  # the JAX solver's 9 cycles of 12


def test_both_solvers_report_an_unreached_tolerance():
    matrix, start = matrix_and_start(3)
    for solver, pair in solve_both(matrix, start, tol=1e-12, max_products=2).items():
        assert not bool(pair.converged), solver
        assert float(pair.residual) > 1e-12, solver


def test_member_of_a_batched_solve_is_the_solve_of_that_member():
    matrices, starts = zip(*(matrix_and_start(seed) for seed in (4, 5)))
    stacked = torch.tensor(np.stack(matrices))
    batched = torch_lanczos_top(lambda v: torch.einsum("bij,bj->bi", stacked, v), torch.tensor(np.stack(starts)))
    for index in (0, 1):
        a = torch.tensor(matrices[index])
        alone = torch_lanczos_top(lambda v, a=a: a @ v, torch.tensor(starts[index]))
        member = batched.member(index)
        assert isinstance(member, TopEigenpair)
        torch.testing.assert_close(member.value, alone.value, rtol=1e-12, atol=0.0)
        torch.testing.assert_close(member.vector, alone.vector, rtol=0.0, atol=1e-10)
        assert bool(member.converged) == bool(alone.converged)
        assert int(member.matvecs) == int(alone.matvecs)
