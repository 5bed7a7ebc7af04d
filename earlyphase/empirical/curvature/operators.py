"""Small combinators on linear operators v -> A v (callables on flat vectors)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Operator = Callable[[torch.Tensor], torch.Tensor]


def weighted_sum(operators: Sequence[Operator], weights: Sequence[float]) -> Operator:
    """v -> sum_c w_c A_c v: e.g. the Hessian of a mean loss as the weighted sum over chunks of the batch."""
    if len(operators) != len(weights) or not operators:
        raise ValueError("weighted_sum needs as many weights as operators (at least one)")
    if len(operators) == 1 and weights[0] == 1.0:
        return operators[0]

    def matvec(vector: torch.Tensor) -> torch.Tensor:
        return sum(weight * op(vector) for op, weight in zip(operators, weights))  # type: ignore[return-value]

    return matvec


def in_dtype(operator: Operator, dtype: torch.dtype) -> Operator:
    """v -> A(v cast to ``dtype``) cast back to v's dtype (a float64 recurrence over a float32 operator)."""

    def matvec(vector: torch.Tensor) -> torch.Tensor:
        return operator(vector.to(dtype)).to(vector.dtype)

    return matvec
