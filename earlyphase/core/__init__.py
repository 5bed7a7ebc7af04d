"""Definitions shared by theory and experiment: one definition, two producers.

- ``trajectory``: the per-step record of one run (``Trajectory``), saved as Parquet + JSON;
- ``critical``: per-run flags and the critical values c_loss, c_sharp, c_max, c_barrier;
- ``phases``: the phase label of one trajectory;
- ``grid``: the c = 2**x grid; ``conventions``: loss normalisations and the divergence rule;
- ``eigen``: ``TopEigenpair``, the answer of the Lanczos solvers of both sides;
- ``validate``: argument checks and ``ConfigError``, the error of bad input; ``provenance``: library versions for records.
"""

from earlyphase.core.conventions import (
    CROSS_ENTROPY,
    DEFAULT_LOSS_MAX,
    MSE,
    default_sigma_w2,
    describe_loss,
    is_diverged,
)
from earlyphase.core.critical import (
    CRITICAL_NAMES,
    CriticalValues,
    SeedSummary,
    Threshold,
    barrier_flag,
    critical_values,
    divergence_flag,
    interpolation_grid,
    loss_catapult_flag,
    non_monotone,
    sharpness_catapult_flag,
    summarize_seeds,
)
from earlyphase.core.grid import c_grid, grid_point
from earlyphase.core.phases import Phase, classify
from earlyphase.core.trajectory import STEP_COLUMNS, Trajectory
from earlyphase.core.validate import ConfigError

__all__ = [
    "CRITICAL_NAMES",
    "CROSS_ENTROPY",
    "ConfigError",
    "DEFAULT_LOSS_MAX",
    "MSE",
    "STEP_COLUMNS",
    "CriticalValues",
    "Phase",
    "SeedSummary",
    "Threshold",
    "Trajectory",
    "barrier_flag",
    "c_grid",
    "classify",
    "critical_values",
    "default_sigma_w2",
    "describe_loss",
    "divergence_flag",
    "grid_point",
    "interpolation_grid",
    "is_diverged",
    "loss_catapult_flag",
    "non_monotone",
    "sharpness_catapult_flag",
    "summarize_seeds",
]
