"""benchmarks/bench_peers.py on tiny problems: its grid scan of the authors' protocol and (where
PyHessian and curvlinops are installed) every peer solve against a dense Hessian. The benchmark itself is run by hand (docs/RESULTS.md)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from earlyphase.empirical import TrainConfig
from earlyphase.empirical.losses import mse

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
MISSING_PEERS = [name for name in ("pyhessian", "curvlinops") if importlib.util.find_spec(name) is None]
needs_peers = pytest.mark.skipif(
    bool(MISSING_PEERS),
    reason=f"{', '.join(MISSING_PEERS)} not installed (optional; see benchmarks/bench_peers.py)",
)


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_peers

        yield bench_peers
    finally:
        sys.path.remove(str(BENCHMARKS))


TINY = TrainConfig.build(depth=2, width=16, dataset="digits", n_train=256, measure_size=128, batch_size=64, steps=3)


def test_authors_protocol_stops_at_the_first_divergence(bench, monkeypatch):
    grid = {0: 1.0, 1: 1.5, 2: 1e4, 3: 1.2}  # diverges at index 2; index 3 must never run
    monkeypatch.setattr(bench, "grid_point", grid.__getitem__)
    record = bench.authors_protocol(TINY)
    assert record.runs == 3
    assert record.critical["c_max"] == 1.5 and record.critical["c_loss"] == 1e4


def test_authors_protocol_scans_the_whole_grid_without_divergence(bench, monkeypatch):
    monkeypatch.setattr(bench, "X_MAX", 0.5)  # c = 1 .. 2^0.5: nothing diverges
    record = bench.authors_protocol(TINY)
    power = bench.authors.POWER_STEPS
    assert record.runs == 6 and record.critical["c_max"] is None
    assert record.hvps == power * (1 + 6 * TINY.protocol.steps)  # lambda_H0 once, then one power iteration per step


def test_half_mean_squared_error_is_the_project_mse(bench):
    outputs, targets = torch.randn(7, 3), torch.randn(7, 3)
    assert float(bench.HalfMeanSquaredError()(outputs, targets)) == pytest.approx(float(mse(outputs, targets)))


@pytest.fixture(scope="module")
def tiny(bench):
    """A depth-4 width-8 FCN on 64 digits (P = 720) and its dense Hessian's top eigenvalue."""
    sizes = bench.Sizes(dataset="digits", peer_width=8, peer_examples=64, batch_size=32, steps=3, rounds=1)
    experiment = bench.peer_problem(sizes)
    x, y = bench.measurement_data(experiment)
    model64, _ = bench.flatten_module(bench.copy.deepcopy(experiment.model.module), dtype=torch.float64)
    hessian = torch.autograd.functional.hessian(
        lambda t: mse(model64(t, x.double()), y.double()), experiment.theta0.double()
    )
    return experiment, float(np.linalg.eigvalsh(hessian.numpy())[-1])


def test_module_at_holds_theta(bench, tiny):
    experiment, _ = tiny
    theta = experiment.theta0 + 0.1
    x, _ = bench.measurement_data(experiment)
    torch.testing.assert_close(bench.module_at(experiment, theta)(x), experiment.model(theta, x))


@needs_peers
def test_cold_solves_against_the_dense_hessian(bench, tiny):
    experiment, dense_top = tiny
    rows = {row.method: row for row in bench.cold_solves(experiment, rounds=1)}
    bounds = {  # relative error bounds against the dense top eigenvalue
        "reference: float64 Lanczos (tol 1e-09)": 1e-8,
        "earlyphase Lanczos (tol 0.001)": 1e-4,
        "earlyphase Lanczos (tol 0.01)": 1e-2,
        "curvlinops + eigsh LA (tol 0.001)": 1e-4,
        "curvlinops + eigsh LA (tol 0, default)": 1e-4,
        "PyHessian eigenvalues(top_n=1)": 0.1,
    }
    assert set(rows) == set(bounds)
    reference = rows["reference: float64 Lanczos (tol 1e-09)"].value
    for name, bound in bounds.items():
        row = rows[name]
        assert abs(row.value - dense_top) / dense_top < bound, name
        assert row.error == pytest.approx(abs(row.value - reference) / abs(reference)), name
        assert name.startswith("reference") or row.hvps > 0, name


@needs_peers
def test_tracking_rows(bench, tiny):
    experiment, _ = tiny
    rows = bench.tracking(experiment, c=2.0)
    methods = ["earlyphase Lanczos", "earlyphase Lanczos", "PyHessian eigenvalues()", "PyHessian's power loop"]
    assert [row.method.split(",")[0] for row in rows] == methods
    assert rows[0].max_error < 1e-4 and rows[1].max_error < 1e-2
    assert all(row.hvps_per_step >= 1 and row.seconds > 0 for row in rows)
