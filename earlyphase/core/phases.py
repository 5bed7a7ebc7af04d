"""Phase label of one early-training trajectory (docs/PROTOCOL.md section 4)."""

from __future__ import annotations

from enum import Enum

import numpy as np
from numpy.typing import ArrayLike

from earlyphase.core.conventions import DEFAULT_LOSS_MAX
from earlyphase.core.critical import divergence_flag, loss_catapult_flag, sharpness_catapult_flag

DEFAULT_REDUCTION_TOLERANCE = 0.05
"""lambda_T / lambda_0 below 1 - tolerance counts as early sharpness reduction."""


class Phase(str, Enum):
    """Phases of the early transient, ordered by increasing c in deep ReLU nets."""

    LAZY = "lazy"  # loss falls monotonically, sharpness ~ constant
    SHARPNESS_REDUCTION = "sharpness_reduction"  # loss falls monotonically, sharpness drops
    LOSS_CATAPULT = "loss_catapult"  # loss rises above L_0, sharpness never above lambda_0
    SHARPNESS_CATAPULT = "sharpness_catapult"  # sharpness rises above lambda_0, loss does not
    LOSS_AND_SHARPNESS_CATAPULT = "loss_and_sharpness_catapult"
    DIVERGENT = "divergent"


def classify(
    loss: ArrayLike,
    sharpness: ArrayLike,
    loss_max: float = DEFAULT_LOSS_MAX,
    epsilon: float = 0.0,
    reduction_tolerance: float = DEFAULT_REDUCTION_TOLERANCE,
) -> Phase:
    """Phase of one run from its losses L_0..L_T and sharpness lambda_0..lambda_T.

    divergent                    if the run diverged
    loss_and_sharpness_catapult  if exists t: L_t > L_0 and exists t: lambda_t > (1 + eps) lambda_0
    loss_catapult                if only the loss rises above L_0
    sharpness_catapult           if only the sharpness rises above (1 + eps) lambda_0
    sharpness_reduction          if neither, and the last finite lambda_t / lambda_0 < 1 - tolerance
    lazy                         otherwise
    """
    loss = np.asarray(loss, dtype=float)
    sharpness = np.asarray(sharpness, dtype=float)
    if loss.ndim != 1 or sharpness.shape != loss.shape:
        raise ValueError("loss and sharpness must be one-dimensional arrays of equal length (T + 1)")
    if divergence_flag(loss, loss_max):
        return Phase.DIVERGENT
    loss_up = bool(loss_catapult_flag(loss, loss_max))
    sharp_up = bool(sharpness_catapult_flag(sharpness, epsilon))
    if loss_up and sharp_up:
        return Phase.LOSS_AND_SHARPNESS_CATAPULT
    if loss_up:
        return Phase.LOSS_CATAPULT
    if sharp_up:
        return Phase.SHARPNESS_CATAPULT
    measured = sharpness[np.isfinite(sharpness)]
    if measured.size >= 2 and measured[-1] / measured[0] < 1.0 - reduction_tolerance:
        return Phase.SHARPNESS_REDUCTION
    return Phase.LAZY
