"""Library versions and platform facts recorded with every result."""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import sys

_TRACKED = ("earlyphase", "numpy", "scipy", "sympy", "jax", "jaxlib", "torch", "pandas", "pyarrow")


def library_versions() -> dict[str, str]:
    """Versions of Python, the platform and every tracked library that is installed (a fresh dict)."""
    return dict(_versions())


@functools.cache
def _versions() -> tuple[tuple[str, str], ...]:
    # looked up once per process: reading package metadata costs ~15 ms, and every record asks
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _TRACKED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return tuple(versions.items())
