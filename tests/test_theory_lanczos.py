"""Restarted Lanczos (largest ALGEBRAIC eigenvalue) against numpy's dense eigh."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from earlyphase.theory.lanczos import LanczosSettings, lanczos_top
from earlyphase.theory.precision import x64

DIM = 30
SETTINGS = LanczosSettings(iterations=12, max_cycles=20, tol=1e-10)


@pytest.fixture(autouse=True)
def float64():
    with x64():
        yield


def _solve(matrix: np.ndarray, start: np.ndarray, active: bool = True):
    """One compilation per shape: the matrix is an argument, not a constant."""
    return _jitted(jnp.asarray(matrix), jnp.asarray(start), jnp.asarray(active))


@jax.jit
def _jitted(matrix, start, active):
    return lanczos_top(lambda v: matrix @ v, start, SETTINGS, active)


def _matrix(eigenvalues: np.ndarray, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((eigenvalues.size, eigenvalues.size)))
    return (q * eigenvalues) @ q.T


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), shift=st.floats(-10.0, 10.0), gap=st.floats(1e-3, 5.0))
@example(seed=106, shift=0.0, gap=0.001)  # top eigenvalue 1e-3 against |A| ~ 20: the rounding floor
def test_top_algebraic_eigenvalue_matches_eigh(seed, shift, gap):
    rng = np.random.default_rng(seed)
    spectrum = np.concatenate([[shift + gap], shift - rng.uniform(0, 20, DIM - 1)])
    matrix = _matrix(spectrum, seed)
    pair = _solve(matrix, rng.standard_normal(DIM))
    top = np.linalg.eigvalsh(matrix)[-1]
    # Eigenvalue accuracy is relative to the operator's scale: near a zero top eigenvalue
    # (shift + gap ~ 0) a relative tolerance on lambda itself is not attainable.
    scale = np.abs(spectrum).max()
    assert float(pair.value) == pytest.approx(top, rel=1e-9, abs=1e-9 * scale)
    vector = np.asarray(pair.vector)
    true_residual = np.linalg.norm(matrix @ vector - float(pair.value) * vector) / abs(float(pair.value))
    # the reported residual is the true one (converged or not within the product budget), up to
    # the rounding floor of ||A v - lambda v|| / |lambda|: ~1e-16 |A| sqrt(n) / |lambda|
    floor = 1e-14 * scale / abs(float(pair.value))
    assert true_residual == pytest.approx(float(pair.residual), rel=1e-3, abs=max(1e-12, floor))
    assert 1 <= int(pair.matvecs) <= SETTINGS.iterations * SETTINGS.max_cycles


def test_largest_algebraic_not_largest_magnitude():
    matrix = _matrix(np.linspace(-9.0, -0.5, DIM), 3)  # |-9| dominates, the answer is -0.5
    pair = _solve(matrix, np.ones(DIM))
    assert float(pair.value) == pytest.approx(-0.5, rel=1e-10)


def test_invariant_start_breaks_down_cleanly():
    """A rank-one matrix started on its eigenvector: an exact answer, no spurious Ritz values."""
    u = np.random.default_rng(4).standard_normal(DIM)
    matrix = np.outer(u, u)
    pair = _solve(matrix, u)
    assert float(pair.value) == pytest.approx(u @ u, rel=1e-12)
    assert int(pair.matvecs) == 1 and float(pair.residual) <= 1e-12
    # started off the eigenvector it still finds it, and never reports more than lambda_max
    pair = _solve(matrix, u + np.random.default_rng(5).standard_normal(DIM))
    assert float(pair.value) == pytest.approx(u @ u, rel=1e-12)


def test_negative_ritz_values_do_not_hide_behind_padding():
    """A start whose first Ritz values are negative: unused Krylov slots must not pose as a top of 0."""
    spectrum = np.concatenate([[3.0], -np.linspace(1.0, 5.0, DIM - 1)])
    matrix = _matrix(spectrum, 6)
    vectors = np.linalg.eigh(matrix)[1]
    start = vectors[:, 0] + 1e-3 * vectors[:, -1]  # mostly the most negative direction
    pair = _solve(matrix, start)
    assert float(pair.value) == pytest.approx(3.0, rel=1e-10)


def test_inactive_members_do_no_work():
    matrices = jnp.stack([jnp.asarray(_matrix(np.linspace(0, 1, DIM), s)) for s in (1, 2)])
    starts = jnp.ones((2, DIM))
    pairs = jax.jit(jax.vmap(lambda m, s, a: lanczos_top(lambda v: m @ v, s, SETTINGS, a)))(
        matrices, starts, jnp.array([True, False])
    )
    assert float(pairs.value[0]) == pytest.approx(1.0, rel=1e-10)
    assert np.isnan(float(pairs.value[1])) and int(pairs.matvecs[1]) == 0


def test_settings_validation():
    with pytest.raises(ValueError, match="iterations"):
        LanczosSettings(iterations=1)
    with pytest.raises(ValueError, match="tol"):
        LanczosSettings(tol=0.0)
