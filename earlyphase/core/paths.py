"""Output locations checked before any compute: a bad ``--out`` must fail in a second, not after an hour.

``check_output_dir`` and ``check_output_file`` raise ConfigError naming the parameter when the
location cannot be written: a path component that is a regular file, an existing path of the
wrong kind, or a directory where creating a file fails (read-only, no permission, a virtual
filesystem). Writability is probed by creating and removing a temporary file in the nearest
existing directory, which also holds for root (``os.access`` answers "yes" to root everywhere).
``check_record_name`` confines a record name to its output directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from earlyphase.core.validate import ConfigError


def check_output_dir(path: str | os.PathLike, parameter: str) -> Path:
    """``path`` as a Path if it is, or can be created as, a writable directory; else ConfigError naming ``parameter``."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{parameter} {path}: exists and is not a directory", parameter.lstrip("-"))
    _check_writable_ancestor(path, parameter)
    return path


def check_output_file(path: str | os.PathLike, parameter: str) -> Path:
    """``path`` as a Path if a file can be written there (its directory created if needed); else ConfigError."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"{parameter} {path}: is a directory, expected a file name", parameter.lstrip("-"))
    if path.exists() and not path.is_file():
        raise ConfigError(f"{parameter} {path}: exists and is not a regular file", parameter.lstrip("-"))
    if path.parent.exists() and not path.parent.is_dir():
        raise ConfigError(f"{parameter} {path}: {path.parent} is not a directory", parameter.lstrip("-"))
    _check_writable_ancestor(path.parent, parameter)
    return path


def check_record_name(name: str, parameter: str) -> str:
    """``name`` if it is a plain file stem (no path separator, not '.', '..', empty or absolute); else ConfigError."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or os.sep in name or "\x00" in name:
        raise ConfigError(
            f"{parameter} must be a plain record name without path separators, got {name!r}", parameter.lstrip("-")
        )
    return name


def _check_writable_ancestor(directory: Path, parameter: str) -> None:
    """The nearest existing ancestor of ``directory`` (itself included) must be a directory we can write in."""
    existing = directory
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{parameter} {directory}: {existing} is a file, not a directory", parameter.lstrip("-"))
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=".earlyphase-write-probe-")
    except OSError as error:
        raise ConfigError(
            f"{parameter} {directory}: cannot write in {existing} ({error.strerror or error})", parameter.lstrip("-")
        ) from None
    os.close(handle)
    os.unlink(probe)
