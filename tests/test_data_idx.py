"""IDX (MNIST / Fashion-MNIST) files: parsing, every fault a file can have, search order, download."""

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from earlyphase.empirical.data import DataFileError, DatasetNotFoundError, idx, load_dataset, locate
from earlyphase.empirical.data.idx import read_idx

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No user environment, no system copies, a private cache."""
    for variable in ("EARLYPHASE_MNIST", "EARLYPHASE_FASHION_MNIST", "EARLYPHASE_CIFAR10", "EARLYPHASE_DATA"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(locate, "SYSTEM_DIRS", {})


def idx_bytes(array, type_byte=0x08):
    """The IDX encoding written out from the format description: 0, 0, type, ndim, sizes, values."""
    header = bytes([0, 0, type_byte, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(">u1" if type_byte == 0x08 else ">f4").tobytes()


def write_mnist(folder, n_train=30, n_test=12, gz=True, seed=0, overrides=None):
    """A small MNIST-format folder; returns the pixel and label arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        NAMES[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        NAMES[1]: rng.integers(0, 10, n_train).astype(np.uint8),
        NAMES[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        NAMES[3]: rng.integers(0, 10, n_test).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        payload = (overrides or {}).get(name, idx_bytes(array))
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(payload) if gz else payload)
    return arrays


def standardised(images):
    flat = images.reshape(len(images), -1).astype(np.float64)
    return ((flat - flat.mean(1, keepdims=True)) / flat.std(1, keepdims=True)).reshape(images.shape)


@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, gz):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "a.idx"
    path.write_bytes(gzip.compress(idx_bytes(array)) if gz else idx_bytes(array))
    np.testing.assert_array_equal(read_idx(path), array)
    floats = np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2)
    path.write_bytes(idx_bytes(floats, 0x0D))
    np.testing.assert_array_equal(read_idx(path), floats)


def test_mnist_through_load_dataset_matches_written_arrays(tmp_path):
    arrays = write_mnist(tmp_path / "m", gz=False)
    data = load_dataset("mnist", path=tmp_path / "m", n_train=20, n_measure=5, n_test=None)
    chosen = np.random.default_rng(0).permutation(30)[:20]
    assert data.x_train.shape == (20, 1, 28, 28) and data.x_test.shape == (12, 1, 28, 28)
    np.testing.assert_array_equal(data.labels_train, arrays[NAMES[1]][chosen])
    np.testing.assert_allclose(data.x_train[:, 0], standardised(arrays[NAMES[0]][chosen]), atol=1e-5)
    test_order = np.random.default_rng(0).permutation(12)
    np.testing.assert_array_equal(data.y_test.argmax(1), arrays[NAMES[3]][test_order])
    assert data.source == str(tmp_path / "m")


@pytest.mark.parametrize(
    ("name", "payload", "message"),
    [
        (
            NAMES[0],
            b"\x00\x00\x08\x01" + struct.pack(">I", 30) + bytes(30),
            r"wrong magic number 0x00000801, expected 0x00000803",
        ),
        (NAMES[0], b"PK\x03\x04" + bytes(100), r"wrong magic number 0x504b0304: not an IDX file"),
        (NAMES[0], b"\x00\x00", r"too short for an IDX header"),
        (NAMES[0], b"\x00\x00\x08\x03" + struct.pack(">2I", 30, 28), r"truncated header"),
        (
            NAMES[0],
            idx_bytes(np.zeros((30, 28, 28), np.uint8))[:-5],
            r"truncated: the header declares shape \(30, 28, 28\)",
        ),
        (NAMES[0], idx_bytes(np.zeros((30, 28, 28), np.uint8)) + b"\x00", r"extra bytes after the data"),
        (
            NAMES[0],
            idx_bytes(np.zeros((30, 27, 28), np.uint8)),
            r"wrong shape: images are \(27, 28\), expected \(28, 28\)",
        ),
        (NAMES[1], idx_bytes(np.zeros(29, np.uint8)), r"wrong count: 30 images but 29 labels"),
        (NAMES[3], idx_bytes(np.full(12, 10, np.uint8)), r"label 10 outside 0..9"),
    ],
)
def test_malformed_files_name_the_file_and_fault(tmp_path, name, payload, message):
    write_mnist(tmp_path / "m", gz=False, overrides={name: payload})
    with pytest.raises(DataFileError, match=message) as error:
        load_dataset("mnist", path=tmp_path / "m", n_measure=None)
    assert name in str(error.value)


def test_truncated_gzip_and_missing_file(tmp_path):
    write_mnist(tmp_path / "m")
    gz = tmp_path / "m" / (NAMES[2] + ".gz")
    gz.write_bytes(gz.read_bytes()[:40])
    with pytest.raises(DataFileError, match=rf"{NAMES[2]}\.gz: corrupt or truncated gzip stream"):
        load_dataset("mnist", path=tmp_path / "m", n_measure=None)
    gz.unlink()
    with pytest.raises(DataFileError, match=rf"incomplete IDX dataset, missing {NAMES[2]}"):
        load_dataset("mnist", path=tmp_path / "m", n_measure=None)


def test_search_order_environment_then_general_then_cache(tmp_path, monkeypatch):
    specific = write_mnist(tmp_path / "specific", seed=1)
    general = write_mnist(tmp_path / "general" / "fashion-mnist", seed=2)
    cached = write_mnist(tmp_path / "xdg" / "earlyphase" / "fashion_mnist", seed=3)

    def labels():
        return load_dataset("fashion_mnist", n_measure=None, download=False).labels_train

    order = np.random.default_rng(0).permutation(30)
    np.testing.assert_array_equal(labels(), cached[NAMES[1]][order])
    monkeypatch.setenv("EARLYPHASE_DATA", str(tmp_path / "general"))
    np.testing.assert_array_equal(labels(), general[NAMES[1]][order])
    monkeypatch.setenv("EARLYPHASE_FASHION_MNIST", str(tmp_path / "specific"))
    np.testing.assert_array_equal(labels(), specific[NAMES[1]][order])


def test_system_directory_comes_before_the_cache(tmp_path, monkeypatch):
    system = write_mnist(tmp_path / "debian", seed=4)
    write_mnist(tmp_path / "xdg" / "earlyphase" / "fashion_mnist", seed=5)
    monkeypatch.setattr(locate, "SYSTEM_DIRS", {"fashion_mnist": (tmp_path / "debian",)})
    data = load_dataset("fashion_mnist", n_measure=None, download=False)
    assert data.source == str(tmp_path / "debian")
    np.testing.assert_array_equal(data.labels_train, system[NAMES[1]][np.random.default_rng(0).permutation(30)])


def test_not_found_lists_every_place(tmp_path, monkeypatch):
    monkeypatch.setenv("EARLYPHASE_MNIST", str(tmp_path / "nowhere"))
    monkeypatch.setenv("EARLYPHASE_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetNotFoundError) as error:
        load_dataset("mnist", n_measure=None, download=False)
    message = str(error.value)
    for place in (
        tmp_path / "nowhere",
        tmp_path / "data" / "mnist",
        tmp_path / "xdg" / "earlyphase" / "mnist",
    ):
        assert str(place) in message
    assert "EARLYPHASE_MNIST" in message and isinstance(error.value, ValueError)
    with pytest.raises(DatasetNotFoundError, match=r"check the path"):
        load_dataset("mnist", path=tmp_path / "absent", n_measure=None)


def test_download_into_cache_and_clear_error_when_it_fails(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    arrays = write_mnist(mirror, seed=6)
    monkeypatch.setitem(idx.MNIST_URLS, "mnist", ("file:///nonexistent/", mirror.as_uri() + "/"))
    pinned = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in mirror.glob("*.gz")}  # this mirror's files
    monkeypatch.setitem(idx.MNIST_SHA256, "mnist", pinned)
    data = load_dataset("mnist", n_measure=None)  # first mirror fails, second serves the files
    cache = tmp_path / "xdg" / "earlyphase" / "mnist"
    assert data.source == str(cache) and (cache / (NAMES[0] + ".gz")).is_file()
    np.testing.assert_array_equal(data.labels_train, arrays[NAMES[1]][np.random.default_rng(0).permutation(30)])
    monkeypatch.setitem(idx.MNIST_URLS, "fashion_mnist", ("file:///nonexistent/",))
    with pytest.raises(DatasetNotFoundError, match=r"(?s)looked in:.*Downloading into .*fashion_mnist failed"):
        load_dataset("fashion_mnist", n_measure=None)


@pytest.mark.skipif(
    not DEBIAN_FASHION.is_dir() and not os.environ.get("CI"),
    reason="Debian's dataset-fashion-mnist is not installed (under CI, .ci/run installs it and this test fails without it)",
)
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.setattr(locate, "SYSTEM_DIRS", {"fashion_mnist": (DEBIAN_FASHION,)})
    data = load_dataset("fashion_mnist", n_train=2000, n_test=500, n_measure=256, seed=1, download=False)
    assert data.source == str(DEBIAN_FASHION)
    assert data.x_train.shape == (2000, 1, 28, 28) and data.x_test.shape == (500, 1, 28, 28)
    with gzip.open(DEBIAN_FASHION / "train-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(DEBIAN_FASHION / "train-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    assert len(images) == 60000 and np.all(np.bincount(labels) == 6000)
    chosen = np.random.default_rng(0).permutation(60000)[:2000]
    np.testing.assert_array_equal(data.labels_train, labels[chosen])
    np.testing.assert_allclose(data.x_train[:, 0], standardised(images[chosen]), atol=1e-5)
    assert len(np.unique(data.labels_train)) == 10 and len(data.measure_index) == 256
