"""The ``Dataset`` record and the steps every loader shares: subset, standardise, one-hot, measure batch.

Conventions (one place for all datasets):

- inputs are standardised PER SAMPLE: x_i <- (x_i - mean(x_i)) / std(x_i) over the features of
  sample i (population std); a constant sample (std = 0) becomes all zeros;
- targets are one-hot float32 rows e_{y_i} in R^k, k the number of classes of the dataset
  (not of the subset, which may miss a class);
- the training subset of size n_train is the first n_train entries of a fixed permutation of the
  full training set drawn with ``numpy.random.default_rng(subset_seed)`` (default
  ``SUBSET_SEED`` = 0), so subsets are nested (n_train = 100 is a prefix of n_train = 200) and
  never the first n of a class-sorted file; the test subset likewise, with its own permutation;
- the measurement batch: n_measure distinct indices into x_train drawn without replacement with
  ``numpy.random.default_rng(seed)``, then sorted; independent of the SGD order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from earlyphase.core.validate import ConfigError, require_int

SUBSET_SEED = 0
"""Default seed of the fixed permutation that draws the n_train / n_test subsets."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A standardised, one-hot dataset with a fixed measurement batch.

    ``x_train``: float32 (n_train, *input_shape), each sample with mean 0 and std 1 over its
    features; ``y_train``: float32 one-hot (n_train, k); ``measure_index``: int64 indices into
    ``x_train`` of the measurement batch; ``x_test``/``y_test``: the same for the test split or
    None; ``source``: where the data came from.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    measure_index: np.ndarray
    x_test: np.ndarray | None
    y_test: np.ndarray | None
    source: str

    def __post_init__(self) -> None:
        n_train = len(self.x_train)
        if self.y_train.ndim != 2 or len(self.y_train) != n_train:
            raise ValueError(f"y_train must have shape ({n_train}, k), got {self.y_train.shape}")
        index = self.measure_index
        if (
            index.ndim != 1
            or len(index) == 0
            or index.min() < 0
            or index.max() >= n_train
            or len(np.unique(index)) != len(index)
        ):
            raise ValueError(f"measure_index must hold distinct indices in [0, {n_train}), got {len(index)} of them")
        if (self.x_test is None) != (self.y_test is None):
            raise ValueError("x_test and y_test must both be given or both be None")
        if (
            self.x_test is not None
            and self.y_test is not None
            and (len(self.x_test) != len(self.y_test) or self.y_test.shape[1:] != self.y_train.shape[1:])
        ):
            raise ValueError(
                f"y_test must have shape ({len(self.x_test)}, {self.y_train.shape[1]}), got {self.y_test.shape}"
            )

    @property
    def x_measure(self) -> np.ndarray:
        """The measurement-batch inputs x_train[measure_index]."""
        return self.x_train[self.measure_index]

    @property
    def y_measure(self) -> np.ndarray:
        """The measurement-batch targets y_train[measure_index]."""
        return self.y_train[self.measure_index]

    @property
    def num_classes(self) -> int:
        """k, the number of outputs (width of the one-hot targets)."""
        return int(self.y_train.shape[1])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input: (C, H, W) for images, (D,) for vectors."""
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def labels_train(self) -> np.ndarray:
        """Integer class labels argmax_a y_train[i, a] (int64)."""
        return np.argmax(self.y_train, axis=1).astype(np.int64)


def standardise_per_sample(x: np.ndarray, block: int = 2048) -> np.ndarray:
    """Return float32 (x_i - mean(x_i)) / std(x_i), statistics over each sample's own features.

    Computed in float64, ``block`` samples at a time (bounded memory); a sample with std = 0 maps to zeros.
    """
    x = np.asarray(x)
    out = np.empty(x.shape, dtype=np.float32)
    flat_in, flat_out = x.reshape(len(x), -1), out.reshape(len(x), -1)
    for start in range(0, len(x), block):
        rows = flat_in[start : start + block].astype(np.float64)
        rows -= rows.mean(axis=1, keepdims=True)
        std = np.sqrt(np.mean(rows * rows, axis=1, keepdims=True))
        flat_out[start : start + block] = np.divide(rows, std, out=np.zeros_like(rows), where=std > 0)
    return out


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Return float32 Y with Y[i, a] = 1 if labels[i] == a else 0; labels must lie in [0, k)."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]")
    return np.eye(num_classes, dtype=np.float32)[labels]


def subset_indices(name: str, n_total: int, n: int | None, subset_seed: int = SUBSET_SEED) -> np.ndarray:
    """Indices of a reproducible subset: the first n of permutation(n_total) under ``subset_seed``.

    n = None keeps all n_total examples (still in the permuted order).
    """
    n = n_total if n is None else require_int(name, n, minimum=1, maximum=n_total)
    return np.random.default_rng(subset_seed).permutation(n_total)[:n].astype(np.int64)


def measure_indices(n_train: int, n_measure: int | None, seed: int) -> np.ndarray:
    """n_measure distinct sorted indices in [0, n_train), drawn with default_rng(seed).

    n_measure = None means all n_train examples; n_measure > n_train is a ValueError.
    """
    if n_measure is None:
        return np.arange(n_train, dtype=np.int64)
    if isinstance(n_measure, bool) or not isinstance(n_measure, (int, np.integer)) or not 1 <= n_measure <= n_train:
        raise ConfigError(
            f"n_measure must be an integer in [1, n_train = {n_train}] (or None for all {n_train}), got {n_measure!r}",
            "n_measure",
        )
    rng = np.random.default_rng(require_int("seed", seed, minimum=0))
    return np.sort(rng.choice(n_train, size=n_measure, replace=False)).astype(np.int64)


@dataclass(frozen=True)
class RawData:
    """Undecorated arrays from a loader: inputs in any numeric scale, integer labels in [0, k)."""

    x_train: np.ndarray
    labels_train: np.ndarray
    x_test: np.ndarray | None
    labels_test: np.ndarray | None
    num_classes: int
    source: str


def subset_rows(
    n_train_total: int,
    n_test_total: int,
    n_train: int | None,
    n_test: int | None,
    subset_seed: int,
    where: str,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows of the n_train / n_test subsets (``subset_indices``); test rows None without a test split."""
    if n_test_total == 0 and n_test is not None:
        raise ConfigError(f"n_test was given ({n_test}) but this dataset has no test split ({where})", "n_test")
    test = subset_indices("n_test", n_test_total, n_test, subset_seed) if n_test_total else None
    return subset_indices("n_train", n_train_total, n_train, subset_seed), test


def take_subsets(raw: RawData, n_train: int | None, n_test: int | None, subset_seed: int = SUBSET_SEED) -> RawData:
    """Restrict a fully loaded RawData to the reproducible n_train / n_test subsets (``subset_rows``)."""
    n_test_total = 0 if raw.x_test is None else len(raw.x_test)
    train, test = subset_rows(len(raw.x_train), n_test_total, n_train, n_test, subset_seed, raw.source)
    x_test, labels_test = (None, None) if test is None else (raw.x_test[test], raw.labels_test[test])  # type: ignore[index]
    return RawData(raw.x_train[train], raw.labels_train[train], x_test, labels_test, raw.num_classes, raw.source)


def build_dataset(name: str, raw: RawData, n_measure: int | None, seed: int) -> Dataset:
    """Standardise, one-hot encode and draw the measurement batch of an already-subset RawData."""
    has_test = raw.x_test is not None and raw.labels_test is not None and len(raw.x_test) > 0
    return Dataset(
        name=name,
        x_train=standardise_per_sample(raw.x_train),
        y_train=one_hot(raw.labels_train, raw.num_classes),
        measure_index=measure_indices(len(raw.x_train), n_measure, seed),
        x_test=standardise_per_sample(raw.x_test) if has_test else None,  # type: ignore[arg-type]
        y_test=one_hot(raw.labels_test, raw.num_classes) if has_test else None,  # type: ignore[arg-type]
        source=raw.source,
    )
