"""Timing helpers shared by the benchmark scripts (run as ``python benchmarks/bench_*.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TypeVar

Result = TypeVar("Result")


def best_of(function: Callable[[], object], repeats: int = 3) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``function``, after one warm-up call."""
    function()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def best_of_each(functions: Mapping[str, Callable[[], Result]], rounds: int = 3) -> dict[str, tuple[float, Result]]:
    """Per name, (seconds of its fastest call, what its last call returned) over ``rounds`` rounds
    that call every function once in turn, so that a shared machine's load falls on all alike."""
    seconds = dict.fromkeys(functions, float("inf"))
    results: dict[str, Result] = {}
    for _ in range(rounds):
        for name, function in functions.items():
            started = time.perf_counter()
            results[name] = function()
            seconds[name] = min(seconds[name], time.perf_counter() - started)
    return {name: (seconds[name], results[name]) for name in functions}
