"""IDX files (the MNIST / Fashion-MNIST format), gzipped or not.

An IDX file is: two zero bytes, a type byte (0x08 = unsigned byte, ...), the number of
dimensions n, then n big-endian uint32 sizes, then the values in C order. MNIST images are
magic 0x00000803 (ubyte, 3 dims: count x 28 x 28), labels 0x00000801 (ubyte, 1 dim: count).
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from numpy.typing import DTypeLike

from earlyphase.empirical.data.dataset import RawData
from earlyphase.empirical.data.errors import DataFileError
from earlyphase.empirical.data.locate import locate

IDX_DTYPES: dict[int, DTypeLike] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"
MNIST_IMAGE_SHAPE = (28, 28)
IMAGE_MAGIC = 0x00000803
LABEL_MAGIC = 0x00000801
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_URLS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion_mnist": (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        # the official S3 website endpoint serves plain http only; the pinned sha256 protects it
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ),
}
MNIST_SHA256 = {
    # the digests tensorflow/datasets registers for these files (url_checksums/mnist.txt,
    # url_checksums/fashion_mnist.txt); sizes 9912422, 28881, 1648877, 4542 and
    # 26421880, 29515, 4422102, 5148 bytes, as in the upstream READMEs
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}
MNIST_EXPECTED = (
    "a directory with the four IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, "
    "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each optionally .gz)"
)


def read_file_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic 1f 8b (DataFileError if broken)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataFileError(f"{path}: cannot be read ({error})") from error
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as error:
        raise DataFileError(f"{path}: corrupt or truncated gzip stream ({error})") from error


def read_idx(path: str | os.PathLike, expected_magic: int | None = None) -> np.ndarray:
    """Parse one IDX file into an array of its declared shape; check magic number and byte count."""
    path = Path(path)
    data = read_file_bytes(path)
    if len(data) < 4:
        raise DataFileError(f"{path}: {len(data)} bytes is too short for an IDX header (4 bytes of magic number)")
    magic = int.from_bytes(data[:4], "big")
    if data[0] != 0 or data[1] != 0 or data[2] not in IDX_DTYPES:
        raise DataFileError(
            f"{path}: wrong magic number 0x{magic:08x}: not an IDX file (expected 0x0000 then a type byte 0x08..0x0e)"
        )
    if expected_magic is not None and magic != expected_magic:
        raise DataFileError(f"{path}: wrong magic number 0x{magic:08x}, expected 0x{expected_magic:08x}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFileError(
            f"{path}: truncated header: {ndim} dimensions need {header} bytes, the file has {len(data)}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_DTYPES[data[2]])
    expected_bytes = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected_bytes:
        fault = "truncated" if len(data) < expected_bytes else "extra bytes after the data"
        raise DataFileError(
            f"{path}: {fault}: the header declares shape {shape} ({expected_bytes} bytes) "
            f"but the file has {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def find_idx_file(directory: Path, stem: str) -> Path | None:
    """The first existing spelling of an MNIST file: stem, stem.gz, and the 'x.idx3-ubyte' variants."""
    dotted = stem.replace("-idx", ".idx")
    for spelling in (stem, stem + ".gz", dotted, dotted + ".gz"):
        if (directory / spelling).is_file():
            return directory / spelling
    return None


def read_mnist_split(images_path: Path, labels_path: Path, num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 1, 28, 28) uint8 and labels (n,) int64 from one IDX pair; shape, counts, range checked."""
    images = read_idx(images_path, IMAGE_MAGIC)
    labels = read_idx(labels_path, LABEL_MAGIC)
    if images.shape[1:] != MNIST_IMAGE_SHAPE:
        raise DataFileError(f"{images_path}: wrong shape: images are {images.shape[1:]}, expected {MNIST_IMAGE_SHAPE}")
    if len(images) != len(labels):
        raise DataFileError(f"{images_path}, {labels_path}: wrong count: {len(images)} images but {len(labels)} labels")
    if labels.size and labels.max() >= num_classes:
        raise DataFileError(f"{labels_path}: label {int(labels.max())} outside 0..{num_classes - 1}")
    return images[:, None, :, :], labels.astype(np.int64)


def probe_mnist_dir(place: Path) -> Path | None:
    """``place`` if it is a directory holding any MNIST-named file (then all four must be), else None."""
    if not place.is_dir():
        if place.is_file():
            raise DataFileError(f"{place}: expected {MNIST_EXPECTED}, got a file")
        return None
    found = {role: find_idx_file(place, stem) for role, stem in MNIST_FILES.items()}
    if not any(found.values()):
        return None
    missing = [MNIST_FILES[role] for role, file in found.items() if file is None]
    if missing:
        raise DataFileError(f"{place}: incomplete IDX dataset, missing {', '.join(missing)} (or .gz)")
    return place


def load_mnist_raw(name: str, path: str | os.PathLike | None, download: bool = True) -> RawData:
    """The full train / test splits of ``name`` ("mnist" or "fashion_mnist"), located by ``locate``."""
    urls = {f"{stem}.gz": [base + f"{stem}.gz" for base in MNIST_URLS[name]] for stem in MNIST_FILES.values()}
    directory = locate(name, path, probe_mnist_dir, urls, download, MNIST_EXPECTED, MNIST_SHA256[name])
    files = {role: find_idx_file(directory, stem) for role, stem in MNIST_FILES.items()}
    x_train, labels_train = read_mnist_split(files["train_images"], files["train_labels"])  # type: ignore[arg-type]
    x_test, labels_test = read_mnist_split(files["test_images"], files["test_labels"])  # type: ignore[arg-type]
    return RawData(x_train, labels_train, x_test, labels_test, 10, str(directory))
