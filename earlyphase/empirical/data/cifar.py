"""CIFAR-10: the official python batches (a folder or the official .tar.gz) or an image folder.

The official batches are Python pickles of {b'data': uint8 array (10000, 3072), b'labels': [int],
...}; each row is 1024 red, 1024 green, 1024 blue values of a 32x32 image in row-major order,
so ``data.reshape(n, 3, 32, 32)`` is channels-first. They are read with ``ArrayOnlyUnpickler``,
which resolves no global except numpy's array reconstruction: a hostile pickle cannot run code.
"""

from __future__ import annotations

import codecs
import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np

from earlyphase.empirical.data.cache import load_cached, store_cached
from earlyphase.empirical.data.dataset import RawData, subset_rows, take_subsets
from earlyphase.empirical.data.errors import DataFileError
from earlyphase.empirical.data.imagefolder import (
    ImageFolderIndex,
    decode_image_folder,
    index_image_paths,
    is_image_path,
    iter_tree_images,
    read_tar_members,
)
from earlyphase.empirical.data.locate import locate

NUM_CLASSES = 10
IMAGE_SIZE = (32, 32)
ROW_LENGTH = 3 * IMAGE_SIZE[0] * IMAGE_SIZE[1]
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
BATCHES_DIR = "cifar-10-batches-py"
OFFICIAL_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_URLS = {OFFICIAL_ARCHIVE: ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",)}
CIFAR_SHA256 = {OFFICIAL_ARCHIVE: "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"}
"""sha256 of the official archive (170498071 bytes, md5 c58f30108f718f92721af3b95e74349a as published)."""
CIFAR_EXPECTED = (
    f"the official {BATCHES_DIR} folder (data_batch_1..5, test_batch) or {OFFICIAL_ARCHIVE}, "
    "or an image folder train/<class>/*, test/<class>/* (a directory, or a tar archive named cifar*.tar[.gz])"
)


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle named a global outside ``SAFE_GLOBALS``."""


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """codecs.encode restricted to latin1: how Python 3 protocol-2 pickles store bytes."""
    if encoding != "latin1":
        raise RefusedGlobalError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return codecs.encode(text, "latin1")


_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_FROMBUFFER = np.ndarray.__reduce_ex__(np.zeros(1), 5)[0]
SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
}
"""The only globals a CIFAR batch may name: numpy array reconstruction and latin1 bytes."""


class ArrayOnlyUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` admits only ``SAFE_GLOBALS``; anything else is refused."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return SAFE_GLOBALS[(module, name)]
        except KeyError:
            raise RefusedGlobalError(
                f"refused to load global {module}.{name}: a CIFAR-10 batch holds only numpy arrays, "
                "lists, dicts and bytes (this file may be hostile)"
            ) from None


def read_batch(blob: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 3, 32, 32) uint8 and labels (n,) int64 from one pickled batch; every field checked."""
    try:
        batch = ArrayOnlyUnpickler(io.BytesIO(blob), encoding="bytes").load()
    except RefusedGlobalError as error:
        raise DataFileError(f"{where}: {error}") from error
    except Exception as error:  # truncated or garbage pickles raise EOFError, ValueError, KeyError, ...
        raise DataFileError(f"{where}: not a readable CIFAR-10 batch ({type(error).__name__}: {error})") from error
    if not isinstance(batch, dict):
        raise DataFileError(f"{where}: a CIFAR-10 batch is a dict, got {type(batch).__name__}")
    fields = {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in batch.items()}
    missing = [key for key in ("data", "labels") if key not in fields]
    if missing:
        raise DataFileError(f"{where}: missing key(s) {missing} (keys: {sorted(map(str, fields))})")
    data, labels = fields["data"], fields["labels"]
    if not isinstance(data, np.ndarray):
        raise DataFileError(
            f"{where}: wrong type: 'data' is {type(data).__name__}, expected a uint8 array (n, {ROW_LENGTH})"
        )
    if data.dtype != np.uint8:
        raise DataFileError(
            f"{where}: wrong dtype: 'data' is {data.dtype} {data.shape}, expected uint8 (n, {ROW_LENGTH})"
        )
    if data.ndim != 2 or data.shape[1] != ROW_LENGTH:
        raise DataFileError(
            f"{where}: wrong shape: 'data' is {data.dtype} {data.shape}, expected uint8 (n, {ROW_LENGTH})"
        )
    if not isinstance(labels, (list, np.ndarray)) or not all(
        isinstance(label, (int, np.integer)) and not isinstance(label, bool) for label in labels
    ):
        raise DataFileError(f"{where}: 'labels' must be a list of integers")
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(data):
        raise DataFileError(f"{where}: wrong count: {len(data)} images but {len(labels)} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataFileError(f"{where}: labels outside 0..{NUM_CLASSES - 1} (range {labels.min()}..{labels.max()})")
    return data.reshape(len(data), 3, *IMAGE_SIZE), labels


def read_batches(blobs: dict[str, bytes], where: str) -> RawData:
    """All five training batches and the test batch (file name -> bytes) as one RawData."""
    missing = [name for name in (*TRAIN_BATCHES, TEST_BATCH) if name not in blobs]
    if missing:
        raise DataFileError(f"{where}: incomplete CIFAR-10 python batches, missing {', '.join(missing)}")
    train = [read_batch(blobs[name], f"{where}/{name}") for name in TRAIN_BATCHES]
    x_test, labels_test = read_batch(blobs[TEST_BATCH], f"{where}/{TEST_BATCH}")
    x_train = np.concatenate([x for x, _ in train])
    labels_train = np.concatenate([labels for _, labels in train])
    return RawData(x_train, labels_train, x_test, labels_test, NUM_CLASSES, where)


@dataclass(frozen=True)
class CifarSource:
    """A located copy: the official batches folder, a tar archive (batches or images), or an image tree."""

    kind: Literal["batches", "archive", "tree"]
    path: Path


def probe_cifar(place: Path) -> CifarSource | None:
    """What form of CIFAR-10 ``place`` holds (checked in this order), or None; a foreign file is an error.

    A file: a tar archive. A directory: holding data_batch_1 / test_batch; holding
    cifar-10-batches-py/; holding cifar-10-python.tar.gz; an image tree; holding cifar*.tar[.gz] / cifar*.tgz.
    """
    if place.is_file():
        if not tarfile.is_tarfile(place):
            raise DataFileError(f"{place}: not a tar archive; expected {CIFAR_EXPECTED}")
        return CifarSource("archive", place)
    if not place.is_dir():
        return None
    if (place / TRAIN_BATCHES[0]).is_file() or (place / TEST_BATCH).is_file():
        return CifarSource("batches", place)
    if (place / BATCHES_DIR).is_dir():
        return CifarSource("batches", place / BATCHES_DIR)
    if (place / OFFICIAL_ARCHIVE).is_file():
        return CifarSource("archive", place / OFFICIAL_ARCHIVE)
    if next(iter_tree_images(place), None) is not None:
        return CifarSource("tree", place)
    archives = sorted(p for pattern in ("cifar*.tar.gz", "cifar*.tgz", "cifar*.tar") for p in place.glob(pattern))
    return CifarSource("archive", archives[0]) if archives else None


def _check_classes(index: ImageFolderIndex, where: str) -> None:
    if len(index.classes) != NUM_CLASSES:
        raise DataFileError(
            f"{where}: wrong number of classes: found {len(index.classes)} class folders "
            f"{list(index.classes)}, CIFAR-10 has {NUM_CLASSES}"
        )


def load_cifar10_raw(
    path: str | os.PathLike | None,
    n_train: int | None,
    n_test: int | None,
    subset_seed: int,
    download: bool = True,
    cache: bool = True,
) -> RawData:
    """The n_train / n_test subsets of CIFAR-10 from the first copy ``locate`` finds.

    Archives: with ``cache``, the full decoded arrays are stored as .npy (``cache.py``) whenever
    the whole archive is decoded (official batches, or an image archive with n_train = None), and
    later loads read them. An image archive or tree with n_train given decodes only that subset.
    """
    source = locate("cifar10", path, probe_cifar, CIFAR_URLS, download, CIFAR_EXPECTED, CIFAR_SHA256)
    where = str(source.path)
    if source.kind == "batches":
        blobs = {
            name: (source.path / name).read_bytes()
            for name in (*TRAIN_BATCHES, TEST_BATCH)
            if (source.path / name).is_file()
        }
        return take_subsets(read_batches(blobs, where), n_train, n_test, subset_seed)
    if source.kind == "tree":
        index = index_image_paths(list(iter_tree_images(source.path)), where)
        _check_classes(index, where)
        rows = subset_rows(len(index.train_paths), len(index.test_paths), n_train, n_test, subset_seed, where)
        return decode_image_folder(index, lambda p: (source.path / p).read_bytes(), where, "RGB", IMAGE_SIZE, *rows)
    cached = load_cached("cifar10", source.path) if cache else None
    if cached is not None:
        return take_subsets(cached, n_train, n_test, subset_seed)
    members = read_tar_members(
        source.path,
        lambda name: PurePosixPath(name).name in (*TRAIN_BATCHES, TEST_BATCH) or is_image_path(name),
    )
    batches = {PurePosixPath(name).name: blob for name, blob in members.items() if not is_image_path(name)}
    if batches:
        raw = read_batches(batches, where)
    else:
        index = index_image_paths(list(members), where)
        _check_classes(index, where)
        if n_train is not None:
            rows = subset_rows(len(index.train_paths), len(index.test_paths), n_train, n_test, subset_seed, where)
            return decode_image_folder(index, members.__getitem__, where, "RGB", IMAGE_SIZE, *rows)
        raw = decode_image_folder(index, members.__getitem__, where, "RGB", IMAGE_SIZE)
    if cache:
        store_cached("cifar10", source.path, raw)
    return take_subsets(raw, n_train, n_test, subset_seed)
