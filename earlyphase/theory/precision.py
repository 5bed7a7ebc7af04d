"""JAX in float64, switched on only around the theory calls that need it.

``jax.enable_x64`` is a thread-local context: wrapping the public entry points (rather than
setting the global flag at import) leaves any other JAX user in the process untouched, and
every worker thread of ``predict_grid`` enters it for its own calls.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import jax

P = ParamSpec("P")
R = TypeVar("R")


def float64(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` with 64-bit JAX types (``jax.enable_x64(True)`` for the call)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with jax.enable_x64(True):
            return function(*args, **kwargs)

    return wrapper
