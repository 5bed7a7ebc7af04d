"""CIFAR-10: official python batches (restricted unpickler), the official archive, image folders and tars."""

import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from earlyphase.empirical.data import DataFileError, DatasetNotFoundError, cifar, load_dataset, locate
from earlyphase.empirical.data.cifar import ArrayOnlyUnpickler, load_cifar10_raw, read_batches

REAL_ARCHIVE = Path("/work/shared/data/cifar10-jpeg.tar.gz")
BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No user environment, a private cache."""
    for variable in ("EARLYPHASE_MNIST", "EARLYPHASE_FASHION_MNIST", "EARLYPHASE_CIFAR10", "EARLYPHASE_DATA"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def batch_pickle(data, labels, protocol=2):
    """A batch as the official files hold it: a dict with bytes keys, uint8 rows of 3072 values."""
    batch = {
        b"batch_label": b"training batch",
        b"labels": list(labels),
        b"data": data,
        b"filenames": [b"x.png"] * len(labels),
    }
    return pickle.dumps(batch, protocol=protocol)


def write_batches(folder, per_batch=4, protocol=2, seed=0, overrides=None):
    """Six small batches; returns {name: (rows uint8 (n, 3072), labels)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in BATCHES:
        rows = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        written[name] = (rows, np.array(labels))
        (folder / name).write_bytes((overrides or {}).get(name, batch_pickle(rows, labels, protocol)))
    return written


def image_of_row(row):
    """Pixel (c, i, j) of a CIFAR row is row[1024 c + 32 i + j] (the documented layout)."""
    return np.array([[[row[1024 * c + 32 * i + j] for j in range(32)] for i in range(32)] for c in range(3)])


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_batches_read_exactly(tmp_path, protocol):
    written = write_batches(tmp_path / "b", protocol=protocol)
    raw = read_batches({name: (tmp_path / "b" / name).read_bytes() for name in BATCHES}, "b")
    assert raw.x_train.shape == (20, 3, 32, 32) and raw.x_test.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(raw.x_train[5], image_of_row(written["data_batch_2"][0][1]))
    np.testing.assert_array_equal(raw.labels_train, np.concatenate([written[n][1] for n in BATCHES[:5]]))
    np.testing.assert_array_equal(raw.x_test[3], image_of_row(written["test_batch"][0][3]))


def test_python2_module_name_of_numpy_is_accepted(tmp_path):
    rows = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072) % 251
    blob = batch_pickle(rows, [1, 2]).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in blob
    loaded = ArrayOnlyUnpickler(io.BytesIO(blob), encoding="bytes").load()
    np.testing.assert_array_equal(loaded[b"data"], rows)


class Hostile:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def test_hostile_pickle_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "owned"
    hostile = pickle.dumps({b"data": Hostile(f"touch {marker}"), b"labels": [0]}, protocol=2)
    write_batches(tmp_path / "b", overrides={"data_batch_3": hostile})
    with pytest.raises(DataFileError, match=r"data_batch_3: refused to load global (posix|os|nt)\.system"):
        load_dataset("cifar10", path=tmp_path / "b", n_measure=None)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError, match=r"builtins\.eval"):
        ArrayOnlyUnpickler(io.BytesIO(b"cbuiltins\neval\n(S'1'\ntR."), encoding="bytes").load()
    with pytest.raises(pickle.UnpicklingError, match=r"encoding b?'rot13' is not allowed"):
        ArrayOnlyUnpickler(io.BytesIO(b"c_codecs\nencode\n(S'abc'\nS'rot13'\ntR."), encoding="bytes").load()


def _truncated():
    return batch_pickle(np.zeros((4, 3072), np.uint8), [0] * 4)[:-100]


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (_truncated(), r"data_batch_2: not a readable CIFAR-10 batch"),
        (batch_pickle(np.zeros((4, 3071), np.uint8), [0] * 4), r"wrong shape: 'data' is uint8 \(4, 3071\)"),
        (batch_pickle(np.zeros((4, 3072), np.float32), [0] * 4), r"wrong dtype: 'data' is float32"),
        (batch_pickle(np.zeros((4, 3072), np.uint8), [0] * 3), r"wrong count: 4 images but 3 labels"),
        (batch_pickle(np.zeros((4, 3072), np.uint8), [0, 1, 2, 10]), r"labels outside 0..9"),
        (pickle.dumps([1, 2], protocol=2), r"a CIFAR-10 batch is a dict, got list"),
        (
            pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}, protocol=2),
            r"missing key\(s\) \['labels'\]",
        ),
    ],
)
def test_malformed_batch_names_the_file_and_fault(tmp_path, blob, message):
    write_batches(tmp_path / "b", overrides={"data_batch_2": blob})
    with pytest.raises(DataFileError, match=message):
        load_dataset("cifar10", path=tmp_path / "b", n_measure=None)


def test_missing_batch(tmp_path):
    write_batches(tmp_path / "b")
    (tmp_path / "b" / "test_batch").unlink()
    with pytest.raises(DataFileError, match=r"incomplete CIFAR-10 python batches, missing test_batch"):
        load_dataset("cifar10", path=tmp_path / "b", n_measure=None)


def official_archive(folder, path):
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    return path


def test_official_archive_environment_variable_and_cache(tmp_path, monkeypatch):
    write_batches(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "readme.html").write_text("<html/>")
    from_folder = load_dataset("cifar10", path=tmp_path, n_measure=5, n_test=3)
    assert from_folder.source == str(tmp_path / "cifar-10-batches-py")
    archive = official_archive(tmp_path / "cifar-10-batches-py", tmp_path / "official.tar.gz")
    monkeypatch.setenv("EARLYPHASE_CIFAR10", str(archive))
    first = load_dataset("cifar10", n_measure=5, n_test=3)
    second = load_dataset("cifar10", n_measure=5, n_test=3)
    assert first.source == str(archive) and "decoded cache" in second.source
    for loaded in (first, second):
        np.testing.assert_array_equal(loaded.x_train, from_folder.x_train)
        np.testing.assert_array_equal(loaded.y_test, from_folder.y_test)
    os.utime(archive, ns=(1, 1))  # a changed archive is a new cache key
    assert load_dataset("cifar10", n_measure=5, cache=False).source == str(archive)
    assert load_dataset("cifar10", n_measure=5).source == str(archive)


def test_download_of_official_archive_into_cache(tmp_path, monkeypatch):
    write_batches(tmp_path / "src")
    archive = official_archive(tmp_path / "src", tmp_path / "served.tar.gz")
    monkeypatch.setattr(cifar, "CIFAR_URLS", {"cifar-10-python.tar.gz": (archive.as_uri(),)})
    monkeypatch.setattr(
        cifar, "CIFAR_SHA256", {"cifar-10-python.tar.gz": hashlib.sha256(archive.read_bytes()).hexdigest()}
    )
    data = load_dataset("cifar10", n_measure=None, cache=False)
    assert data.source == str(tmp_path / "xdg" / "earlyphase" / "cifar10" / "cifar-10-python.tar.gz")
    monkeypatch.setattr(cifar, "CIFAR_URLS", {"cifar-10-python.tar.gz": ("file:///nonexistent.tar.gz",)})
    monkeypatch.setattr(locate, "cache_root", lambda: tmp_path / "empty-cache")
    with pytest.raises(DatasetNotFoundError, match=r"(?s)dataset 'cifar10' not found; looked in:.*empty-cache"):
        load_dataset("cifar10", n_measure=None)


def write_tree(root, per_class=3, test_per_class=1, seed=0, classes=CLASSES, size=(32, 32)):
    """PNG (lossless) folder train/<class>/<i>.png, test/<class>/<i>.png; returns path -> pixels (C, H, W)."""
    rng = np.random.default_rng(seed)
    pixels = {}
    for split, count in (("train", per_class), ("test", test_per_class)):
        for name in classes:
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                relative = f"{split}/{name}/{i:04d}.png"
                Image.fromarray(image).save(root / relative)
                pixels[relative] = image.transpose(2, 0, 1)
    return pixels


def expected_split(pixels, split, n=None):
    """Oracle: sorted paths of the split, in the documented permutation, labels = sorted class index."""
    paths = sorted(p for p in pixels if p.startswith(split + "/"))
    order = np.random.default_rng(0).permutation(len(paths))[: n or len(paths)]
    chosen = [paths[i] for i in order]
    return np.stack([pixels[p] for p in chosen]), np.array([CLASSES.index(p.split("/")[1]) for p in chosen])


def tar_of(root, path, prefix="cifar10"):
    with tarfile.open(path, "w:gz") as tar:
        tar.add(root, arcname=prefix)
    return path


def test_image_tree_and_its_tar_give_the_same_exact_arrays(tmp_path):
    pixels = write_tree(tmp_path / "tree")
    archive = tar_of(tmp_path / "tree", tmp_path / "cifar-images.tar.gz")
    for n_train in (None, 7):
        x, labels = expected_split(pixels, "train", n_train)
        x_test, labels_test = expected_split(pixels, "test")
        for source in (tmp_path / "tree", archive, tmp_path):  # tmp_path: found as cifar*.tar.gz in a folder
            raw = load_cifar10_raw(source, n_train, None, 0, download=False, cache=False)
            np.testing.assert_array_equal(raw.x_train, x)
            np.testing.assert_array_equal(raw.labels_train, labels)
            np.testing.assert_array_equal(raw.x_test, x_test)
            np.testing.assert_array_equal(raw.labels_test, labels_test)
    full = load_dataset("cifar10", path=archive, n_train=None, n_test=4, n_measure=10)
    cached = load_dataset("cifar10", path=archive, n_train=None, n_test=4, n_measure=10)
    assert "decoded cache" in cached.source and full.x_train.shape == (30, 3, 32, 32)
    np.testing.assert_array_equal(full.x_train, cached.x_train)
    np.testing.assert_array_equal(full.y_test, cached.y_test)
    subset = load_dataset("cifar10", path=archive, n_train=12, n_test=4, n_measure=10, cache=False)
    np.testing.assert_array_equal(subset.x_train, cached.x_train[:12])  # subsets are prefixes of the full order
    assert len(set(subset.labels_train)) > 3  # not the first 12 of a class-sorted folder


def test_a_subset_decodes_only_its_images(tmp_path):
    pixels = write_tree(tmp_path / "tree")
    paths = sorted(p for p in pixels if p.startswith("train/"))
    unused = paths[np.random.default_rng(0).permutation(len(paths))[-1]]
    (tmp_path / "tree" / unused).write_bytes(b"not an image")
    assert load_dataset("cifar10", path=tmp_path / "tree", n_train=20, n_measure=5).x_train.shape == (
        20,
        3,
        32,
        32,
    )
    with pytest.raises(DataFileError, match=rf"{unused}: not a readable image"):
        load_dataset("cifar10", path=tmp_path / "tree", n_measure=5)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda root: write_tree(root, classes=CLASSES[:9]),
            r"wrong number of classes: found 9 class folders",
        ),
        (
            lambda root: write_tree(root, size=(31, 32)),
            r"wrong shape: image is \(31, 32\), expected \(32, 32\)",
        ),
        (
            lambda root: (write_tree(root), Image.new("RGB", (32, 32)).save(root / "loose.png")),
            r"'loose.png' is not inside a class folder",
        ),
        (
            lambda root: (
                write_tree(root),
                (root / "cat").mkdir(),
                Image.new("RGB", (32, 32)).save(root / "cat" / "c.png"),
            ),
            r"mixed layout: 'cat/c.png' is outside the train/ and test/ folders",
        ),
        (
            lambda root: (
                write_tree(root),
                (root / "test" / "unicorn").mkdir(),
                Image.new("RGB", (32, 32)).save(root / "test" / "unicorn" / "u.png"),
            ),
            r"test classes \['unicorn'\] have no training folder",
        ),
    ],
)
def test_malformed_image_folders(tmp_path, make, message):
    make(tmp_path / "tree")
    with pytest.raises(DataFileError, match=message):
        load_dataset("cifar10", path=tmp_path / "tree", n_measure=None)


def test_truncated_or_foreign_archive(tmp_path):
    write_tree(tmp_path / "tree", per_class=1)
    archive = tar_of(tmp_path / "tree", tmp_path / "cifar.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataFileError, match=r"cifar\.tar\.gz: corrupt or truncated tar archive"):
        load_dataset("cifar10", path=archive, n_measure=None)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataFileError, match=r"notes\.txt: not a tar archive"):
        load_dataset("cifar10", path=tmp_path / "notes.txt", n_measure=None)


@pytest.mark.skipif(not REAL_ARCHIVE.is_file(), reason="the shared CIFAR-10 JPEG archive is not present")
def test_real_cifar10_jpeg_archive_subset():
    data = load_dataset("cifar10", path=REAL_ARCHIVE, n_train=300, n_test=100, n_measure=64, cache=False)
    assert data.x_train.shape == (300, 3, 32, 32) and data.x_test.shape == (100, 3, 32, 32)
    with tarfile.open(REAL_ARCHIVE) as tar:
        names = sorted(m.name for m in tar if m.isfile() and m.name.startswith("train/"))
        assert len(names) == 50000
        chosen = [names[i] for i in np.random.default_rng(0).permutation(50000)[:300]]
        np.testing.assert_array_equal(data.labels_train, [CLASSES.index(n.split("/")[1]) for n in chosen])
        first = np.asarray(Image.open(tar.extractfile(chosen[0])).convert("RGB"), dtype=np.float64).transpose(2, 0, 1)
    np.testing.assert_allclose(data.x_train[0], (first - first.mean()) / first.std(), atol=1e-5)
    assert len(np.unique(data.labels_train)) == 10


@pytest.mark.slow
@pytest.mark.skipif(not REAL_ARCHIVE.is_file(), reason="the shared CIFAR-10 JPEG archive is not present")
def test_real_cifar10_jpeg_archive_full_read_and_cache():
    first = load_dataset("cifar10", path=REAL_ARCHIVE, n_measure=4096)
    assert first.x_train.shape == (50000, 3, 32, 32) and first.x_test.shape == (10000, 3, 32, 32)
    assert np.all(np.bincount(first.labels_train) == 5000) and np.all(np.bincount(first.y_test.argmax(1)) == 1000)
    second = load_dataset("cifar10", path=REAL_ARCHIVE, n_train=1000, n_measure=100)
    assert "decoded cache" in second.source
    np.testing.assert_array_equal(second.x_train, first.x_train[:1000])
