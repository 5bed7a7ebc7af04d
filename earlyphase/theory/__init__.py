"""earlyphase.theory: solvable models that predict the critical learning-rate constants.

- ``uv``: the uv model f = v.u / sqrt(w) (parameter-space GD, closed (f, lambda) map, exact Hessian);
- ``symbolic``: sympy derivations of the uv map, its thresholds c = 2 and c = 4, the first-step
  sharpness change, the calibration of the uv model at a network's theta_0;
- ``linear``, ``linear_hessian``, ``linear_ensemble``: depth-d linear networks, their exact top
  Hessian eigenvalue (Lanczos in the subspace holding the Hessian's range) and jit/vmap ensembles;
- ``ntk``: the linearised (NTK-scale) dynamics and the infinite-width NTK recursion of FCNs;
- ``calibrated``: the uv map with its scales set from a network's top mode at theta_0
  (``calibrate_uv``, ``calibrated_prediction``), derived in ``symbolic.derive_uv_calibration``;
- ``protocol``: the early-window protocol over the c grid; ``predict``: the public API below.

    predict_critical_values(model, depth, width, seeds, **options) -> Prediction
    sharpness_ratio(model, depth, width, c, seeds, **options)       -> lambda_T / lambda_0 per seed
    predict_grid(model, depths, widths, seeds, **options)           -> tidy pandas.DataFrame
"""

from earlyphase.theory.predict import *  # noqa: F403 (the public API, listed once in predict.__all__)
from earlyphase.theory.predict import __all__ as __all__
