"""Lanczos top eigenpair against dense eigh on random symmetric matrices."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from earlyphase.empirical.curvature.lanczos import lanczos_top
from empirical_helpers import single_thread  # noqa: F401 (autouse fixture)


def symmetric_matrix(seed: int, n: int, gap: float, negative: float) -> tuple[torch.Tensor, np.ndarray]:
    """A = U diag(lam) U^T with lam_1 = 1, lam_2 = 1 - gap, the rest in [-negative, 0.9]."""
    rng = np.random.default_rng(seed)
    rest = rng.uniform(-negative, 0.9, size=n - 3)
    eigenvalues = np.concatenate([[1.0, 1.0 - gap, -negative], rest])
    basis, _ = np.linalg.qr(rng.standard_normal((n, n)))
    matrix = (basis * eigenvalues) @ basis.T
    return torch.tensor((matrix + matrix.T) / 2), np.sort(eigenvalues)


def start_vector(seed: int, n: int) -> torch.Tensor:
    return torch.tensor(np.random.default_rng(seed + 1).standard_normal(n))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(8, 60),
    gap=st.floats(1e-6, 1e-2),
    negative=st.floats(2.0, 10.0),
)
def test_top_algebraic_eigenvalue_with_close_pair_and_larger_negatives(seed, n, gap, negative):
    matrix, _ = symmetric_matrix(seed, n, gap, negative)
    top = np.linalg.eigvalsh(matrix.numpy())[-1]
    result = lanczos_top(lambda v: matrix @ v, start_vector(seed, n), tol=1e-10, max_iter=200)
    assert bool(result.converged)
    assert abs(float(result.value) - top) <= 1e-8 * abs(top)
    # the reported residual is the true one of the returned unit vector
    vector = result.vector
    true_residual = torch.linalg.vector_norm(matrix @ vector - result.value * vector) / abs(result.value)
    assert abs(float(torch.linalg.vector_norm(vector)) - 1.0) < 1e-12
    assert float(true_residual) <= 1e-9
    assert int(result.matvecs) <= n


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(8, 60), negative=st.floats(2.0, 10.0))
def test_loose_tolerance_residual_is_honest(seed, n, negative):
    matrix, eigenvalues = symmetric_matrix(seed, n, 1e-3, negative)
    result = lanczos_top(lambda v: matrix @ v, start_vector(seed, n), tol=1e-3)
    value, vector = float(result.value), result.vector
    true_residual = float(torch.linalg.vector_norm(matrix @ vector - value * vector)) / abs(value)
    assert true_residual == pytest.approx(float(result.residual), rel=1e-6, abs=1e-12)
    assert true_residual <= 1e-3 * (1 + 1e-6)
    # a Ritz value never exceeds lambda_1, and lies within |r| of an eigenvalue (Bauer-Fike)
    assert value <= eigenvalues[-1] + 1e-12
    assert np.min(np.abs(eigenvalues - value)) <= true_residual * abs(value) + 1e-12
    assert value > 0.5  # the top ALGEBRAIC eigenvalue, not the larger-magnitude negative one


def test_batched_members_match_single_solves():
    matrices = [symmetric_matrix(seed, 30, 0.01 * (seed + 1), 4.0)[0] for seed in range(3)]
    stacked = torch.stack(matrices)
    starts = torch.stack([start_vector(seed, 30) for seed in range(3)])
    batched = lanczos_top(lambda v: torch.einsum("bij,bj->bi", stacked, v), starts, tol=1e-8)
    for member, matrix in enumerate(matrices):
        single = lanczos_top(lambda v, m=matrix: m @ v, starts[member], tol=1e-8)
        assert float(batched.value[member]) == pytest.approx(float(single.value), rel=1e-12)
        assert int(batched.matvecs[member]) == int(single.matvecs)
        assert float(batched.residual[member]) == pytest.approx(float(single.residual), rel=1e-6, abs=1e-14)


def test_warm_start_from_eigenvector_stops_at_once():
    matrix, eigenvalues = symmetric_matrix(3, 40, 0.1, 3.0)
    _, vectors = torch.linalg.eigh(matrix)
    result = lanczos_top(lambda v: matrix @ v, vectors[:, -1] + 1e-6 * start_vector(3, 40), tol=1e-3)
    assert int(result.matvecs) == 1
    assert float(result.value) == pytest.approx(eigenvalues[-1], rel=1e-9)


def test_invariant_subspace_breakdown_is_exact():
    matrix = torch.diag(torch.tensor([3.0, -7.0, 1.0, 0.5], dtype=torch.float64))
    start = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=torch.float64)  # Krylov space of dimension 2
    result = lanczos_top(lambda v: matrix @ v, start, tol=1e-12)
    assert bool(result.converged) and int(result.matvecs) == 2
    assert float(result.value) == pytest.approx(3.0, rel=1e-14)


def test_bad_arguments():
    with pytest.raises(ValueError, match="non-zero"):
        lanczos_top(lambda v: v, torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="tol"):
        lanczos_top(lambda v: v, torch.ones(3, dtype=torch.float64), tol=0.0)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(10, 40), fraction=st.floats(0.2, 0.999))
def test_stop_above_stops_at_the_first_ritz_value_over_the_threshold(seed, n, fraction):
    # oracle: the full solve's own Ritz values (interlacing: they never decrease) and dense eigh
    matrix, eigenvalues = symmetric_matrix(seed, n, 1e-2, 3.0)
    start = start_vector(seed, n)
    threshold = fraction * eigenvalues[-1]
    ritz = [float(lanczos_top(lambda v: matrix @ v, start, tol=1e-15, max_iter=j).value) for j in range(1, n + 1)]
    stopped = lanczos_top(lambda v: matrix @ v, start, tol=1e-10, max_iter=200, stop_above=threshold)
    full = lanczos_top(lambda v: matrix @ v, start, tol=1e-10, max_iter=200)
    crossing = next((j for j, value in enumerate(ritz) if value > threshold), None)
    if crossing is None or crossing + 1 >= int(full.matvecs):  # never over it before converging: the full solve
        assert int(stopped.matvecs) == int(full.matvecs) and float(stopped.value) == float(full.value)
        return
    assert int(stopped.matvecs) == crossing + 1
    assert threshold < float(stopped.value) == pytest.approx(ritz[crossing], rel=1e-12)
    assert float(stopped.value) <= float(full.value) + 1e-12 <= eigenvalues[-1] + 2e-12


def test_stop_above_is_per_member_and_never_stops_below_the_threshold():
    matrices = [symmetric_matrix(seed, 30, 0.01, 4.0)[0] for seed in range(3)]
    stacked = torch.stack(matrices)
    starts = torch.stack([start_vector(seed, 30) for seed in range(3)])
    product = lambda v: torch.einsum("bij,bj->bi", stacked, v)  # noqa: E731
    full = lanczos_top(product, starts, tol=1e-8)
    thresholds = torch.tensor([0.5, 2.0, float("inf")], dtype=torch.float64)  # the top eigenvalues are 1
    stopped = lanczos_top(product, starts, tol=1e-8, stop_above=thresholds)
    assert int(stopped.matvecs[0]) < int(full.matvecs[0]) and float(stopped.value[0]) > 0.5
    for member in (1, 2):  # lambda_max < threshold: the ordinary solve
        assert int(stopped.matvecs[member]) == int(full.matvecs[member])
        assert float(stopped.value[member]) == pytest.approx(float(full.value[member]), rel=1e-12)
