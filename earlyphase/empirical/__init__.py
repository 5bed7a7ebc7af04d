"""earlyphase.empirical: train real networks with SGD while tracking loss, sharpness and NTK.

    from earlyphase.empirical import TrainConfig, prepare, run_at_c
    experiment = prepare(TrainConfig.build(arch="fcn", depth=4, width=128, dataset="digits"))
    trajectory = run_at_c(experiment, c=2.0)     # an earlyphase.core.Trajectory

Modules: ``data`` (datasets), ``models`` (FCN, Myrtle CNN, ResNet-18 without normalisation),
``functional`` (a module as f(theta, x) of a flat theta), ``losses``, ``curvature`` (HVPs,
Lanczos, NTK), ``objective`` (loss, gradient and curvature on a chunked batch), ``barrier``
(straight-line path loss), ``config`` (TrainConfig), ``training`` (prepare, run_at_c), and for the
predictions from the initialisation ``initial`` (measure_initial) and ``lookahead`` (the first
step's ray: lookahead_prediction).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from earlyphase.empirical.config import TrainConfig

if TYPE_CHECKING:
    from earlyphase.empirical.training import Experiment, prepare, run_at_c

__all__ = ["Experiment", "TrainConfig", "prepare", "run_at_c"]


def __getattr__(name: str) -> Any:
    """``Experiment``, ``prepare`` and ``run_at_c`` on first use: importing the package (and the
    configuration schema, which the command line reads) does not import torch."""
    if name in ("Experiment", "prepare", "run_at_c"):
        from earlyphase.empirical import training

        return getattr(training, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
