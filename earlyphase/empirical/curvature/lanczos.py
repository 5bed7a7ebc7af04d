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
converged, so its result does not depend on the other members. The recurrence stays on the
operator's device; the Ritz pairs of the small T_j are computed on the host (``RitzTracker``),
every ``check_every`` iterations for all the iterations since the last check. The result is
the same for every ``check_every``: a larger one synchronises with the device less often, at
the price of up to check_every - 1 products past the last member's convergence. A member
whose recurrence turns non-finite stops there (value NaN, not converged) and never holds up
the others.
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

    def member(self, index: int) -> LanczosResult:
        """The result of member ``index`` of a batched solve (leading axis)."""
        return LanczosResult(
            self.value[index], self.vector[index], self.residual[index], self.matvecs[index], self.converged[index]
        )


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


class RitzTracker:
    """Host-side Ritz analysis of M recurrences: the first iteration where each one converged.

    After iteration j (0-based) member m has T_{j+1} = tridiag(betas[m, :j], alphas[m, :j+1]);
    its top Ritz pair (theta, s) has the relative residual estimate betas[m, j] |s_j| / |theta|.
    A member is done once that estimate is <= tol, or when its T is not finite; its value,
    residual, product count and Ritz coefficients are those of that iteration.
    """

    def __init__(self, members: int, steps: int, tol: float, dtype: torch.dtype) -> None:
        self.tol = tol
        self.checked = 0
        self.value = torch.full((members,), float("nan"), dtype=dtype)
        self.residual = torch.full((members,), float("inf"), dtype=dtype)
        self.matvecs = torch.zeros(members, dtype=torch.int64)
        self.converged = torch.zeros(members, dtype=torch.bool)
        self.done = torch.zeros(members, dtype=torch.bool)
        self.coefficients = torch.zeros(members, steps, dtype=dtype)

    def update(self, alphas: torch.Tensor, betas: torch.Tensor) -> bool:
        """Analyse iterations checked .. J-1 from host copies alphas, betas (M, J); True when all are done."""
        tiny = torch.finfo(alphas.dtype).tiny
        for j in range(self.checked, alphas.shape[-1]):
            broken = ~self.done & ~(torch.isfinite(alphas[:, : j + 1]).all(-1) & torch.isfinite(betas[:, : j + 1]).all(-1))
            self.value[broken], self.residual[broken], self.coefficients[broken] = float("nan"), float("nan"), 0.0
            self.matvecs[broken] = j + 1
            self.done |= broken
            pending = torch.nonzero(~self.done).flatten()
            if pending.numel() == 0:
                break
            ritz_values, ritz_vectors = torch.linalg.eigh(tridiagonal(alphas[pending, : j + 1], betas[pending, :j]))
            theta, s = ritz_values[:, -1], ritz_vectors[:, :, -1]
            estimate = betas[pending, j] * s[:, -1].abs() / theta.abs().clamp_min(tiny)
            self.value[pending] = theta
            self.residual[pending] = estimate
            self.matvecs[pending] = j + 1
            self.coefficients[pending, : j + 1] = s
            converged = estimate <= self.tol
            self.converged[pending] = converged
            self.done[pending] = converged
        self.checked = alphas.shape[-1]
        return bool(self.done.all())


def _pending_products(matvec: Callable[..., torch.Tensor], q: torch.Tensor, pending: torch.Tensor) -> torch.Tensor:
    """A q for the ``pending`` members (flat indices) by matvec(vectors, members), zero for the others."""
    flat = q.reshape(-1, q.shape[-1])
    if len(pending) == len(flat):
        return matvec(flat, pending).reshape(q.shape)
    products = torch.zeros_like(flat)
    products[pending] = matvec(flat[pending], pending)
    return products.reshape(q.shape)


def lanczos_top(
    matvec: Callable[..., torch.Tensor],
    start: torch.Tensor,
    tol: float = DEFAULT_TOL,
    max_iter: int = DEFAULT_MAX_ITER,
    check_every: int = 1,
    by_member: bool = False,
) -> LanczosResult:
    """Top algebraic eigenpair of the symmetric operator ``matvec`` from ``start`` (..., n).

    Stops when every member has relative residual beta_j |s_j| / |theta| <= tol (tested on the
    host every ``check_every`` iterations), or after min(max_iter, n) products; ``matvecs``
    counts the products each member used.

    ``by_member``: ``matvec`` is called as matvec(vectors, members), the products of the members
    with flat indices ``members`` (K,) (into the leading axes of ``start``) for their vectors
    (K, n), and only for the members still iterating at the last host check (the others, whose
    results are final, get a zero product): a member that converged early costs no more products.
    ``members`` is the same tensor object for as long as that set does not change.
    """
    if tol <= 0 or max_iter < 1 or check_every < 1:
        raise ValueError(
            f"lanczos needs tol > 0, max_iter >= 1 and check_every >= 1, got tol={tol!r}, "
            f"max_iter={max_iter!r}, check_every={check_every!r}"
        )
    steps = min(max_iter, start.shape[-1])
    batch, device = start.shape[:-1], start.device
    norm = torch.linalg.vector_norm(start, dim=-1, keepdim=True)
    if bool((norm == 0).any()):
        raise ValueError("lanczos start vector must be non-zero")
    q = start / norm
    basis = start.new_zeros(*batch, min(steps, INITIAL_CAPACITY), start.shape[-1])
    alphas = start.new_zeros(*batch, steps)
    betas = start.new_zeros(*batch, steps)
    tracker = RitzTracker(batch.numel(), steps, tol, start.dtype)
    tiny = torch.finfo(start.dtype).tiny
    pending = torch.arange(batch.numel(), device=device)
    for j in range(steps):
        if j == basis.shape[-2]:
            basis = grow(basis, min(2 * j, steps))
        basis[..., j, :] = q
        w = _pending_products(matvec, q, pending) if by_member else matvec(q)
        alphas[..., j] = alpha = torch.sum(q * w, dim=-1)
        w = w - alpha[..., None] * q
        if j > 0:
            w = w - betas[..., j - 1, None] * basis[..., j - 1, :]
        w = project_out(basis[..., : j + 1, :], project_out(basis[..., : j + 1, :], w))
        betas[..., j] = beta = torch.linalg.vector_norm(w, dim=-1)
        if (j + 1) % check_every == 0 or j + 1 == steps:
            flat = (-1, j + 1)
            if tracker.update(alphas[..., : j + 1].reshape(flat).cpu(), betas[..., : j + 1].reshape(flat).cpu()):
                break
            if int((~tracker.done).sum()) < len(pending):  # the same tensor while the set is unchanged
                pending = torch.nonzero(~tracker.done).flatten().to(device)
        q = torch.where(beta[..., None] > 0, w / beta.clamp_min(tiny)[..., None], torch.zeros_like(w))
    used = basis.shape[-2]
    coefficients = tracker.coefficients[:, :used].reshape(*batch, used).to(device)
    vector = torch.einsum("...mn,...m->...n", basis, coefficients)
    vector = vector / torch.linalg.vector_norm(vector, dim=-1, keepdim=True)
    return LanczosResult(
        value=tracker.value.reshape(batch).to(device),
        vector=vector,
        residual=tracker.residual.reshape(batch).to(device),
        matvecs=tracker.matvecs.reshape(batch).to(device),
        converged=tracker.converged.reshape(batch).to(device),
    )
