"""Scale invariance of the deep linear model's critical values (docs/PROTOCOL.md sections 3 and 5).

In the ntk parameterisation W_l ~ N(0, 1) whatever sigma_w^2, and f = s_d W_d ... s_1 W_1 x with
s_l = sigma_l / sqrt(fan_in) (sigma_l^2 = sigma_w^2 for the d - 1 input and hidden layers, 1 for
the readout). Multiplying sigma_w^2 by a multiplies f by a^((d-1)/2) at the SAME weights; with
the target y multiplied by a^((d-1)/2) too, L = |f - y|^2 / (2 n k) becomes alpha L,
alpha = a^(d-1), as a function of the weights. The initialisation (same seeds) is the same, so
GD at eta = c / lambda_H0 follows the same W_t: every critical value is unchanged, lambda_H0 and
L_0 scale by alpha. L_max is a loss: it scales with alpha too.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from earlyphase.core import DEFAULT_LOSS_MAX
from earlyphase.theory.lanczos import LanczosSettings
from earlyphase.theory.predict import predict_critical_values

DEPTH, WIDTH, A = 3, 4, 2.0
ALPHA = A ** (DEPTH - 1)
BASE = dict(
    examples=2,
    outputs=2,
    parameterization="ntk",
    sigma_w2=1.0,
    target=0.3,
    steps=6,
    x_max=4.0,
    lanczos=LanczosSettings(tol=1e-10),
)
"""Two compilations in all (the base and the scaled network); the seeds vary freely."""


@pytest.mark.slow  # two JAX compilations: about a minute on a busy 2-core machine (the uv model's test is in `make test`)
@settings(max_examples=3, deadline=None)
@given(first_seed=st.integers(0, 2**16))
def test_scaling_the_loss_leaves_every_critical_value_unchanged(first_seed):
    base = predict_critical_values("linear", DEPTH, WIDTH, seeds=3, first_seed=first_seed, **BASE)
    scaled_options = {**BASE, "sigma_w2": A * BASE["sigma_w2"], "target": A ** ((DEPTH - 1) / 2) * BASE["target"]}
    scaled = predict_critical_values(
        "linear", DEPTH, WIDTH, seeds=3, first_seed=first_seed, loss_max=ALPHA * DEFAULT_LOSS_MAX, **scaled_options
    )
    np.testing.assert_allclose(scaled.loss0, ALPHA * base.loss0, rtol=1e-12)
    np.testing.assert_allclose(scaled.lambda0, ALPHA * base.lambda0, rtol=1e-9)
    assert scaled.critical == base.critical
    assert all(cv.c_loss.found and cv.c_max.found for cv in base.critical)  # the grid spans the diagram
    columns = min(base.sweep.c.size, scaled.sweep.c.size)
    both = np.isfinite(base.sweep.loss[:, :columns]) & np.isfinite(scaled.sweep.loss[:, :columns])
    np.testing.assert_allclose(
        scaled.sweep.loss[:, :columns][both], ALPHA * base.sweep.loss[:, :columns][both], rtol=1e-6
    )
