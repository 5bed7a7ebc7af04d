"""Decoded arrays of an archive cached as .npy files, keyed by the archive's path, size and mtime.

Layout: cache_root()/decoded/<kind>-<sha1(absolute path|size|mtime_ns)[:16]>/ holding
x_train.npy, labels_train.npy, x_test.npy, labels_test.npy (raw pixel values, uint8) and
meta.json. A changed or moved archive gets a new key; delete the folder to drop the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from earlyphase.empirical.data.dataset import RawData
from earlyphase.empirical.data.locate import cache_root

ARRAYS = ("x_train", "labels_train", "x_test", "labels_test")


def archive_cache_dir(kind: str, archive: Path) -> Path:
    """cache_root()/decoded/<kind>-<key>, key = sha1(f"{absolute path}|{size}|{mtime_ns}")[:16]."""
    stat = archive.stat()
    key = hashlib.sha1(f"{archive.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_root() / "decoded" / f"{kind}-{key}"


def load_cached(kind: str, archive: Path) -> RawData | None:
    """The cached full RawData of ``archive`` (arrays memory-mapped), or None if not cached."""
    folder = archive_cache_dir(kind, archive)
    if not (folder / "meta.json").is_file():
        return None
    meta = json.loads((folder / "meta.json").read_text())
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") if meta["has_" + name] else None for name in ARRAYS}
    return RawData(**arrays, num_classes=meta["num_classes"], source=f"{archive} (decoded cache {folder})")  # type: ignore[arg-type]


def store_cached(kind: str, archive: Path, raw: RawData) -> None:
    """Write ``raw`` (the full decoded archive) to its cache folder atomically; warn (not fail) on OSError."""
    folder = archive_cache_dir(kind, archive)
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + ".tmp"))
        meta = {"archive": str(archive.resolve()), "num_classes": raw.num_classes}
        for name in ARRAYS:
            array = getattr(raw, name)
            meta["has_" + name] = array is not None
            if array is not None:
                np.save(staging / f"{name}.npy", np.ascontiguousarray(array))
        (staging / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.rename(staging, folder)
        except OSError:  # another process cached it first
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as error:
        warnings.warn(f"could not cache decoded {archive} in {folder}: {error}", stacklevel=2)
