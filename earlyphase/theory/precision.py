"""JAX settings of the theory code: float64 around the calls that need it, and the compiler
options of its jitted programs, for every jax from 0.4.35 (the version the ``ntk`` extra pins).

``float64`` wraps the public entry points in a thread-local 64-bit context (``jax.enable_x64``,
``jax.experimental.enable_x64`` before jax had it at the top level) rather than setting the
global flag at import: any other JAX user in the process stays untouched, and every worker
thread of ``predict_grid`` enters it for its own calls.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, ParamSpec, TypeVar

import jax

P = ParamSpec("P")
R = TypeVar("R")

NO_YNN_FUSION = {"xla_cpu_experimental_ynn_fusion_type": ""}
"""No YNNPACK fusions: recent XLA:CPU fuses the thin low-rank products of the deep linear
network into its big GEMMs, and the fused kernels run 2-3x slower than a plain GEMM plus a loop
fusion (measured on the HVP). Older XLA has neither the fusions nor the option."""


def x64() -> AbstractContextManager[Any]:
    """A context in which JAX creates 64-bit arrays by default."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # type: ignore[attr-defined]  # jax < 0.5

    return enable_x64(True)


def float64(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` with 64-bit JAX types (inside ``x64()`` for the call)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with x64():
            return function(*args, **kwargs)

    return wrapper


@functools.cache
def jit_options() -> dict[str, Any]:
    """Keyword arguments for ``jax.jit`` of the theory's programs: ``compiler_options=NO_YNN_FUSION``
    where this jax takes compiler options and its XLA knows the option, else none."""
    if "compiler_options" not in inspect.signature(jax.jit).parameters:
        return {}
    try:
        jax.jit(lambda x: x).lower(0.0).compile(compiler_options=NO_YNN_FUSION)  # type: ignore[arg-type]
    except Exception:  # the runtime error's class differs between jax versions
        return {}
    return {"compiler_options": NO_YNN_FUSION}
