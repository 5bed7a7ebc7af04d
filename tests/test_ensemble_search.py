"""Lockstep searches (earlyphase.empirical.ensemble.search) and the batched Lanczos they rely on.

Oracles: ``earlyphase.core.search.run_search`` driving each plan alone (same order, same flags,
same critical values); dense eigh for the Lanczos members; the solve with check_every = 1.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from earlyphase.core.search import BracketPlan, CGrid, Flags, GridPlan, run_search
from earlyphase.empirical.curvature.lanczos import lanczos_step, lanczos_steps, lanczos_top
from earlyphase.empirical.ensemble.search import NO_FLAGS, run_lockstep, speculate

GRID = CGrid(x_min=0.0, x_max=6.0, x_step=0.1)  # 61 points
thresholds = st.one_of(st.none(), st.integers(0, 70))


def monotone(k_loss, k_sharp, k_barrier, k_div):
    """Flags switching on at fixed indices (None: never); a diverged run is a loss catapult without barrier."""

    def on(k, threshold):
        return threshold is not None and k >= threshold

    return lambda k: Flags(
        on(k, k_loss) or on(k, k_div), on(k, k_sharp), on(k, k_div), on(k, k_barrier) and not on(k, k_div)
    )


@settings(max_examples=60, deadline=None)
@given(
    runs=st.lists(st.tuples(thresholds, thresholds, thresholds, thresholds), min_size=1, max_size=3),
    start=st.integers(0, 60),
    expand_step=st.integers(1, 12),
    lookahead=st.integers(1, 12),
)
def test_lockstep_searches_equal_searches_run_alone(runs, start, expand_step, lookahead):
    evaluators = [monotone(*run) for run in runs]
    plans = [GridPlan(GRID) if i % 2 else BracketPlan(GRID, start, expand_step) for i in range(len(runs))]
    alone = [run_search(plan, evaluate) for plan, evaluate in zip(plans, evaluators)]
    rounds, consumed = [], []

    def evaluate(requests):
        rounds.append(requests)
        return [evaluators[number](index) for number, index in requests]

    together = run_lockstep(plans, evaluate, lambda flags: flags, lookahead, lambda n, k, _: consumed.append((n, k)))
    for single, joint in zip(alone, together):
        assert joint.order == single.order and dict(joint.flags) == dict(single.flags)
        assert joint.critical == single.critical
    assert sorted(consumed) == sorted((n, k) for n, result in enumerate(alone) for k in result.order)
    for requests in rounds:  # no point is requested twice within a round, at most `lookahead` per search
        assert len(set(requests)) == len(requests)
        assert all(sum(n == m for n, _ in requests) <= lookahead for m in range(len(runs)))
    if lookahead == 1:  # plain lockstep: one point per search per round, nothing wasted
        assert sum(map(len, rounds)) == sum(len(result.order) for result in alone)


@pytest.mark.parametrize(
    "plan", [GridPlan(GRID), BracketPlan(GRID, start=10, expand_step=6), GridPlan(CGrid(0.0, 0.2, 0.1))]
)
def test_speculation_is_the_path_of_a_search_where_no_flag_is_set(plan):
    path = run_search(plan, lambda k: NO_FLAGS).order
    assert speculate(plan, {}, 4) == list(path[:4])
    assert speculate(plan, {k: NO_FLAGS for k in path[:2]}, 3) == list(path[2:5])
    assert speculate(plan, {}, 100) == list(path)


def test_lookahead_must_be_positive():
    with pytest.raises(ValueError, match="lookahead"):
        run_lockstep([GridPlan(GRID)], lambda requests: [], lambda flags: flags, lookahead=0)


def random_symmetric(seed: int, n: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    return torch.tensor((a + a.T) / 2)


@pytest.mark.parametrize("check_every", [2, 5, 100])
def test_lanczos_result_does_not_depend_on_check_every(check_every):
    matrices = torch.stack([random_symmetric(seed, 30) for seed in range(4)])
    starts = torch.tensor(np.random.default_rng(9).standard_normal((4, 30)))

    def product(v):
        return torch.einsum("bij,bj->bi", matrices, v)

    every = lanczos_top(product, starts, tol=1e-6)
    batched = lanczos_top(product, starts, tol=1e-6, check_every=check_every)
    for name in ("value", "vector", "residual", "matvecs", "converged"):
        torch.testing.assert_close(getattr(batched, name), getattr(every, name), rtol=1e-12, atol=1e-14)
    top = torch.linalg.eigvalsh(matrices)[:, -1]
    torch.testing.assert_close(batched.value, top, rtol=1e-5, atol=0)


def test_a_non_finite_member_stops_without_holding_up_the_others():
    matrices = torch.stack([random_symmetric(seed, 25) for seed in range(3)])

    def product(v):
        out = torch.einsum("bij,bj->bi", matrices, v)
        return torch.cat([out[:1], torch.full_like(out[1:2], float("nan")), out[2:]])

    result = lanczos_top(product, torch.ones(3, 25, dtype=torch.float64), tol=1e-8, check_every=4)
    assert torch.isnan(result.value[1]) and not bool(result.converged[1]) and int(result.matvecs[1]) == 1
    top = torch.linalg.eigvalsh(matrices)[:, -1]
    torch.testing.assert_close(result.value[[0, 2]], top[[0, 2]], rtol=1e-8, atol=0)
    assert bool(result.converged[0]) and bool(result.converged[2])


def test_members_matvec_multiplies_only_the_members_still_iterating():
    matrices = torch.stack([random_symmetric(seed, 30) for seed in range(5)])
    starts = torch.tensor(np.random.default_rng(3).standard_normal((5, 30)))
    starts[0] = torch.linalg.eigh(matrices[0]).eigenvectors[:, -1]  # converges at once
    rows = []

    def product(v):
        return torch.einsum("bij,bj->bi", matrices, v)

    def members_product(vectors, members):
        rows.append(len(members))
        return torch.einsum("bij,bj->bi", matrices[members], vectors)

    full = lanczos_top(product, starts, tol=1e-6)
    subset = lanczos_top(members_product, starts, tol=1e-6, by_member=True)
    for name in ("value", "vector", "residual", "matvecs", "converged"):
        torch.testing.assert_close(getattr(subset, name), getattr(full, name), rtol=1e-12, atol=1e-14)
    assert int(subset.matvecs[0]) == 1 and sum(rows) == int(subset.matvecs.sum())  # no product past convergence


def test_finished_members_leave_the_recurrence_of_a_whole_batch_matvec():
    matrices = torch.stack([random_symmetric(seed, 30) for seed in range(4)])
    starts = torch.tensor(np.random.default_rng(5).standard_normal((4, 30)))
    starts[2] = torch.linalg.eigh(matrices[2]).eigenvectors[:, -1]  # converges at once
    zero_rows = []

    def product(v):
        zero_rows.append((v == 0).all(-1).tolist())
        return torch.einsum("bij,bj->bi", matrices, v)

    result = lanczos_top(product, starts, tol=1e-8)
    assert int(result.matvecs[2]) == 1 and not zero_rows[0][2] and all(rows[2] for rows in zero_rows[1:])
    for member in range(4):
        alone = lanczos_top(lambda v, m=matrices[member]: m @ v, starts[member], tol=1e-8)
        torch.testing.assert_close(result.vector[member], alone.vector, rtol=1e-10, atol=1e-12)
        assert int(result.matvecs[member]) == int(alone.matvecs)


def test_the_cpu_step_one_member_at_a_time_equals_the_batched_step():
    rng = np.random.default_rng(11)
    members, n, j = 3, 40, 5
    basis = torch.linalg.qr(torch.tensor(rng.standard_normal((members, n, j + 1)))).Q.transpose(
        1, 2
    )  # orthonormal rows
    product = torch.tensor(rng.standard_normal((members, n)))
    beta_previous = torch.tensor(rng.uniform(0.5, 1.0, members))
    batched = lanczos_step(basis, product, beta_previous, j)
    for got, expected in zip(lanczos_steps(basis, product, beta_previous, j), batched):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-13)
    alpha, beta, q_next = batched
    torch.testing.assert_close(alpha, torch.einsum("kn,kn->k", basis[:, j], product))
    assert float(torch.einsum("kmn,kn->km", basis, q_next).abs().max()) < 1e-13  # orthogonal to Q_j
    torch.testing.assert_close(torch.linalg.vector_norm(q_next, dim=-1), torch.ones(members, dtype=torch.float64))
