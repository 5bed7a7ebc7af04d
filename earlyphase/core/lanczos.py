"""What the two Lanczos solvers share: the stopping rule and its default tolerance (docs/PROTOCOL.md section 1).

Both compute the sharpness lambda_H (largest ALGEBRAIC Hessian eigenvalue) and lambda_max(Theta)
as the top Ritz pair (theta, y) of a Krylov space, stopping once the relative residual
|A y - theta y| / |theta| <= tol; each record keeps that residual and the products spent.

There are two recurrences because the two sides run on different machinery that cannot call
each other: ``earlyphase.empirical.curvature.lanczos`` (torch, eager) multiplies by operators
built from autograd graphs of a network, lets batch members leave as they converge and does
the Ritz analysis on the host; ``earlyphase.theory.lanczos`` (JAX) is a pure ``lax.while_loop``
of restarted fixed-size cycles, traceable under ``jax.jit`` and ``jax.vmap`` over seeds and c.
A jitted JAX loop cannot call torch's autograd, and torch's eager loop cannot be traced by JAX.
"""

LANCZOS_TOL = 1e-3
"""Default relative residual of both solvers: the eigenvalue error is about residual^2 lambda / gap
(~1e-6 relative), far below the grid step of c (7 %)."""
LANCZOS_MAX_PRODUCTS = 100
"""Default cap on the operator products of one solve (empirical ``max_iter``; the theory's
iterations x max_cycles stays below it)."""
