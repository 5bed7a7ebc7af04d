"""Lanczos (both solvers): every Ritz value is a lower bound of lambda_max, rising with the iterations.

For a symmetric A and an orthonormal Krylov basis Q_m, the Ritz values are the eigenvalues of
T_m = Q_m^T A Q_m, so by Cauchy interlacing (exact arithmetic)

    theta_m = lambda_max(T_m) <= lambda_max(A)   and   theta_m <= theta_{m+1}.

Oracle: dense ``numpy.linalg.eigvalsh``. Both hold up to rounding, allowed as 1e-10 ||A||
(float64: a Krylov basis orthonormal to ~1e-15 per vector moves a Ritz value by that times
||A|| and the dimension). Random symmetric A = U diag(spectrum) U^T (hypothesis: the size and
the spectrum, repeated eigenvalues included, so that the Krylov space can be exhausted early,
and the norm of the start vector). theta_m is the top Ritz value after m products, read as
the answer of a solve capped at m products with an unreachable tolerance.

Solvers: ``earlyphase.empirical.curvature.lanczos.lanczos_top`` (torch) and
``earlyphase.theory.lanczos`` (JAX; one cycle of m products, and the restarted solver over cycles).
"""

from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from earlyphase.empirical.curvature.lanczos import lanczos_top as torch_lanczos_top
from earlyphase.theory.lanczos import LanczosSettings, lanczos_cycle
from earlyphase.theory.lanczos import lanczos_top as jax_lanczos_top
from earlyphase.theory.precision import x64
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)

UNREACHABLE = 1e-300
"""A relative residual no solve reaches before its Krylov space is exhausted: every solve runs its m products."""

eigenvalue = st.one_of(st.floats(-10.0, 10.0).map(lambda x: round(x, 6)), st.sampled_from([-4.0, -1.0, 0.0, 3.0]))
"""Rounded to 1e-6: a spectrum of scale 1e-160 would only test the rounding of U diag U^T."""


def matrix_and_start(spectrum: list[float], seed: int, start_norm: float) -> tuple[np.ndarray, np.ndarray]:
    """A = U diag(spectrum) U^T (U Haar-random from ``seed``) and a start vector of norm ``start_norm``."""
    rng = np.random.default_rng(seed)
    n = len(spectrum)
    basis, _ = np.linalg.qr(rng.standard_normal((n, n)))
    matrix = (basis * np.asarray(spectrum)) @ basis.T
    start = rng.standard_normal(n)
    return (matrix + matrix.T) / 2, start_norm * start / np.linalg.norm(start)


def assert_lower_bounds_rising(ritz: list[float], matrix: np.ndarray) -> None:
    top = np.linalg.eigvalsh(matrix)[-1]
    slack = 1e-10 * max(np.abs(np.linalg.eigvalsh(matrix)).max(), 1e-300)
    assert all(np.isfinite(ritz)), ritz
    assert max(ritz) <= top + slack, (ritz, top)
    assert all(later >= earlier - slack for earlier, later in zip(ritz, ritz[1:])), ritz


PADDED = 7
"""The JAX solves run on A padded to PADDED x PADDED (block diagonal with zeros) from a start vector
that is zero on the padding: the Krylov space never leaves the first block (exactly: the products
keep the zeros), so the Ritz values are A's, and one compilation serves every size. For m > n
the cycle breaks down after n products, leaving unused slots in T."""


PROPERTY = dict(
    spectrum=st.lists(eigenvalue, min_size=2, max_size=PADDED),
    seed=st.integers(0, 2**31 - 1),
    start_norm=st.floats(1e-3, 1e3),
)


@settings(max_examples=30, deadline=None)
@given(**PROPERTY)
@example(
    spectrum=[-4.0, -4.0, -1.0, -1.0, -7.5], seed=0, start_norm=20.0
)  # negative definite, 3 distinct values: the Krylov space ends after 3 products
def test_torch_ritz_values_bound_lambda_max_and_rise(spectrum, seed, start_norm):
    matrix, start = matrix_and_start(spectrum, seed, start_norm)
    a, q = torch.tensor(matrix), torch.tensor(start)
    ritz = [
        float(torch_lanczos_top(lambda v: a @ v, q, tol=UNREACHABLE, max_iter=m).value)
        for m in range(1, len(spectrum) + 1)
    ]
    assert_lower_bounds_rising(ritz, matrix)


@cache
def jax_ritz_values():
    """theta_m of one cycle capped at m = 1 .. PADDED products, and of the restarted solver
    (cycles of 2 products) after 1, 2, 3 cycles: one compiled program."""

    def ritz(a, q):
        cycle = [lanczos_cycle(lambda v: a @ v, q, m, UNREACHABLE)[0] for m in range(1, PADDED + 1)]
        restarted = [
            jax_lanczos_top(
                lambda v: a @ v, q, LanczosSettings(iterations=2, max_cycles=k, tol=UNREACHABLE, noise=0.0)
            ).value
            for k in (1, 2, 3)
        ]
        return jnp.stack(cycle), jnp.stack(restarted)

    return jax.jit(ritz)


@settings(max_examples=30, deadline=None)
@given(**PROPERTY)
@example(spectrum=[-4.0, -4.0, -1.0, -1.0, -7.5], seed=0, start_norm=20.0)  # negative definite, 3 distinct values
def test_jax_ritz_values_bound_lambda_max_and_rise(spectrum, seed, start_norm):
    matrix, start = matrix_and_start(spectrum, seed, start_norm)
    n = len(spectrum)
    padded = np.zeros((PADDED, PADDED))
    padded[:n, :n] = matrix
    with x64():
        cycle, restarted = jax_ritz_values()(jnp.asarray(padded), jnp.asarray(np.pad(start, (0, PADDED - n))))
    assert_lower_bounds_rising(np.asarray(cycle).tolist(), matrix)
    assert_lower_bounds_rising(np.asarray(restarted).tolist(), matrix)
