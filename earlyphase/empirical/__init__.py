"""earlyphase.empirical: train real networks with SGD while tracking loss, sharpness and NTK.

    from earlyphase.empirical import TrainConfig, prepare, run_at_c
    experiment = prepare(TrainConfig(arch="fcn", depth=4, width=128, dataset="digits"))
    trajectory = run_at_c(experiment, c=2.0)     # an earlyphase.core.Trajectory

Modules: ``data`` (datasets), ``models`` (FCN, Myrtle CNN, ResNet-18 without normalisation),
``functional`` (a module as f(theta, x) of a flat theta), ``losses``, ``curvature`` (HVPs,
Lanczos, NTK), ``objective`` (loss, gradient and curvature on a chunked batch), ``barrier``
(straight-line path loss), ``config`` (TrainConfig), ``training`` (prepare, run_at_c), and for the
predictions from the initialisation ``initial`` (measure_initial) and ``lookahead`` (the first
step's ray: lookahead_prediction).
"""

from earlyphase.empirical.config import TrainConfig
from earlyphase.empirical.training import Experiment, prepare, run_at_c

__all__ = ["Experiment", "TrainConfig", "prepare", "run_at_c"]
