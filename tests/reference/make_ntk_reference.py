"""Write tests/reference/ntk_reference.json: neural-tangents' analytic NTK for the cases that
tests/test_invariants_ntk_reference.py compares ``earlyphase.theory.ntk.infinite_width_ntk`` with.

Cases: activation relu / erf / linear x parameterisation ntk / standard x sigma_w^2 in {1, 2};
a depth-4 fully connected network without biases (three hidden Dense(64) layers with the
activation, a Dense(1) readout of W_std = 1), on four fixed inputs of dimension 7
(numpy.random.default_rng(5).standard_normal((4, 7)), stored in the JSON too). In standard
parameterisation neural-tangents' kernel is that of a width-64 network to leading order in the
width, as is the recursion's with ``width=64``.

Run it in an environment with the ``ntk`` extra (docs/DEVELOPING.md):

    python3.11 -m venv /tmp/ntk-venv
    /tmp/ntk-venv/bin/pip install torch==2.13.0
    /tmp/ntk-venv/bin/pip install -e '.[ntk]'
    /tmp/ntk-venv/bin/python tests/reference/make_ntk_reference.py
"""

from __future__ import annotations

import itertools
import json
import platform
from importlib.metadata import version
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import neural_tangents as nt  # noqa: E402  (after enabling float64)

OUTPUT = Path(__file__).with_name("ntk_reference.json")
WIDTH = 64
HIDDEN_LAYERS = 3
ACTIVATIONS = ("relu", "erf", "linear")
PARAMETERIZATIONS = ("ntk", "standard")
SIGMA_W2 = (1.0, 2.0)


def inputs() -> np.ndarray:
    return np.random.default_rng(5).standard_normal((4, 7))


def analytic_ntk(x: np.ndarray, activation: str, parameterization: str, sigma_w2: float) -> np.ndarray:
    stax = nt.stax
    phi = {"relu": stax.Relu(), "erf": stax.Erf(), "linear": stax.Identity()}[activation]
    layers = []
    for _ in range(HIDDEN_LAYERS):
        layers += [stax.Dense(WIDTH, W_std=np.sqrt(sigma_w2), b_std=None, parameterization=parameterization), phi]
    _, _, kernel_fn = stax.serial(*layers, stax.Dense(1, W_std=1.0, b_std=None, parameterization=parameterization))
    return np.asarray(kernel_fn(x, None, "ntk"), dtype=np.float64)


def main() -> None:
    x = inputs()
    cases = [
        {
            "activation": activation,
            "parameterization": parameterization,
            "sigma_w2": sigma_w2,
            "ntk": analytic_ntk(x, activation, parameterization, sigma_w2).tolist(),
        }
        for activation, parameterization, sigma_w2 in itertools.product(ACTIVATIONS, PARAMETERIZATIONS, SIGMA_W2)
    ]
    record = {
        "description": "neural-tangents analytic NTK (kernel_fn(x, None, 'ntk')) of a depth-4 FCN without biases",
        "depth": HIDDEN_LAYERS + 1,
        "width": WIDTH,
        "inputs": x.tolist(),
        "versions": {name: version(name) for name in ("neural-tangents", "jax", "jaxlib", "numpy")}
        | {"python": platform.python_version()},
        "cases": cases,
    }
    OUTPUT.write_text(json.dumps(record, indent=1, default=float) + "\n")
    print(f"wrote {len(cases)} cases to {OUTPUT}")


if __name__ == "__main__":
    main()
