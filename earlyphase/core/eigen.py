"""The answer of a top-eigenpair solve, shared by the Lanczos solvers of theory (JAX) and experiment (torch).

For a symmetric operator H a solve returns its largest algebraic eigenvalue lambda, a unit
vector v, the relative residual ||H v - lambda v|| / |lambda| (docs/PROTOCOL.md section 1: the
sharpness and its accuracy), the operator applications used, and whether the residual met the
solve's tolerance. The fields are arrays of either library (``TopEigenpair[torch.Tensor]``,
``TopEigenpair[jax.Array]``); a NamedTuple is a JAX pytree, so a jitted or vmapped solve returns
it whole. A batched solve has a leading member axis on every field.
"""

from __future__ import annotations

from typing import Any, Generic, NamedTuple, Protocol, Self, TypeVar


class Indexable(Protocol):
    """An array of either library: indexing its leading axis gives an array of the same kind."""

    def __getitem__(self, index: Any, /) -> Self: ...


Array = TypeVar("Array", bound=Indexable)


class TopEigenpair(NamedTuple, Generic[Array]):
    """lambda_max, v, ||H v - lambda v|| / |lambda| <= tol (``converged``) and the products used.

    Shapes: value, residual, matvecs, converged (...,); vector (..., n) of unit norm.
    """

    value: Array
    vector: Array
    residual: Array
    matvecs: Array
    converged: Array

    def member(self, index: int) -> TopEigenpair[Array]:
        """The result of member ``index`` of a batched solve (leading axis)."""
        return TopEigenpair(
            self.value[index],
            self.vector[index],
            self.residual[index],
            self.matvecs[index],
            self.converged[index],
        )
