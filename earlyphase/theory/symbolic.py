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
- ``derive_uv_calibration``: the uv model's scales from a network's top mode at theta_0
  (docs/PROTOCOL.md section 7, ``earlyphase.theory.calibrated``): the output scale that makes
  (f - y)^2 / 2 the top mode's loss, lambda from the linearised step, the width from the
  first-order sharpness rate kappa (of the NTK, or of the Hessian's top eigenvalue, with the
  Hessian's block characteristic polynomial), each checked to give back the uv model's own w.
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


p, q = sp.symbols("p q", real=True)
"""The network's top-mode output e . vec f and residual e . vec(f - y)."""
n, theta_top, lam_h = sp.symbols("n theta_top lambda_H", positive=True)
"""(example, output) entries n = B k, the NTK's top eigenvalue, the Hessian's top eigenvalue."""
kappa = sp.Symbol("kappa", real=True)
inverse_width = sp.Symbol("u", positive=True)
"""u = 1 / w."""


class UVCalibrationFormulas(NamedTuple):
    """The calibration of ``earlyphase.theory.calibrated``, derived from the uv model.

    ``output_scale`` s: f = s p, f - y = s q; ``ntk``: lambda in terms of theta_top and n;
    ``width_ntk``: w from kappa = d lambda / d eta (in f, y); ``sharpness_polynomial``: the
    characteristic polynomial of the Hessian's block, in lambda_H; ``sharpness_rate``:
    kappa_H = d lambda_H / d eta (in f, y, lambda, w, lambda_H); ``width_hessian``: the
    coefficients (a, b, c) of a u^2 + b u + c = 0, u = 1/w, from (f, y, lambda_H, kappa_H);
    ``ntk_from_hessian``: lambda in terms of (f, y, lambda_H, u).
    """

    output_scale: sp.Expr
    ntk: sp.Expr
    width_ntk: sp.Expr
    sharpness_polynomial: sp.Expr
    sharpness_rate: sp.Expr
    width_hessian: tuple[sp.Expr, sp.Expr, sp.Expr]
    ntk_from_hessian: sp.Expr


def _hessian_block_polynomial() -> sp.Expr:
    """det(x I - B) of the Hessian's block on span(z+, z-) (``earlyphase.theory.uv.uv_sharpness``):
    B = [[|z+|^2/w + g/sqrt(w), |z+||z-|/w], [|z+||z-|/w, |z-|^2/w - g/sqrt(w)]],
    |z+-|^2 = (w lambda +- 2 sqrt(w) f)/2; at x = lambda_H."""
    plus, minus = (w * lam + 2 * sp.sqrt(w) * f) / 2, (w * lam - 2 * sp.sqrt(w) * f) / 2
    g = f - y
    block = sp.Matrix(
        [
            [plus / w + g / sp.sqrt(w), sp.sqrt(plus * minus) / w],
            [sp.sqrt(plus * minus) / w, minus / w - g / sp.sqrt(w)],
        ]
    )
    return sp.expand((lam_h * sp.eye(2) - block).det())


def derive_uv_calibration() -> UVCalibrationFormulas:
    """The calibration formulas (``earlyphase.theory.calibrated``), each derived, then checked.

    1. Output scale: the top mode carries L_top = q^2 / (2 n) of the MSE L = |r|^2 / (2 n); with
       f = s p, y = s (p - q) the uv loss (f - y)^2 / 2 equals it for s = 1 / sqrt(n).
    2. NTK: the derived map's linear part, lim_{w -> inf} (f' - y) = (1 - eta lambda) g, equals the
       linearised network's top mode q' = (1 - eta theta_top / n) q for lambda = theta_top / n.
    3. Width from the NTK's rate: kappa = d lambda' / d eta at eta = 0 (derived map), solved for w.
    4. Hessian's rate: lambda_H is a root of the block's characteristic polynomial P(x; f, lambda);
       along the step d lambda_H / d eta = -(P_lambda lambda'(0) + P_f f'(0)) / P_x.
    5. Width from the Hessian's rate: P(lambda_H) = 0 is linear in lambda; substituting its
       solution into kappa_H = rate and clearing denominators leaves a quadratic in u = 1/w.

    Checks (ArithmeticError if one fails): the uv model's own (f, f - y, lambda, kappa) give back
    w from 3; its own (lambda_H, kappa_H) make u = 1/w a root of 5 and give back lambda; for
    n = 1 the scale is 1 (the uv model is its own top mode).
    """
    step = derive_uv_map()
    g = f - y
    scale = sp.Symbol("s", positive=True)
    (output_scale,) = sp.solve(sp.Eq((scale * p - scale * (p - q)) ** 2 / 2, q**2 / (2 * n)), scale)
    linear = sp.limit(step.f_next - y, w, sp.oo)
    (ntk,) = sp.solve(sp.Eq(sp.expand(linear), sp.expand(g * (1 - eta * theta_top / n))), lam)
    ntk_rate = sp.diff(step.lam_next, eta).subs(eta, 0)
    (width_ntk,) = sp.solve(sp.Eq(kappa, ntk_rate), w)
    polynomial = _hessian_block_polynomial()
    output_rate = sp.diff(step.f_next, eta).subs(eta, 0)
    rate = sp.factor(
        -(sp.diff(polynomial, lam) * ntk_rate + sp.diff(polynomial, f) * output_rate) / sp.diff(polynomial, lam_h)
    )
    (ntk_from_hessian,) = sp.solve(polynomial, lam)
    at_u = lambda expr: sp.cancel(expr.subs(w, 1 / inverse_width))  # noqa: E731
    numerator = sp.numer(sp.together(at_u(kappa - rate.subs(lam, ntk_from_hessian))))
    quadratic = sp.Poly(sp.expand(numerator), inverse_width)
    if quadratic.degree() != 2:
        raise ArithmeticError(f"expected a quadratic in u = 1/w, got {quadratic}")
    a, b, c = quadratic.all_coeffs()
    leading = sp.LC(sp.Poly(c, kappa))  # normalise so that c = -kappa lambda_H^2
    a, b, c = (sp.factor(-coefficient * lam_h**2 / leading) for coefficient in (a, b, c))

    # checks: the uv model's own values give back its scales
    if sp.cancel(width_ntk.subs(kappa, ntk_rate) - w) != 0:
        raise ArithmeticError("the NTK calibration does not give back the uv model's width")
    own = {lam: ntk_from_hessian.subs(w, 1 / inverse_width)}  # lambda_H a root of P: eliminate lambda
    own_rate = at_u(rate).subs(own)
    if sp.cancel((a * inverse_width**2 + b * inverse_width + c).subs(kappa, own_rate)) != 0:
        raise ArithmeticError("u = 1/w is not a root of the Hessian calibration's quadratic")
    if sp.cancel(at_u(ntk_from_hessian) - own[lam]) != 0 or output_scale.subs(n, 1) != 1:
        raise ArithmeticError("the calibration does not reduce to the uv model")
    return UVCalibrationFormulas(
        output_scale=output_scale,
        ntk=ntk,
        width_ntk=width_ntk,
        sharpness_polynomial=polynomial,
        sharpness_rate=rate,
        width_hessian=(a, b, c),
        ntk_from_hessian=sp.expand(at_u(ntk_from_hessian)),
    )
