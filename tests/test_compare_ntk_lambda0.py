"""The infinite-width NTK's lambda_H0 against the empirical NTK of a wide network and a measured table."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse.linalg as sla
import torch

from earlyphase.compare.ntk_lambda0 import (
    NTK_LAMBDA0_COLUMNS,
    format_ntk_lambda0,
    measurement_inputs,
    ntk_lambda0_table,
    predicted_lambda0,
)
from earlyphase.empirical.curvature.ntk import ntk_operator
from earlyphase.empirical.data import load_dataset
from earlyphase.empirical.functional import flatten_module
from earlyphase.empirical.models import build_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", n_measure=32, seed=0)


def _empirical_top(dataset, depth, width, seed):
    """lambda_max(J J^T) / (n k) of the built network at initialisation (ARPACK on J^T J, float64)."""
    flat, theta = flatten_module(
        build_model("fcn", dataset.input_shape, dataset.num_classes, depth, width, seed=seed), dtype=torch.float64
    )
    x = torch.as_tensor(measurement_inputs(dataset))
    gram = ntk_operator(lambda t: flat(t, x), theta)
    size = theta.numel()
    operator = sla.LinearOperator(
        (size, size), matvec=lambda v: gram(torch.as_tensor(v.ravel())).numpy(), dtype=np.float64
    )
    top = sla.eigsh(operator, k=1, which="LA", tol=1e-8)[0][0]
    return top / (len(x) * dataset.num_classes)


def test_prediction_is_the_empirical_ntk_of_a_wide_network(digits):
    """Depth 2, width 2048, 32 digits, 10 outputs: within 4 % (the finite-width kernel's top
    eigenvalue, k-fold degenerate at infinite width, is biased upwards by its fluctuations)."""
    predicted = predicted_lambda0(measurement_inputs(digits), digits.num_classes, 2, 2048)
    ratio = _empirical_top(digits, 2, 2048, seed=1) / predicted
    assert 1.0 <= ratio < 1.04


def test_table_sets_the_prediction_against_the_seed_statistics(digits):
    x = measurement_inputs(digits)
    assert x.shape == (32, 64) and x.dtype == np.float64
    per_seed = pd.DataFrame(
        {
            "arch": ["fcn"] * 4 + ["cnn"],
            "depth": [2, 2, 3, 3, 4],
            "width": [16, 16, 8, 8, 8],
            "lambda0": [1.0, 3.0, 5.0, 5.0, 99.0],
        }
    )
    table = ntk_lambda0_table(per_seed, x, digits.num_classes)
    assert tuple(table.columns) == NTK_LAMBDA0_COLUMNS
    assert table[["depth", "width"]].values.tolist() == [[2, 16], [3, 8]]
    first = table.iloc[0]
    assert first.predicted == pytest.approx(predicted_lambda0(x, digits.num_classes, 2, 16))
    assert (first.measured_mean, first.measured_std, first.seeds) == (2.0, 1.0, 2)
    assert first.ratio == pytest.approx(2.0 / first.predicted)
    assert first.ratio_edge == pytest.approx(2.0 / first.predicted_edge) and first.predicted_edge > first.predicted
    assert "| 2 | 16 |" in format_ntk_lambda0(table)
    with pytest.raises(ValueError, match="lambda0"):
        ntk_lambda0_table(per_seed.drop(columns="lambda0"), x, digits.num_classes)
