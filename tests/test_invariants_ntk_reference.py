"""The infinite-width NTK recursion against neural-tangents 0.6.5's analytic kernel, in the default suite.

Oracle: tests/reference/ntk_reference.json, written by tests/reference/make_ntk_reference.py in an
environment with the ``ntk`` extra (neural-tangents, jax 0.4.35; the versions are in the file).
Cases: relu / erf / linear x ntk / standard parameterisation x sigma_w^2 in {1, 2}, a depth-4 FCN
without biases on four fixed inputs; standard parameterisation at width 64 (both are the kernel
of a width-64 network to leading order in the width). The two codes share no line: agreement to
1e-12 relative (rounding of a few dozen float64 operations) checks the arc-cosine and erf
closed forms and the layer recursion (docs/PROTOCOL.md section 5).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from earlyphase.theory.ntk import infinite_width_ntk
from earlyphase.theory.precision import x64

REFERENCE = json.loads((Path(__file__).parent / "reference" / "ntk_reference.json").read_text())
CASES = REFERENCE["cases"]


def test_reference_was_made_by_the_pinned_neural_tangents():
    assert REFERENCE["versions"]["neural-tangents"] == "0.6.5"
    assert {(c["activation"], c["parameterization"], c["sigma_w2"]) for c in CASES} == {
        (a, p, s) for a in ("relu", "erf", "linear") for p in ("ntk", "standard") for s in (1.0, 2.0)
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['activation']}-{c['parameterization']}-{c['sigma_w2']}")
def test_recursion_equals_neural_tangents(case):
    x = np.asarray(REFERENCE["inputs"])
    expected = np.asarray(case["ntk"])
    standard = case["parameterization"] == "standard"
    with x64():
        got = infinite_width_ntk(
            x,
            REFERENCE["depth"],
            case["activation"],
            case["parameterization"],
            case["sigma_w2"],
            width=REFERENCE["width"] if standard else None,
        )
    assert expected.shape == (len(x), len(x)) and np.all(np.isfinite(expected))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())
