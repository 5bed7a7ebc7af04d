"""``load_dataset``: one entry point for every dataset (see docs/DATA.md)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from functools import partial
from typing import Any

from earlyphase.core.validate import ConfigError, require_choice, require_int
from earlyphase.empirical.data.cifar import load_cifar10_raw
from earlyphase.empirical.data.dataset import SUBSET_SEED, Dataset, RawData, build_dataset, take_subsets
from earlyphase.empirical.data.digits import load_digits_raw
from earlyphase.empirical.data.idx import load_mnist_raw
from earlyphase.empirical.data.synthetic import load_synthetic_raw


def _digits(path: str | os.PathLike | None, n_train: int | None, n_test: int | None, subset_seed: int) -> RawData:
    if path is not None:
        raise ConfigError("path is not used by the 'digits' dataset (it ships with scikit-learn)", "path")
    return take_subsets(load_digits_raw(), n_train, n_test, subset_seed)


def _synthetic(
    path: str | os.PathLike | None,
    n_train: int | None,
    n_test: int | None,
    subset_seed: int,
    input_dim: int = 32,
    num_outputs: int = 10,
    teacher_width: int = 64,
    teacher_seed: int = 0,
) -> RawData:
    if path is not None:
        raise ConfigError("path is not used by the 'synthetic' dataset (it is generated)", "path")
    return load_synthetic_raw(n_train, n_test, input_dim, num_outputs, teacher_width, teacher_seed)


def _idx(
    name: str,
    path: str | os.PathLike | None,
    n_train: int | None,
    n_test: int | None,
    subset_seed: int,
    download: bool = True,
) -> RawData:
    """The n_train / n_test subsets of the IDX dataset ``name`` ("mnist" or "fashion_mnist")."""
    return take_subsets(load_mnist_raw(name, path, download), n_train, n_test, subset_seed)


LOADERS: dict[str, Callable[..., RawData]] = {
    "digits": _digits,
    "mnist": partial(_idx, "mnist"),
    "fashion_mnist": partial(_idx, "fashion_mnist"),
    "cifar10": load_cifar10_raw,
    "synthetic": _synthetic,
}
"""name -> loader(path, n_train, n_test, subset_seed, **options) returning the subset RawData."""

DATASET_NAMES = tuple(LOADERS)


def load_dataset(
    name: str,
    n_train: int | None = None,
    n_measure: int | None = 4096,
    seed: int = 0,
    path: str | os.PathLike | None = None,
    n_test: int | None = None,
    **options: Any,
) -> Dataset:
    """Load ``name`` as a Dataset: per-sample standardised inputs, one-hot targets, a fixed measure batch.

    n_train / n_test: sizes of the reproducible subsets (None = all; first n of a fixed permutation
    drawn with ``subset_seed``, default 0). n_measure: size of the measurement batch, n_measure
    distinct training examples drawn with ``seed`` (None = all n_train; more than n_train is a
    ValueError). path: an explicit file or directory (datasets read from disk). Further
    ``options`` per dataset are listed in docs/DATA.md.
    """
    require_choice("name", name, DATASET_NAMES)
    subset_seed = require_int("subset_seed", options.pop("subset_seed", SUBSET_SEED), minimum=0)
    loader = LOADERS[name]
    allowed = [p for p in inspect.signature(loader).parameters if p not in ("path", "n_train", "n_test", "subset_seed")]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {unknown} for dataset {name!r}; allowed: {sorted([*allowed, 'subset_seed'])}",
            unknown[0],
        )
    raw = loader(path, n_train, n_test, subset_seed, **options)
    return build_dataset(name, raw, n_measure, seed)
