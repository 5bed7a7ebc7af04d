"""``TrainConfig``: everything that defines one early-training experiment (docs/PROTOCOL.md section 2).

A TrainConfig is six frozen sections, each field declared once with its default, its help and
its allowed values (``earlyphase.core.schema.setting``); the sweep spec's TOML sections, the
command-line flags and the validation are all read from these declarations::

    TrainConfig(model=ModelConfig(depth=8, width=64), protocol=ProtocolConfig(steps=20))
    TrainConfig.build(depth=8, width=64, steps=20)      # the same, by the settings' flat names
    config.model.depth, config.seeds.init               # reading
    config.replace(width=128, seed_init=1)              # a copy with some settings changed
    config.flat()                                       # {flat name: value}: records and hashes

A flat name is the field name, except the seeds: ``seed_init``, ``seed_sgd``, ``seed_measure``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import Any

from earlyphase.core.conventions import (
    DEFAULT_LOSS_MAX,
    LANCZOS_MAX_ITER,
    LANCZOS_TOL,
    LOSS_CONVENTIONS,
    PARAMETERIZATIONS,
    default_sigma_w2,
)
from earlyphase.core.schema import Section, Setting, setting, settings_of
from earlyphase.core.validate import ConfigError, require_choice, require_int

# the names and shapes a configuration may take (used by the modules that implement them; this
# module imports no torch, so that the command line can read the schema without it)
ARCHITECTURES = ("fcn", "cnn", "resnet18")
CNN_MIN_DEPTH = 4
RESNET_DEPTH = 18
ACTIVATION_NAMES = ("relu", "tanh", "linear")
"""The activations of earlyphase.empirical.models.ACTIVATIONS."""
READOUTS = ("standard", "zero", "mup")
HVP_METHODS = ("auto", "forward_over_reverse", "double_backward")
"""Hessian-vector product methods of earlyphase.empirical.curvature.hvp."""
CUSTOM_ARCH = "custom"
"""arch of a user-supplied torch module (``prepare(config, model=...)``); depth and width are then labels."""

EVAL_SETS = ("measure", "train")
MEASURE_MODES = ("full", "flags")
BARRIER_SETS = ("measure", "eval")
DTYPES = ("float32", "float64")
_DEVICE_PATTERN = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")


def check_architecture(arch: str, depth: int, width: int) -> None:
    """Raise ConfigError for an architecture name or a depth/width it does not support
    (docs/PROTOCOL.md section 6: fcn depth >= 1, cnn depth >= 4, resnet18 depth 18; width >= 1)."""
    require_choice("arch", arch, ARCHITECTURES)
    require_int("width", width, minimum=1)
    if arch == "fcn":
        require_int("depth", depth, minimum=1)
    elif arch == "cnn":
        require_int("depth", depth, minimum=CNN_MIN_DEPTH)
    elif depth != RESNET_DEPTH:
        raise ConfigError(f"depth must be {RESNET_DEPTH} for arch 'resnet18', got {depth!r}", "depth")


@dataclass(frozen=True)
class ModelConfig(Section):
    """The network (earlyphase.empirical.models, docs/PROTOCOL.md section 6): ``depth`` weight
    layers of ``width`` hidden units (FCN) or channels (CNN; base channels for ResNet-18)."""

    SECTION = "model"

    arch: str = setting(
        "fcn",
        "architecture: fcn, cnn (Myrtle, depth >= 4), resnet18 (depth 18) or custom (your module, see prepare)",
        choices=ARCHITECTURES + (CUSTOM_ARCH,),
    )
    depth: int = setting(4, "number of weight layers d (cnn: >= 4, resnet18: 18)")
    width: int = setting(128, "hidden units w (channels for cnn, base channels for resnet18)")
    activation: str = setting("relu", "relu, tanh or linear", choices=ACTIVATION_NAMES)
    sigma_w2: float | None = setting(
        None, "hidden-layer weight variance x fan_in ('default': 2 for relu, 1 otherwise)", none_word="default"
    )
    readout: str = setting(
        "standard", "readout layer: standard (N(0, 1/fan_in)), zero, mup (N(0, 1/fan_in^2))", choices=READOUTS
    )
    parameterization: str = setting(
        "standard",
        "standard (W ~ N(0, sigma^2/fan_in)) or ntk (W ~ N(0, 1), times sigma/sqrt(fan_in))",
        choices=PARAMETERIZATIONS,
    )

    def check(self) -> None:
        if self.arch == CUSTOM_ARCH:
            return
        try:
            check_architecture(self.arch, self.depth, self.width)
        except ConfigError as error:
            raise ConfigError(f"{self.SECTION}.{error}", f"{self.SECTION}.{error.parameter}") from None

    @property
    def sigma_w2_value(self) -> float:
        """sigma_w^2 in use: the given value, else 2 for ReLU and 1 for linear/tanh."""
        return default_sigma_w2(self.activation) if self.sigma_w2 is None else float(self.sigma_w2)


@dataclass(frozen=True)
class DataConfig(Section):
    """The data: ``n_train`` examples of ``dataset`` and a fixed measurement batch of
    ``measure_size`` of them (the whole training set when it is smaller); the loss L_t is recorded
    on ``eval_set``: "measure" (the measurement batch) or "train" (the whole training set)."""

    SECTION = "data"

    dataset: str = setting("digits", "digits, mnist, fashion_mnist, cifar10 or synthetic")
    data_path: str | None = setting(None, "file or directory holding the dataset ('none': the usual search order)")
    n_train: int | None = setting(
        None, "training examples used ('all': the whole training set)", minimum=1, none_word="all"
    )
    measure_size: int = setting(
        4096, "size of the fixed measurement batch for the sharpness (capped at n_train)", minimum=1
    )
    eval_set: str = setting(
        "measure", "where L_t is measured: measure (the measurement batch) or train", choices=EVAL_SETS
    )

    def check(self) -> None:
        if not self.dataset:
            raise ConfigError(f"{self.SECTION}.dataset must be a dataset name, got {self.dataset!r}", "data.dataset")


@dataclass(frozen=True)
class ProtocolConfig(Section):
    """The optimiser: ``steps`` SGD updates at eta = c / lambda_H0 with batches of ``batch_size``
    (None, or >= n_train: full-batch GD) and heavy-ball ``momentum`` (v <- momentum v + g,
    theta <- theta - eta v); a run diverges when L_t is not finite or exceeds ``loss_max``;
    ``epsilon`` is the c_sharp tolerance lambda_t / lambda_0 > 1 + epsilon (docs/PROTOCOL.md section 3)."""

    SECTION = "protocol"

    batch_size: int | None = setting(
        512, "SGD batch size B ('full': full-batch gradient descent)", minimum=1, none_word="full"
    )
    steps: int = setting(10, "number of SGD steps T of the early window", minimum=0)
    loss: str = setting("mse", "mse or cross_entropy", choices=tuple(LOSS_CONVENTIONS))
    momentum: float = setting(0.0, "heavy-ball momentum in [0, 1) (0: plain SGD)", allow_zero=True, below=1.0)
    loss_max: float = setting(
        DEFAULT_LOSS_MAX, "divergence bound L_max: a run diverges when L_t > L_max or is not finite"
    )
    epsilon: float = setting(
        0.0, "c_sharp tolerance: sharpness catapult when lambda_t / lambda_0 > 1 + epsilon", allow_zero=True
    )


@dataclass(frozen=True)
class MeasurementConfig(Section):
    """What is measured: the sharpness (and the top NTK eigenvalue if ``ntk``) every
    ``measure_every`` steps and at the last by Lanczos to relative residual ``lanczos_tol``;
    ``barrier``: the maximum loss on the straight line theta_0 -> theta_T (c_barrier) on
    ``barrier_set`` ("measure": the fixed measurement batch, as the paper's code does; "eval": the
    evaluation set). ``measure_mode`` "flags" solves only what the run's flags need (a solve stops
    once its Ritz value, a lower bound on lambda_max, shows lambda_t / lambda_0 > 1 + epsilon, and
    later steps are not measured); the flags, and so the critical values, are those of "full"."""

    SECTION = "measurement"

    barrier: bool = setting(True, "measure the loss on the straight path theta_0 -> theta_T (needed for c_barrier)")
    barrier_set: str = setting(
        "measure",
        "where the barrier path is evaluated: measure (the fixed measurement batch, cheap) or eval (the eval_set)",
        choices=BARRIER_SETS,
    )
    ntk: bool = setting(False, "also track the top NTK eigenvalue lambda_max(NTK) / (B k) on the measurement batch")
    measure_every: int = setting(
        1, "measure the sharpness every k steps and at the last (1 for the critical values)", minimum=1
    )
    lanczos_tol: float = setting(LANCZOS_TOL, "Lanczos relative residual |Hv - lambda v| / |lambda|", below=1.0)
    lanczos_max_iter: int = setting(
        LANCZOS_MAX_ITER, "Lanczos iteration cap (Hessian-vector products per solve)", minimum=1
    )
    warm_start: bool = setting(True, "warm-start Lanczos from the previous eigenvector")
    hvp_method: str = setting("auto", "auto, forward_over_reverse or double_backward", choices=HVP_METHODS)
    chunk_size: int | None = setting(
        None, "cap on examples pushed through the network at once, bounds memory ('none': no cap)", minimum=1
    )
    measure_mode: str = setting(
        "full",
        "flags (the sharpness only until lambda_t / lambda_0 > 1 + epsilon is certain; same critical values, "
        "fewer Hessian-vector products) or full (every scheduled step solved, for trajectories)",
        choices=MEASURE_MODES,
    )


@dataclass(frozen=True)
class SeedConfig(Section):
    """The run's seeds: initialisation, SGD batch order, measurement-batch draw."""

    SECTION = "seeds"

    init: int = setting(0, "initialisation seed", minimum=0, name="seed_init")
    sgd: int = setting(0, "SGD batch-order seed", minimum=0, name="seed_sgd")
    measure: int = setting(0, "measurement-batch seed", minimum=0, name="seed_measure")


@dataclass(frozen=True)
class ExecutionConfig(Section):
    """Where it runs: ``device`` and the network's ``dtype`` (the Lanczos recurrence is always float64)."""

    SECTION = "execution"

    device: str = setting("cpu", "cpu, cuda, cuda:N or mps")
    dtype: str = setting("float32", "network dtype: float32 or float64", choices=DTYPES)

    def check(self) -> None:
        if not _DEVICE_PATTERN.match(self.device):
            raise ConfigError(
                f"execution.device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got {self.device!r}", "execution.device"
            )


@dataclass(frozen=True)
class TrainConfig:
    """One run family (all c share it): the network, the data, the optimiser, what is measured,
    the seeds and the machine, each a section above (docs/PROTOCOL.md section 2)."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    protocol: ProtocolConfig = ProtocolConfig()
    measurement: MeasurementConfig = MeasurementConfig()
    seeds: SeedConfig = SeedConfig()
    execution: ExecutionConfig = ExecutionConfig()

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if not isinstance(getattr(self, field.name), _section_types()[field.name]):
                raise ConfigError(
                    f"{field.name} must be a {_section_types()[field.name].__name__}, got {getattr(self, field.name)!r}",
                    field.name,
                )

    @classmethod
    def settings(cls) -> tuple[Setting, ...]:
        """Every setting of every section, in file order."""
        return _settings()

    @classmethod
    def build(cls, **values: Any) -> TrainConfig:
        """The TrainConfig with the given settings, by flat name (``depth``, ``steps``,
        ``seed_init``, ...), the defaults elsewhere: short call sites, and the names that records
        and flags use. The routing to sections is read from the declarations, not listed again."""
        return cls().replace(**values)

    def replace(self, **values: Any) -> TrainConfig:
        """A copy with the given settings (by flat name) changed, validated again."""
        changes: dict[str, dict[str, Any]] = {}
        by_name = _by_name()
        for name, value in values.items():
            if name not in by_name:
                raise TypeError(f"TrainConfig has no setting {name!r}; settings are {sorted(by_name)}")
            found = by_name[name]
            changes.setdefault(found.section, {})[found.key] = value
        return dataclasses.replace(
            self, **{section: dataclasses.replace(getattr(self, section), **keys) for section, keys in changes.items()}
        )

    def flat(self) -> dict[str, Any]:
        """{flat name: value} of every setting: the form of records and of ``config_key``'s hash."""
        return {s.name: getattr(getattr(self, s.section), s.key) for s in _settings()}

    @property
    def barrier_on_eval_set(self) -> bool:
        """Whether the barrier path is evaluated on the evaluation set (barrier_set = "eval", or
        eval_set = "measure", where the two sets are one batch)."""
        return self.measurement.barrier_set == "eval" or self.data.eval_set == "measure"


@functools.cache
def _section_types() -> dict[str, type]:
    return {field.name: field.default.__class__ for field in dataclasses.fields(TrainConfig)}


@functools.cache
def _settings() -> tuple[Setting, ...]:
    return tuple(setting for name, kind in _section_types().items() for setting in settings_of(kind, name))


@functools.cache
def _by_name() -> dict[str, Setting]:
    return {setting.name: setting for setting in _settings()}
