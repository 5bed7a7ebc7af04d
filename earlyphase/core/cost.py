"""The work a computation did, in the units that dominate its time on any device.

A predictor or a measurement reports its ``Cost`` so that it can be set against the cost of
measuring the same critical value with a sweep: Hessian-vector products (about 2-4 gradients
each), gradients (one forward and one backward pass), plain forward passes, and wall seconds.
Counts refer to the batch they ran on (the measurement batch unless the caller says otherwise).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Cost:
    """Work done: ``hvps`` Hessian-vector products, ``gradients``, ``forwards`` and ``seconds`` of wall time."""

    hvps: int = 0
    gradients: int = 0
    forwards: int = 0
    seconds: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.hvps + other.hvps,
            self.gradients + other.gradients,
            self.forwards + other.forwards,
            self.seconds + other.seconds,
        )

    def as_dict(self) -> dict[str, float]:
        return asdict(self)
