"""Image-folder datasets: a directory tree or a tar archive of one; class = parent folder name.

Layout: <root>/train/<class>/<image> and <root>/test/<class>/<image> (any prefix above the
split folder), or <root>/<class>/<image> with no split (then everything is training data).
Class labels are the indices of the sorted training class names. Images are listed in sorted
path order, so a tree and its tar archive give identical arrays, and only the images of the
requested rows are decoded.
"""

from __future__ import annotations

import io
import os
import tarfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from earlyphase.empirical.data.dataset import RawData
from earlyphase.empirical.data.errors import DataFileError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".webp", ".tif", ".tiff"})
SPLITS = ("train", "test")


def is_image_path(path: str) -> bool:
    """True for an image file name that is not hidden (macOS '._x.jpg', '__MACOSX/')."""
    parts = PurePosixPath(path).parts
    return (
        PurePosixPath(path).suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") and part not in (".", "..") for part in parts)
        and "__MACOSX" not in parts
    )


@dataclass(frozen=True)
class ImageFolderIndex:
    """The sorted image paths of each split with their integer labels, and the sorted class names."""

    classes: tuple[str, ...]
    train_paths: tuple[str, ...]
    train_labels: np.ndarray
    test_paths: tuple[str, ...]
    test_labels: np.ndarray


def index_image_paths(paths: Sequence[str], where: str) -> ImageFolderIndex:
    """Split (parent of the class folder named train/test, else none) and class of every image path."""
    by_split: dict[str | None, list[tuple[str, str]]] = {None: [], "train": [], "test": []}
    for path in sorted(paths):
        parts = PurePosixPath(path).parts
        if len(parts) < 2:
            raise DataFileError(f"{where}: image {path!r} is not inside a class folder")
        split = parts[-3] if len(parts) >= 3 and parts[-3] in SPLITS else None
        by_split[split].append((path, parts[-2]))
    if by_split[None] and (by_split["train"] or by_split["test"]):
        raise DataFileError(f"{where}: mixed layout: {by_split[None][0][0]!r} is outside the train/ and test/ folders")
    train = by_split["train"] or by_split[None]
    if not train:
        raise DataFileError(f"{where}: no training images (expected train/<class>/<image> or <class>/<image>)")
    classes = tuple(sorted({name for _, name in train}))
    unknown = sorted({name for _, name in by_split["test"]} - set(classes))
    if unknown:
        raise DataFileError(f"{where}: test classes {unknown} have no training folder (classes: {list(classes)})")
    label = {name: i for i, name in enumerate(classes)}

    def labels(items: list[tuple[str, str]]) -> np.ndarray:
        return np.array([label[name] for _, name in items], dtype=np.int64)

    return ImageFolderIndex(
        classes,
        tuple(path for path, _ in train),
        labels(train),
        tuple(path for path, _ in by_split["test"]),
        labels(by_split["test"]),
    )


def decode_images(
    paths: Sequence[str], read: Callable[[str], bytes], where: str, mode: str, size: tuple[int, int]
) -> np.ndarray:
    """uint8 (n, C, H, W) of the images ``paths`` in ``mode`` ('RGB' or 'L'), each of ``size`` = (W, H)."""
    channels = len(mode)
    out = np.empty((len(paths), channels, size[1], size[0]), dtype=np.uint8)
    for i, path in enumerate(paths):
        try:
            with Image.open(io.BytesIO(read(path))) as image:
                if image.size != size:
                    raise DataFileError(f"{where}: {path}: wrong shape: image is {image.size}, expected {size} (W, H)")
                pixels = np.asarray(image.convert(mode))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
            if isinstance(error, DataFileError):
                raise
            raise DataFileError(f"{where}: {path}: not a readable image ({error})") from error
        out[i] = pixels.reshape(size[1], size[0], channels).transpose(2, 0, 1)
    return out


def read_tar_members(archive: Path, keep: Callable[[str], bool]) -> dict[str, bytes]:
    """One pass over ``archive`` (any tarfile compression): name -> bytes of the files ``keep`` accepts."""
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if member.isfile() and keep(name):
                    handle = tar.extractfile(member)
                    members[name] = handle.read() if handle is not None else b""
    except (tarfile.TarError, EOFError, OSError, zlib.error) as error:
        raise DataFileError(f"{archive}: corrupt or truncated tar archive ({error})") from error
    return members


def iter_tree_images(root: Path) -> Iterator[str]:
    """Relative POSIX paths of the image files under ``root`` (lazily, so a first hit is cheap)."""
    for folder, _, files in os.walk(root):
        relative = Path(folder).relative_to(root)
        yield from (path for path in ((relative / name).as_posix() for name in files) if is_image_path(path))


def decode_image_folder(
    index: ImageFolderIndex,
    read: Callable[[str], bytes],
    where: str,
    mode: str,
    size: tuple[int, int],
    train_rows: np.ndarray | None = None,
    test_rows: np.ndarray | None = None,
) -> RawData:
    """Decode the training images ``train_rows`` and test images ``test_rows`` (None = all, sorted order).

    Only those images are read and decoded, so a small subset of a large folder is fast.
    """
    train = np.arange(len(index.train_paths)) if train_rows is None else train_rows
    x_train = decode_images([index.train_paths[i] for i in train], read, where, mode, size)
    x_test = labels_test = None
    if index.test_paths:
        test = np.arange(len(index.test_paths)) if test_rows is None else test_rows
        x_test = decode_images([index.test_paths[i] for i in test], read, where, mode, size)
        labels_test = index.test_labels[test]
    return RawData(x_train, index.train_labels[train], x_test, labels_test, len(index.classes), where)
