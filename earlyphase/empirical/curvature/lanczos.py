"""Largest ALGEBRAIC eigenvalue of a symmetric operator by Lanczos with full reorthogonalisation.

For a start vector q_1 the recurrence (all in the dtype of the start vector, float64 for sharpness)

    w = A q_j,   alpha_j = q_j . w,   w <- w - alpha_j q_j - beta_{j-1} q_{j-1},
    w <- w - Q_j (Q_j^T w)  (full reorthogonalisation),   beta_j = |w|,   q_{j+1} = w / beta_j

The reorthogonalisation pass is done twice on an accelerator and, on the CPU (where it is most
of the recurrence's own work at large n), a second time only when the first removed more than
1 - 1/sqrt(2) of |w| (the Daniel-Gragg-Kaufman-Stewart criterion: otherwise w is orthogonal to
Q_j to working precision after one pass). All vector updates are in place, without temporaries.

builds the tridiagonal T_j = tridiag(beta, alpha, beta) with A Q_j = Q_j T_j + beta_j q_{j+1} e_j^T.
The top Ritz pair (theta, y = Q_j s) of T_j has the residual

    |A y - theta y| = beta_j |s_j|,  reported relative: beta_j |s_j| / |theta|,

and the iteration stops when that is <= tol. The top Ritz value never decreases with j and never
exceeds lambda_max (Cauchy interlacing), so with a threshold ``stop_above`` a member also stops
as soon as theta > stop_above: lambda_max > stop_above is then certain (the question a flag asks),
though theta is not yet converged. Unlike the power method, this converges to the
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

The theory's solvable models have their own recurrence, ``earlyphase.theory.lanczos`` (JAX),
with the same stopping rule, default tolerance and result (``earlyphase.core.eigen.TopEigenpair``):
a pure ``lax.while_loop`` traceable under ``jax.jit`` and ``jax.vmap`` over seeds and c. The two
cannot be one: this one multiplies by operators built from torch autograd graphs, which a jitted
JAX loop cannot call, and its eager loop (members leaving as they converge, Ritz analysis on the
host) cannot be traced by JAX. Its settings are the keyword arguments ``tol`` and ``max_iter``
(defaults ``LANCZOS_TOL``, ``LANCZOS_MAX_ITER``), not the JAX solver's ``LanczosSettings``, whose
restart length and cycle count have no meaning for one basis grown without restarts.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from earlyphase.core.conventions import LANCZOS_MAX_ITER, LANCZOS_TOL
from earlyphase.core.eigen import TopEigenpair

REORTHOGONALISE_AGAIN = 0.5**0.5
"""A second reorthogonalisation pass when |w| after the first is below this fraction of |w| before."""
INITIAL_CAPACITY = 16
"""Basis vectors allocated at first; the buffer doubles when full (memory ~ iterations used).
Row j of a member's buffer is q_j; each step writes q_{j+1} straight into row j + 1 (no copies)."""


def tridiagonal(alphas: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """T with diagonal alphas (..., m) and off-diagonals betas (..., m - 1)."""
    return torch.diag_embed(alphas) + torch.diag_embed(betas, offset=1) + torch.diag_embed(betas, offset=-1)


def project_out_(basis: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """w <- w - Q (Q^T w) in place, for orthonormal rows Q (K, m, n) and w (K, n); returns w."""
    coefficients = torch.bmm(basis, vector[:, :, None])  # (K, m, 1)
    vector[:, None, :].baddbmm_(coefficients.transpose(1, 2), basis, alpha=-1.0)
    return vector


def lanczos_step(
    basis: torch.Tensor,
    product: torch.Tensor,
    beta_previous: torch.Tensor,
    j: int,
    selective: bool = False,
    out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Step j of the recurrence for K members: bases Q (K, >= j + 1, n) whose row j is q_j,
    products A q_j (K, n) and beta_{j-1} (K,). Returns (alpha_j, beta_j, q_{j+1}):

        alpha_j = q_j . A q_j,   w = A q_j - alpha_j q_j - beta_{j-1} q_{j-1},
        w <- w - Q_j (Q_j^T w) twice,   beta_j = |w|,   q_{j+1} = w / beta_j  (0 where beta_j = 0),

    the second pass, with ``selective``, only when the first left less than REORTHOGONALISE_AGAIN
    of |w| for some member (a host check: for the CPU). ``product`` is not written to; q_{j+1}
    is formed in ``out`` (K, n) when given (e.g. row j + 1 of the bases), else in a new tensor.
    """
    q = basis[:, j, :]
    alpha = torch.bmm(q[:, None, :], product[:, :, None])[:, 0, 0]
    w = torch.addcmul(product, q, alpha[:, None], value=-1.0, out=out)
    if j > 0:
        w.addcmul_(basis[:, j - 1, :], beta_previous[:, None], value=-1.0)
    used = basis[:, : j + 1, :]
    before = torch.linalg.vector_norm(w, dim=-1) if selective else None
    beta = torch.linalg.vector_norm(project_out_(used, w), dim=-1)
    if before is None or bool((beta < REORTHOGONALISE_AGAIN * before).any()):
        beta = torch.linalg.vector_norm(project_out_(used, w), dim=-1)
    tiny = torch.finfo(w.dtype).tiny
    w.div_(beta.clamp_min(tiny)[:, None]).masked_fill_(~(beta > 0)[:, None], 0.0)
    return alpha, beta, w


def lanczos_steps(
    basis: torch.Tensor, product: torch.Tensor, beta_previous: torch.Tensor, j: int, out: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``lanczos_step`` for all members (q_{j+1} in ``out`` when given): one batched call (two
    reorthogonalisation passes) on an accelerator; on the CPU one member at a time with the
    selective second pass, so that its vectors and basis stay in the cache through the step's
    passes (a batch of them streams from memory on every pass: 3-4x slower at 16 members x 59k float64).
    """
    if product.device.type != "cpu":
        return lanczos_step(basis, product, beta_previous, j, out=out)
    if len(product) == 1:
        return lanczos_step(basis, product, beta_previous, j, selective=True, out=out)
    steps = [
        lanczos_step(
            basis[k : k + 1],
            product[k : k + 1],
            beta_previous[k : k + 1],
            j,
            True,
            None if out is None else out[k : k + 1],
        )
        for k in range(len(product))
    ]
    alpha, beta, vectors = zip(*steps)
    return torch.cat(alpha), torch.cat(beta), torch.cat(vectors) if out is None else out


def grow(basis: torch.Tensor, capacity: int) -> torch.Tensor:
    """The basis buffer (..., m, n) copied into a buffer of ``capacity`` rows (the new rows are
    uninitialised: row j is written before it is read)."""
    larger = basis.new_empty(*basis.shape[:-2], capacity, basis.shape[-1])
    larger[..., : basis.shape[-2], :] = basis
    return larger


class RitzTracker:
    """Host-side Ritz analysis of M recurrences: the first iteration where each one converged.

    After iteration j (0-based) member m has T_{j+1} = tridiag(betas[m, :j], alphas[m, :j+1]);
    its top Ritz pair (theta, s) has the relative residual estimate betas[m, j] |s_j| / |theta|.
    A member is done once that estimate is <= tol, once theta > its ``stop_above`` (M,) (+inf:
    never), or when its T is not finite; its value, residual, product count and Ritz
    coefficients are those of that iteration.
    """

    def __init__(
        self, members: int, steps: int, tol: float, dtype: torch.dtype, stop_above: torch.Tensor | None = None
    ) -> None:
        self.tol = tol
        self.stop_above = torch.full((members,), float("inf"), dtype=dtype) if stop_above is None else stop_above
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
            broken = ~self.done & ~(
                torch.isfinite(alphas[:, : j + 1]).all(-1) & torch.isfinite(betas[:, : j + 1]).all(-1)
            )
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
            self.done[pending] = converged | (theta > self.stop_above[pending])
        self.checked = alphas.shape[-1]
        return bool(self.done.all())


def _active_products(
    matvec: Callable[..., torch.Tensor], q: torch.Tensor, active: torch.Tensor, batch: torch.Size, by_member: bool
) -> torch.Tensor:
    """A q for the ``active`` members (flat indices; q holds their rows): by matvec(q, active) when
    ``by_member``, else by matvec on the whole batch with zero vectors for the finished members."""
    if by_member:
        return matvec(q, active)
    members = batch.numel()
    whole = lambda vectors: matvec(vectors.reshape(*batch, q.shape[-1])).reshape(members, -1)  # noqa: E731
    return whole(q) if len(active) == members else padded_product(whole, q, active, members)


def padded_product(
    product: Callable[[torch.Tensor], torch.Tensor], vectors: torch.Tensor, rows: torch.Tensor, size: int
) -> torch.Tensor:
    """Rows ``rows`` of product(V), V (size, n) holding ``vectors`` at ``rows`` and zeros elsewhere:
    the products of some members by an operator built for more of them."""
    padded = vectors.new_zeros(size, vectors.shape[-1])
    padded[rows] = vectors
    return product(padded)[rows]


def lanczos_top(
    matvec: Callable[..., torch.Tensor],
    start: torch.Tensor,
    tol: float = LANCZOS_TOL,
    max_iter: int = LANCZOS_MAX_ITER,
    check_every: int = 1,
    by_member: bool = False,
    stop_above: torch.Tensor | float | None = None,
) -> TopEigenpair[torch.Tensor]:
    """Top algebraic eigenpair of the symmetric operator ``matvec`` from ``start`` (..., n).

    Stops when every member has relative residual beta_j |s_j| / |theta| <= tol (tested on the
    host every ``check_every`` iterations), or after min(max_iter, n) products; ``matvecs``
    counts the products each member used. ``stop_above`` (a number, or one per member of shape
    (...,); None: no threshold): a member also stops at the first iteration whose top Ritz value
    exceeds it (a lower bound on lambda_max, so lambda_max > stop_above is then certain; that
    member's ``converged`` says whether its residual also met tol). At each check the members
    that are done leave the recurrence: their Ritz vectors are formed and their rows dropped, so
    the vector work (the reorthogonalisation streams the basis) shrinks with the members still
    iterating. ``matvec`` gets views of the basis and must not write to its input.

    ``by_member``: ``matvec`` is called as matvec(vectors, members), the products of the members
    with flat indices ``members`` (K,) (into the leading axes of ``start``) for their vectors
    (K, n), and only for the members still iterating at the last host check: a member that
    converged early costs no more products. ``members`` is the same tensor object for as long
    as that set does not change. Otherwise ``matvec`` takes the whole batch (..., n), with zero
    vectors in the rows of finished members.
    """
    if tol <= 0 or max_iter < 1 or check_every < 1:
        raise ValueError(
            f"lanczos needs tol > 0, max_iter >= 1 and check_every >= 1, got tol={tol!r}, "
            f"max_iter={max_iter!r}, check_every={check_every!r}"
        )
    n = start.shape[-1]
    steps = min(max_iter, n)
    batch, device = start.shape[:-1], start.device
    flat_start = start.reshape(-1, n)
    norm = torch.linalg.vector_norm(flat_start, dim=-1, keepdim=True)
    if bool((norm == 0).any()):
        raise ValueError("lanczos start vector must be non-zero")
    members = flat_start.shape[0]
    active_host = torch.arange(members)  # flat indices of the members still iterating (rows of ``basis``)
    active = active_host.to(device)
    basis = start.new_empty(members, min(steps + 1, INITIAL_CAPACITY), n)
    torch.div(flat_start, norm, out=basis[:, 0, :])
    alphas = start.new_zeros(members, steps)
    betas = start.new_zeros(members, steps)
    vectors = torch.empty_like(flat_start)
    thresholds = None
    if stop_above is not None:
        thresholds = torch.as_tensor(stop_above, dtype=start.dtype).cpu().expand(batch).reshape(members).clone()
    tracker = RitzTracker(members, steps, tol, start.dtype, thresholds)
    for j in range(steps):
        if j + 1 == basis.shape[-2]:
            basis = grow(basis, min(2 * (j + 1), steps + 1))
        product = _active_products(matvec, basis[:, j, :], active, batch, by_member)
        alpha, beta, _ = lanczos_steps(
            basis, product, betas[active, j - 1], j, out=basis[:, j + 1, :]
        )  # beta_{-1}: unused
        alphas[active, j] = alpha
        betas[active, j] = beta
        if (j + 1) % check_every == 0 or j + 1 == steps:
            all_done = tracker.update(alphas[:, : j + 1].cpu(), betas[:, : j + 1].cpu())
            finished = tracker.done[active_host]
            if bool(finished.any()):
                rows = torch.nonzero(finished).flatten()
                done = rows.to(device)
                vectors[active[done]] = _ritz_vectors(
                    basis, rows.tolist(), tracker.coefficients[active_host[rows]], j + 1
                )
                keep_host = torch.nonzero(~finished).flatten()
                keep = keep_host.to(device)
                active_host, active = active_host[keep_host], active[keep]
                basis = _rows(basis, keep, j + 2)
            if all_done:
                break
    if len(active):
        vectors[active] = _ritz_vectors(basis, list(range(len(active))), tracker.coefficients[active_host], j + 1)
    vectors = vectors / torch.linalg.vector_norm(vectors, dim=-1, keepdim=True)
    return TopEigenpair(
        value=tracker.value.reshape(batch).to(device),
        vector=vectors.reshape(start.shape),
        residual=tracker.residual.reshape(batch).to(device),
        matvecs=tracker.matvecs.reshape(batch).to(device),
        converged=tracker.converged.reshape(batch).to(device),
    )


def _rows(basis: torch.Tensor, members: torch.Tensor, used: int) -> torch.Tensor:
    """The buffer of the ``members`` (row indices), copying only its first ``used`` basis vectors."""
    kept = basis.new_empty(len(members), *basis.shape[1:])
    kept[:, :used] = basis[:, :used].index_select(0, members)
    return kept


def _ritz_vectors(basis: torch.Tensor, members: list[int], coefficients: torch.Tensor, rows: int) -> torch.Tensor:
    """y = Q s (unnormalised) of the ``members`` (row indices into the bases (K, >= rows, n)) from
    their Ritz coefficients (len(members), >= rows) on the host, over the first ``rows`` basis
    vectors (one product per member on views of its basis: no copy of a basis)."""
    weights = coefficients[:, :rows].to(basis.device)
    return torch.stack([weights[i] @ basis[member, :rows] for i, member in enumerate(members)])
