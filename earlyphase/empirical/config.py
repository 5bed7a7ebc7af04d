"""``TrainConfig``: everything that defines one early-training experiment (docs/PROTOCOL.md section 2)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from earlyphase.core.conventions import DEFAULT_LOSS_MAX, LOSS_CONVENTIONS, PARAMETERIZATIONS, default_sigma_w2
from earlyphase.core.validate import ConfigError, require_choice, require_int, require_positive
from earlyphase.empirical.curvature.hvp import HVP_METHODS
from earlyphase.empirical.curvature.lanczos import DEFAULT_MAX_ITER, DEFAULT_TOL
from earlyphase.empirical.models import (
    ACTIVATIONS,
    ARCHITECTURES,
    READOUTS,
    check_architecture,
)

CUSTOM_ARCH = "custom"
"""arch of a user-supplied torch module (``prepare(config, model=...)``); depth and width are then labels."""

EVAL_SETS = ("measure", "train")
MEASURE_MODES = ("full", "flags")
BARRIER_SETS = ("measure", "eval")
DTYPES = ("float32", "float64")
_DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


@dataclass(frozen=True)
class TrainConfig:
    """One run family: architecture, data, optimiser and measurement settings (all c share it).

    Architecture: ``arch`` in fcn, cnn (Myrtle-style, depth >= 4), resnet18 (depth 18) or
    "custom" (your own module, see ``prepare``); ``depth`` = number of weight layers; ``width``
    = hidden units (FCN) or channels (CNN, base channels for ResNet); ``sigma_w2`` None means 2
    for ReLU and 1 for linear/tanh; ``readout`` standard / zero / mup; ``parameterization``
    standard / ntk (earlyphase.empirical.models).

    Data: ``dataset`` name for ``load_dataset`` (from ``data_path`` where given), ``n_train``
    examples (None: all), a measurement batch of ``measure_size`` training examples (the whole
    training set when it is smaller) drawn with ``seed_measure``. The loss L_t is recorded on
    ``eval_set``: "measure" (the measurement batch) or "train" (the whole training set).

    Optimiser: SGD with batches of ``batch_size`` (None or >= n_train: full-batch GD), heavy-ball
    ``momentum`` (v <- momentum v + g, theta <- theta - eta v), ``steps`` updates at
    eta = c / lambda_H0, batch order from ``seed_sgd``, initialisation from ``seed_init``.
    A run diverges when L_t is not finite or exceeds ``loss_max``. ``epsilon`` is the
    c_sharp tolerance, kept with the record for the analysis.

    Measurement: sharpness (and the NTK top eigenvalue if ``ntk``) every ``measure_every``
    steps (and at the last step) by Lanczos to relative residual ``lanczos_tol`` within
    ``lanczos_max_iter`` Hessian-vector products, warm-started from the previous eigenvector
    if ``warm_start``; ``hvp_method`` auto / forward_over_reverse / double_backward; ``barrier``:
    the maximum loss on the straight line theta_0 -> theta_T (c_barrier), evaluated on
    ``barrier_set``: "measure" (the fixed measurement batch, as the paper's code does: cheap even
    when the evaluation set is a whole training set) or "eval" (the evaluation set; the same batch
    when eval_set = "measure"); its flag compares it with the loss at theta_0 on that same set.
    ``measure_mode``: "full"
    (every scheduled step is solved to ``lanczos_tol``) or "flags" (only what the run's flags
    need, docs/PROTOCOL.md section 3: a solve stops once its Ritz value, a lower bound on
    lambda_max, shows lambda_t / lambda_0 > 1 + epsilon, and later steps are not measured, their
    sharpness NaN; the flags, and so the critical values, are those of "full"). ``chunk_size`` caps the
    examples pushed through the network at once (losses, gradients and products are summed over
    chunks; None: no cap). ``device`` cpu / cuda / cuda:N; ``dtype`` of the network float32 or
    float64 (the Lanczos recurrence is always float64).
    """

    arch: str = "fcn"
    depth: int = 4
    width: int = 128
    activation: str = "relu"
    sigma_w2: float | None = None
    readout: str = "standard"
    parameterization: str = "standard"
    dataset: str = "digits"
    n_train: int | None = None
    batch_size: int | None = 512
    steps: int = 10
    measure_size: int = 4096
    eval_set: str = "measure"
    loss: str = "mse"
    momentum: float = 0.0
    loss_max: float = DEFAULT_LOSS_MAX
    epsilon: float = 0.0
    seed_init: int = 0
    seed_sgd: int = 0
    seed_measure: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    barrier: bool = True
    barrier_set: str = "measure"
    ntk: bool = False
    measure_every: int = 1
    lanczos_tol: float = DEFAULT_TOL
    lanczos_max_iter: int = DEFAULT_MAX_ITER
    warm_start: bool = True
    hvp_method: str = "auto"
    measure_mode: str = "full"
    chunk_size: int | None = None
    data_path: str | None = None

    def __post_init__(self) -> None:
        if require_choice("arch", self.arch, ARCHITECTURES + (CUSTOM_ARCH,)) != CUSTOM_ARCH:
            check_architecture(self.arch, self.depth, self.width)
        require_choice("activation", self.activation, ACTIVATIONS)
        if self.sigma_w2 is not None:
            require_positive("sigma_w2", self.sigma_w2)
        require_choice("readout", self.readout, READOUTS)
        require_choice("parameterization", self.parameterization, PARAMETERIZATIONS)
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ConfigError(f"dataset must be a dataset name, got {self.dataset!r}", "dataset")
        _optional_int("n_train", self.n_train)
        _optional_int("batch_size", self.batch_size)
        require_int("steps", self.steps, minimum=0)
        require_int("measure_size", self.measure_size, minimum=1)
        require_choice("eval_set", self.eval_set, EVAL_SETS)
        require_choice("loss", self.loss, LOSS_CONVENTIONS)
        if not 0.0 <= require_positive("momentum", self.momentum, allow_zero=True) < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {self.momentum!r}", "momentum")
        require_positive("loss_max", self.loss_max)
        require_positive("epsilon", self.epsilon, allow_zero=True)
        for name in ("seed_init", "seed_sgd", "seed_measure"):
            require_int(name, getattr(self, name), minimum=0)
        if not isinstance(self.device, str) or not _DEVICE_PATTERN.match(self.device):
            raise ConfigError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {self.device!r}", "device")
        require_choice("dtype", self.dtype, DTYPES)
        require_int("measure_every", self.measure_every, minimum=1)
        if not 0.0 < require_positive("lanczos_tol", self.lanczos_tol) < 1.0:
            raise ConfigError(f"lanczos_tol must be in (0, 1), got {self.lanczos_tol!r}", "lanczos_tol")
        require_int("lanczos_max_iter", self.lanczos_max_iter, minimum=1)
        require_choice("hvp_method", self.hvp_method, HVP_METHODS)
        require_choice("measure_mode", self.measure_mode, MEASURE_MODES)
        require_choice("barrier_set", self.barrier_set, BARRIER_SETS)
        _optional_int("chunk_size", self.chunk_size)

    @property
    def barrier_on_eval_set(self) -> bool:
        """Whether the barrier path is evaluated on the evaluation set (barrier_set = "eval", or
        eval_set = "measure", where the two sets are one batch)."""
        return self.barrier_set == "eval" or self.eval_set == "measure"

    @property
    def sigma_w2_value(self) -> float:
        """sigma_w^2 in use: the given value, else 2 for ReLU and 1 for linear/tanh."""
        return default_sigma_w2(self.activation) if self.sigma_w2 is None else float(self.sigma_w2)


def _optional_int(name: str, value: object) -> None:
    if value is not None:
        require_int(name, value, minimum=1)
