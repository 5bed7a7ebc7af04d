"""A Gaussian teacher task of any input dimension D and number of outputs k.

Inputs: x ~ N(0, I_D), then standardised per sample. Teacher: a random one-hidden-layer network

    f*(x) = W2 tanh(W1 x / sqrt(D)) / sqrt(m),   W1 in R^{m x D}, W2 in R^{k x m}, entries N(0, 1),

with m = ``teacher_width``. Targets are classification labels y = argmax_a (f*_a(x) - mu_a) / s_a,
one-hot encoded, where mu_a, s_a are the mean and std of output a over a fixed reference sample
of 4096 inputs (drawn from default_rng([teacher_seed, 3])): a fixed function of x whose outputs
have equal marginal scale, so classes are roughly balanced. Inputs need D >= 3 (per-sample
standardisation maps D = 1 to 0 and D = 2 to two points). Everything is drawn from
``teacher_seed``: the teacher from default_rng([teacher_seed, 0]), the training inputs from
default_rng([teacher_seed, 1]) and the test inputs from default_rng([teacher_seed, 2]); so
n_train = 100 is a prefix of n_train = 200.
"""

from __future__ import annotations

import numpy as np

from earlyphase.core.validate import require_int
from earlyphase.empirical.data.dataset import RawData, standardise_per_sample

DEFAULT_N_TRAIN = 4096


REFERENCE_SIZE = 4096


def teacher_labels(x: np.ndarray, num_outputs: int, teacher_width: int, teacher_seed: int) -> np.ndarray:
    """Labels argmax_a (f*_a(x) - mu_a) / s_a of the teacher f*(x) = W2 tanh(W1 x / sqrt(D)) / sqrt(m)."""
    rng = np.random.default_rng([teacher_seed, 0])
    dim = x.shape[1]
    w1 = rng.standard_normal((teacher_width, dim))
    w2 = rng.standard_normal((num_outputs, teacher_width))

    def teacher(inputs: np.ndarray) -> np.ndarray:
        return np.tanh(inputs.astype(np.float64) @ w1.T / np.sqrt(dim)) @ w2.T / np.sqrt(teacher_width)

    reference = teacher(
        standardise_per_sample(np.random.default_rng([teacher_seed, 3]).standard_normal((REFERENCE_SIZE, dim)))
    )
    scale = np.where(reference.std(axis=0) > 0, reference.std(axis=0), 1.0)
    return np.argmax((teacher(x) - reference.mean(axis=0)) / scale, axis=1).astype(np.int64)


def load_synthetic_raw(
    n_train: int | None,
    n_test: int | None,
    input_dim: int = 32,
    num_outputs: int = 10,
    teacher_width: int = 64,
    teacher_seed: int = 0,
) -> RawData:
    """Draw n_train (default 4096) training and n_test (default: none) test examples of the teacher task."""
    input_dim = require_int("input_dim", input_dim, minimum=3)  # per-sample standardisation: D <= 2 is degenerate
    num_outputs = require_int("num_outputs", num_outputs, minimum=2)
    teacher_width = require_int("teacher_width", teacher_width, minimum=1)
    teacher_seed = require_int("teacher_seed", teacher_seed, minimum=0)
    n_train = DEFAULT_N_TRAIN if n_train is None else require_int("n_train", n_train, minimum=1)

    def draw(n: int, stream: int) -> tuple[np.ndarray, np.ndarray]:
        x = standardise_per_sample(np.random.default_rng([teacher_seed, stream]).standard_normal((n, input_dim)))
        return x, teacher_labels(x, num_outputs, teacher_width, teacher_seed)

    x_train, labels_train = draw(n_train, 1)
    x_test, labels_test = draw(require_int("n_test", n_test, minimum=1), 2) if n_test is not None else (None, None)
    source = (
        f"generated Gaussian teacher (input_dim={input_dim}, num_outputs={num_outputs}, "
        f"teacher_width={teacher_width}, teacher_seed={teacher_seed})"
    )
    return RawData(x_train, labels_train, x_test, labels_test, num_outputs, source)
