"""Curvature of a loss of a flat parameter vector: Hessian-vector products, Lanczos, NTK.

- ``hvp``: H v by forward-over-reverse (torch.func.jvp of torch.func.grad) or double backward;
- ``lanczos``: top algebraic eigenpair with full reorthogonalisation, residual and product count
  (batched over leading axes; an ``earlyphase.core.eigen.TopEigenpair``);
- ``ntk``: the NTK Gram operator u -> J^T J u (top eigenvalue = lambda_max(Theta));
- ``operators``: weighted sums of operators and dtype casting.
"""

from earlyphase.empirical.curvature.hvp import (
    HVP_METHODS,
    HessianVectorProduct,
    hvp_double_backward,
    hvp_forward_over_reverse,
)
from earlyphase.empirical.curvature.lanczos import lanczos_top
from earlyphase.empirical.curvature.ntk import ntk_gram_product, ntk_operator
from earlyphase.empirical.curvature.operators import in_dtype, weighted_sum

__all__ = [
    "HVP_METHODS",
    "HessianVectorProduct",
    "hvp_double_backward",
    "hvp_forward_over_reverse",
    "in_dtype",
    "lanczos_top",
    "ntk_gram_product",
    "ntk_operator",
    "weighted_sum",
]
