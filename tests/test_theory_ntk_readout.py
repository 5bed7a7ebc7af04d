"""The finite-readout split of the NTK's k-fold degenerate top eigenvalue, against the exact
empirical NTK of random two-layer ReLU networks (standard parameterisation, no biases)."""

import numpy as np
import pytest

from earlyphase.theory.ntk import (
    predicted_sharpness0,
    predicted_sharpness0_readout_edge,
    readout_edge,
)


def _two_layer_ntk_top(x: np.ndarray, outputs: int, width: int, seed: int) -> float:
    """lambda_max(J J^T) / (n k) of f_a(x) = sum_j V_aj relu(W_j . x), W ~ N(0, 2/d_in), V ~ N(0, 1/w):
    J J^T = I_k (x) H H^T + [V_a V_b D(x) D(x')] (x . x'), H the hidden activations, D their slopes."""
    rng = np.random.default_rng(seed)
    n, d_in = x.shape
    w_in = rng.standard_normal((width, d_in)) * np.sqrt(2.0 / d_in)
    readout = rng.standard_normal((outputs, width)) / np.sqrt(width)
    pre = x @ w_in.T
    hidden, slope = np.maximum(pre, 0.0), (pre > 0).astype(float)
    lower = (readout[:, None, :] * slope[None, :, :]).reshape(outputs * n, width)  # rows (a, x)
    kernel = np.kron(np.eye(outputs), hidden @ hidden.T) + (lower @ lower.T) * np.tile(x @ x.T, (outputs, outputs))
    return float(np.linalg.eigvalsh(kernel)[-1] / (n * outputs))


def test_the_readout_edge_is_most_of_the_finite_width_excess():
    """k = 16 outputs, w = 64 (edge 2.25), d_in = 1024 (the layer below the readout dominates): the
    seed mean of the exact top eigenvalue is more than twice the infinite-width value, and the
    edge accounts for most of the excess (within +50 %, never above: the hidden features'
    own fluctuations add to it)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 1024))
    x = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    outputs, width = 16, 64
    measured = np.mean([_two_layer_ntk_top(x, outputs, width, seed) for seed in range(16)])
    edge = predicted_sharpness0_readout_edge(x, outputs, 2, width)
    plain = predicted_sharpness0(x, outputs, 2, parameterization="standard", width=width)
    assert measured > 2 * plain
    assert 1.0 < measured / edge < 1.5


def test_limits():
    assert readout_edge(10, 32) == pytest.approx((1 + np.sqrt(10 / 32)) ** 2)
    x = np.random.default_rng(1).standard_normal((6, 5))
    depth1 = predicted_sharpness0_readout_edge(x, 3, 1, 64)
    assert depth1 == pytest.approx(predicted_sharpness0(x, 3, 1, parameterization="standard", width=64))
    one_output = predicted_sharpness0_readout_edge(x, 1, 3, 10**8)
    assert one_output == pytest.approx(
        predicted_sharpness0(x, 1, 3, parameterization="standard", width=10**8), rel=1e-3
    )
    with pytest.raises(ValueError, match="width"):
        predicted_sharpness0_readout_edge(x, 3, 2, 0)
