"""Library versions and platform facts recorded with every result."""

from __future__ import annotations

import importlib.metadata
import platform
import sys

_TRACKED = ("earlyphase", "numpy", "scipy", "sympy", "jax", "jaxlib", "torch", "pandas", "pyarrow")


def library_versions() -> dict[str, str]:
    """Versions of Python, the platform and every tracked library that is installed."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _TRACKED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions
