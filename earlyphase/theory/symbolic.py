"""Symbolic derivations for the uv model (docs/PROTOCOL.md section 5), with sympy.

Each function derives its result from the model's definition rather than restating it:

- ``derive_uv_map``: the gradient of f = u^T v / sqrt(w) by sympy's matrix calculus, one GD
  step u' = u - eta g df/du, v' = v - eta g df/dv (g = f - y), and the invariants of the new
  vectors expanded bilinearly in the Gram entries |u|^2, |v|^2, u.v, then rewritten in
  f = u.v / sqrt(w), lambda = (|u|^2 + |v|^2)/w, Delta = |u|^2 - |v|^2:
  the closed (f, lambda) map and the (|u|^2 - |v|^2) law.
- ``uv_thresholds_y0``: for y = 0 and w -> infinity, the loss-catapult threshold (the linear
  factor f'/f -> 1 - c leaves the unit disk: c = 2) and the divergence threshold (the sign of
  lambda' - lambda during the catapult, proportional to (eta lambda - 4): c = 4), c = eta lambda.
- ``first_step_sharpness_change``: lambda' - lambda to first order in eta, -4 eta f g / w,
  whose sign is that of -f (f - y).
"""

from __future__ import annotations

from typing import NamedTuple

import sympy as sp

f, lam, delta, eta, y = sp.symbols("f lambda Delta eta y", real=True)
w = sp.Symbol("w", positive=True)
c = sp.Symbol("c", positive=True)
"""The symbols every result is written in (c = eta * lambda)."""

_n = sp.Symbol("n", integer=True, positive=True)
_u, _v = sp.MatrixSymbol("u", _n, 1), sp.MatrixSymbol("v", _n, 1)
_uu, _vv, _uv = sp.symbols("uu vv uv", real=True)
_GRAM = {(_u, _u): _uu, (_v, _v): _vv, (_u, _v): _uv, (_v, _u): _uv}


class UVMap(NamedTuple):
    """(f', lambda', Delta') after one GD step, in terms of (f, lambda, Delta, eta, y, w)."""

    f_next: sp.Expr
    lam_next: sp.Expr
    delta_next: sp.Expr


def _coefficients(vector: sp.MatrixExpr) -> dict[sp.MatrixSymbol, sp.Expr]:
    """{u: a, v: b} for a vector expression a u + b v."""
    coefficients: dict[sp.MatrixSymbol, sp.Expr] = {_u: sp.S.Zero, _v: sp.S.Zero}
    terms = vector.args if isinstance(vector, sp.MatAdd) else (vector,)
    for term in terms:
        factors = term.args if isinstance(term, sp.MatMul) else (term,)
        matrices = [a for a in factors if isinstance(a, sp.MatrixExpr)]
        if len(matrices) != 1 or matrices[0] not in coefficients:
            raise ValueError(f"not a linear combination of u and v: {vector}")
        coefficients[matrices[0]] += sp.Mul(*[a for a in factors if not isinstance(a, sp.MatrixExpr)])
    return coefficients


def _inner(a: sp.MatrixExpr, b: sp.MatrixExpr) -> sp.Expr:
    """a^T b expanded bilinearly in the Gram entries uu, vv, uv."""
    ca, cb = _coefficients(a), _coefficients(b)
    return sp.expand(sum(ca[p] * cb[q] * _GRAM[(p, q)] for p in ca for q in cb))


def derive_uv_map() -> UVMap:
    """The closed map of one GD step of L = (f - y)^2 / 2 on the uv model (module docstring)."""
    output = (_u.T * _v) / sp.sqrt(w)
    g = f - y
    u_next = sp.MatAdd(_u, -eta * g * sp.diff(output, _u)).doit()
    v_next = sp.MatAdd(_v, -eta * g * sp.diff(output, _v)).doit()
    invariants = {_uu: (w * lam + delta) / 2, _vv: (w * lam - delta) / 2, _uv: sp.sqrt(w) * f}
    rewrite = lambda expr: sp.simplify(sp.expand(expr.subs(invariants)))  # noqa: E731
    return UVMap(
        f_next=rewrite(_inner(u_next, v_next) / sp.sqrt(w)),
        lam_next=rewrite((_inner(u_next, u_next) + _inner(v_next, v_next)) / w),
        delta_next=rewrite(_inner(u_next, u_next) - _inner(v_next, v_next)),
    )


def uv_thresholds_y0() -> dict[str, sp.Expr]:
    """c_loss = 2 and c_max = 4 for y = 0 as w -> infinity, from the derived map.

    c_loss: the growth factor of f at fixed lambda, lim_{w->inf} f'/f = 1 - c; the loss rises
    once (1 - c)^2 > 1: the positive root of (1 - c)^2 = 1.
    c_max: the catapult drives f^2 to O(w), where lambda' - lambda = (eta f^2 / w) * h(c); it
    shrinks lambda (and lets the run come back) while h < 0 and grows it without bound once
    h > 0: the root of h(c) = 0.
    """
    step = derive_uv_map()
    at_zero = {y: 0}
    factor = sp.limit(sp.simplify(step.f_next.subs(at_zero) / f), w, sp.oo).subs(eta, c / lam)
    c_loss = max(sp.solve(sp.Eq(factor**2, 1), c))
    change = sp.factor(sp.expand(step.lam_next.subs(at_zero) - lam))
    h = sp.simplify(change / (eta * f**2 / w)).subs(eta, c / lam)
    c_max = sp.solve(sp.Eq(h, 0), c)
    if len(c_max) != 1:
        raise ArithmeticError(f"expected one divergence threshold, found {c_max}")
    return {"c_loss": sp.nsimplify(c_loss), "c_max": sp.nsimplify(c_max[0])}


def first_step_sharpness_change() -> sp.Expr:
    """lambda' - lambda to first order in eta (from the derived map): -4 eta f (f - y) / w."""
    change = derive_uv_map().lam_next - lam
    return sp.simplify(sp.series(change, eta, 0, 2).removeO())


def first_step_sharpness_sign(f_value: float, y_value: float) -> int:
    """Sign (-1, 0, +1) of the first-order sharpness change at output f and target y."""
    leading = first_step_sharpness_change().subs({f: f_value, y: y_value, eta: 1, w: 1})
    return int(sp.sign(leading))
