"""Largest ALGEBRAIC eigenvalue of a symmetric operator by Lanczos with full reorthogonalisation.

For a start vector q_1 the recurrence (all in the dtype of the start vector, float64 for sharpness)

    w = A q_j,   alpha_j = q_j . w,   w <- w - alpha_j q_j - beta_{j-1} q_{j-1},
    w <- w - Q_j (Q_j^T w)  (twice: full reorthogonalisation),   beta_j = |w|,   q_{j+1} = w / beta_j

builds the tridiagonal T_j = tridiag(beta, alpha, beta) with A Q_j = Q_j T_j + beta_j q_{j+1} e_j^T.
The top Ritz pair (theta, y = Q_j s) of T_j has the residual

    |A y - theta y| = beta_j |s_j|,  reported relative: beta_j |s_j| / |theta|,

and the iteration stops when that is <= tol. Unlike the power method, this converges to the
largest algebraic eigenvalue when negative eigenvalues are larger in magnitude, and resolves
nearly equal top eigenvalues. Warm-starting from the previous eigenvector along a trajectory
usually needs a few products only.

Batched: a start of shape (..., n) runs independent recurrences (e.g. an ensemble of networks)
through one ``matvec`` on (..., n); each member keeps the result of the iteration where it
converged. The loop synchronises with the host once per iteration (the stopping test).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

DEFAULT_TOL = 1e-3
DEFAULT_MAX_ITER = 100
INITIAL_CAPACITY = 16
"""Basis vectors allocated at first; the buffer doubles when full (memory ~ iterations used)."""


@dataclass(frozen=True)
class LanczosResult:
    """Top Ritz pair. Shapes: value, residual, matvecs, converged (...,); vector (..., n) of unit norm."""

    value: torch.Tensor
    vector: torch.Tensor
    residual: torch.Tensor
    matvecs: torch.Tensor
    converged: torch.Tensor


def tridiagonal(alphas: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """T with diagonal alphas (..., m) and off-diagonals betas (..., m - 1)."""
    return torch.diag_embed(alphas) + torch.diag_embed(betas, offset=1) + torch.diag_embed(betas, offset=-1)


def project_out(basis: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """w - Q (Q^T w) for orthonormal rows Q (..., m, n) and w (..., n)."""
    coefficients = torch.einsum("...mn,...n->...m", basis, vector)
    return vector - torch.einsum("...mn,...m->...n", basis, coefficients)


def grow(basis: torch.Tensor, capacity: int) -> torch.Tensor:
    """The basis buffer (..., m, n) copied into a zero buffer of ``capacity`` rows."""
    larger = basis.new_zeros(*basis.shape[:-2], capacity, basis.shape[-1])
    larger[..., : basis.shape[-2], :] = basis
    return larger


def lanczos_top(
    matvec: Callable[[torch.Tensor], torch.Tensor],
    start: torch.Tensor,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
) -> LanczosResult:
    """Top algebraic eigenpair of the symmetric operator ``matvec`` from ``start`` (..., n).

    Stops when every member has relative residual beta_j |s_j| / |theta| <= tol, or after
    min(max_iter, n) products; ``matvecs`` counts the products each member used.
    """
    if tol <= 0 or max_iter < 1:
        raise ValueError(f"lanczos needs tol > 0 and max_iter >= 1, got tol={tol!r}, max_iter={max_iter!r}")
    steps = min(max_iter, start.shape[-1])
    batch, dtype, device = start.shape[:-1], start.dtype, start.device
    norm = torch.linalg.vector_norm(start, dim=-1, keepdim=True)
    if bool((norm == 0).any()):
        raise ValueError("lanczos start vector must be non-zero")
    q = start / norm
    basis = start.new_zeros(*batch, min(steps, INITIAL_CAPACITY), start.shape[-1])
    alphas = start.new_zeros(*batch, steps)
    betas = start.new_zeros(*batch, steps)
    coefficients = start.new_zeros(*batch, steps)
    value = start.new_full(batch, float("nan"))
    residual = start.new_full(batch, float("inf"))
    matvecs = torch.zeros(batch, dtype=torch.int64, device=device)
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    tiny = torch.finfo(dtype).tiny
    for j in range(steps):
        if j == basis.shape[-2]:
            basis = grow(basis, min(2 * j, steps))
        basis[..., j, :] = q
        w = matvec(q)
        alphas[..., j] = alpha = torch.sum(q * w, dim=-1)
        w = w - alpha[..., None] * q
        if j > 0:
            w = w - betas[..., j - 1, None] * basis[..., j - 1, :]
        w = project_out(basis[..., : j + 1, :], project_out(basis[..., : j + 1, :], w))
        betas[..., j] = beta = torch.linalg.vector_norm(w, dim=-1)
        ritz_values, ritz_vectors = torch.linalg.eigh(tridiagonal(alphas[..., : j + 1], betas[..., :j]))
        theta, s = ritz_values[..., -1], ritz_vectors[..., :, -1]
        estimate = beta * s[..., -1].abs() / theta.abs().clamp_min(tiny)
        active = ~done
        value = torch.where(active, theta, value)
        residual = torch.where(active, estimate, residual)
        matvecs = torch.where(active, j + 1, matvecs)
        coefficients[..., : j + 1] = torch.where(active[..., None], s, coefficients[..., : j + 1])
        done = done | (estimate <= tol)
        if bool(done.all()):
            break
        q = torch.where(beta[..., None] > 0, w / beta.clamp_min(tiny)[..., None], torch.zeros_like(w))
    used = basis.shape[-2]
    vector = torch.einsum("...mn,...m->...n", basis, coefficients[..., :used])
    vector = vector / torch.linalg.vector_norm(vector, dim=-1, keepdim=True)
    return LanczosResult(value=value, vector=vector, residual=residual, matvecs=matvecs, converged=done)
