"""The sweep specification: a TOML file (or the equivalent command-line flags), validated whole.

A sweep is the product depths x widths x init seeds x SGD seeds of one run family (every other
``TrainConfig`` field is shared), each searched over c = 2**x for its critical values::

    name = "fcn-fashion"            # optional label
    [model]       arch, depths (list), widths (list), activation, sigma_w2, readout, parameterization
    [data]        dataset, data_path, n_train, measure_size, eval_set
    [protocol]    batch_size, steps, loss, momentum, loss_max, epsilon
    [measurement] barrier, barrier_set, ntk, measure_every, lanczos_tol, lanczos_max_iter, warm_start, hvp_method, chunk_size,
                  measure_mode ("flags", the sweep default, or "full")
    [seeds]       init (list), sgd (list), measure
    [search]      method ("bisect" | "grid"), x_min, x_max, x_step, x_start, expand_step, confirm, lookahead
    [execution]   device, dtype, runs_per_device, ensemble

Keys other than depths, widths, seeds.*, the [search] keys, runs_per_device and ensemble are the
fields of ``earlyphase.empirical.config.TrainConfig`` with their defaults, except
``measurement.measure_mode``: "flags" by default in a sweep (a search needs the flags only; they and
the critical values are those of "full"), so it is neither part of a spec's identity nor of a
run's configuration hash (``config_key``): runs of either mode are reused by both; a TrainConfig field
not listed above is accepted in an ``[engine]`` section. Optional values are switched off with a
word: ``batch_size = "full"`` (full-batch GD), ``n_train = "all"``, ``sigma_w2 = "default"``,
``"none"`` elsewhere. Unknown sections or keys, wrong types and impossible values raise
``ConfigError`` naming the key (its ``parameter``: ``section.key``), before anything runs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from types import NoneType, UnionType
from typing import Any

from earlyphase.core.grid import DEFAULT_X_MAX, DEFAULT_X_STEP, require_exponent
from earlyphase.core.search import BracketPlan, CGrid, GridPlan, SearchPlan
from earlyphase.core.validate import ConfigError, require_choice, require_int, require_positive
from earlyphase.empirical.config import TrainConfig

DEFAULT_RUNNER = "earlyphase.empirical.training"
"""Module (or ``module:object``) providing ``prepare(config)`` and ``run_at_c(experiment, c)``."""

SEARCH_METHODS = ("bisect", "grid")

# swept lists: spec key -> (TrainConfig field, SweepSpec attribute)
_SWEPT = {
    ("model", "depths"): ("depth", "depths"),
    ("model", "widths"): ("width", "widths"),
    ("seeds", "init"): ("seed_init", "init_seeds"),
    ("seeds", "sgd"): ("seed_sgd", "sgd_seeds"),
}
# TrainConfig fields shared by every run, by section (seeds.measure is seed_measure)
_SECTION_FIELDS: dict[str, tuple[str, ...]] = {
    "model": ("arch", "activation", "sigma_w2", "readout", "parameterization"),
    "data": ("dataset", "data_path", "n_train", "measure_size", "eval_set"),
    "protocol": ("batch_size", "steps", "loss", "momentum", "loss_max", "epsilon"),
    "measurement": (
        "barrier",
        "barrier_set",
        "ntk",
        "measure_every",
        "lanczos_tol",
        "lanczos_max_iter",
        "warm_start",
        "hvp_method",
        "chunk_size",
        "measure_mode",
    ),
    "execution": ("device", "dtype"),
}
ENGINE_SECTION = "engine"
SWEEP_MEASURE = "flags"
"""A sweep's default ``TrainConfig.measure_mode``: only what the flags need."""
RESULT_NEUTRAL_FIELDS = ("measure_mode",)
"""TrainConfig fields that never change a run's flags: left out of ``config_key`` and ``SweepSpec.identity``."""
NONE_WORDS = {"batch_size": "full", "n_train": "all", "sigma_w2": "default"}

HELP = {
    "name": "a label for the sweep",
    "runner": f"module (or module:object) with prepare(config) and run_at_c(experiment, c) (default {DEFAULT_RUNNER})",
    "arch": "architecture: fcn, cnn (Myrtle, depth >= 4), resnet18 (depth 18)",
    "depths": "depths d (number of weight layers), a list",
    "widths": "widths w (hidden units, or channels for cnn/resnet18), a list",
    "activation": "relu, tanh or linear",
    "sigma_w2": "hidden-layer weight variance x fan_in ('default': 2 for relu, 1 otherwise)",
    "readout": "readout layer: standard (N(0, 1/fan_in)), zero, mup (1/width)",
    "parameterization": "standard or ntk",
    "dataset": "digits, mnist, fashion_mnist, cifar10 or synthetic",
    "data_path": "where the dataset files are ('none': the usual search order)",
    "n_train": "training examples used ('all': the whole training set)",
    "measure_size": "size of the fixed measurement batch for the sharpness",
    "eval_set": "where L_t is measured: measure (the measurement batch) or train",
    "batch_size": "SGD batch size B ('full': full-batch gradient descent)",
    "steps": "number of SGD steps T of the early window",
    "loss": "mse or cross_entropy",
    "momentum": "heavy-ball momentum in [0, 1) (0: plain SGD)",
    "loss_max": "divergence bound L_max: a run diverges when L_t > L_max or is not finite",
    "epsilon": "c_sharp tolerance: sharpness catapult when lambda_t / lambda_0 > 1 + epsilon",
    "barrier": "measure the loss on the straight path theta_0 -> theta_T (needed for c_barrier)",
    "barrier_set": "where the barrier path is evaluated: measure (the fixed measurement batch, cheap) or eval (the eval_set)",
    "ntk": "also track the top NTK eigenvalue",
    "measure_every": "measure the sharpness every k steps (1 for the critical values)",
    "lanczos_tol": "Lanczos relative residual tolerance",
    "lanczos_max_iter": "Lanczos iteration cap (Hessian-vector products per solve)",
    "warm_start": "warm-start Lanczos from the previous eigenvector",
    "hvp_method": "auto, forward_over_reverse or double_backward",
    "measure_mode": "flags (default: the sharpness only until lambda_t / lambda_0 > 1 + epsilon is certain; same critical "
    "values, fewer Hessian-vector products) or full (every step's sharpness solved, for trajectories)",
    "chunk_size": "cap on examples pushed through the network at once ('none': no cap)",
    "init": "initialisation seeds, a list",
    "sgd": "SGD batch-order seeds, a list",
    "measure": "measurement-batch seed",
    "method": "bisect (bracketing search per critical value) or grid (every c = 2^x up to the first divergence)",
    "x_min": "lowest grid exponent: c_min = 2^x_min",
    "x_max": "highest grid exponent: c_max of the scan = 2^x_max",
    "x_step": "grid step in x (0.1: 7.2 %% steps in c)",
    "x_start": "bisect: first exponent evaluated (then expand up/down)",
    "expand_step": "bisect: expansion stride from x_start until a bracket is found, in grid steps",
    "confirm": "bisect: grid points below each bracket that must be evaluated (1: plain bisection; 2 catches one-point flicker)",
    "lookahead": "bisect: run first at the c_loss and c_sharp the one-step look-ahead predicts from theta_0 and one grid "
    "step below, then bracket as usual; each prediction is checked by those full runs (flag with its peak at t = 1, "
    "none below) and every critical value is read from full runs (default false)",
    "device": "cpu, cuda, cuda:N or mps",
    "dtype": "float32 or float64",
    "runs_per_device": "most runs sharing one CUDA device at once (set from its memory)",
    "ensemble": "0: one run at a time; L >= 1: the seeds of each (depth, width) searched in lockstep, "
    "L points per search per round, trained as one batched ensemble (earlyphase.empirical.ensemble)",
}


@dataclass(frozen=True)
class SearchSpec:
    """How c is searched: the grid c_k = 2**(x_min + k x_step) <= 2**x_max and the method."""

    method: str = "bisect"
    x_min: float = 0.0
    x_max: float = DEFAULT_X_MAX
    x_step: float = DEFAULT_X_STEP
    x_start: float = 1.0
    expand_step: int = 6
    confirm: int = 1
    lookahead: bool = False
    """Start each bisect search at the one-step look-ahead's c_loss and c_sharp, each checked by
    full runs (``earlyphase.empirical.sweep.lookahead_search``)."""

    def __post_init__(self) -> None:
        require_choice("search.method", self.method, SEARCH_METHODS)
        if not isinstance(self.lookahead, bool):
            raise ConfigError(f"search.lookahead must be true or false, got {self.lookahead!r}", "search.lookahead")
        if self.lookahead and self.method != "bisect":
            raise ConfigError(
                f'search.lookahead needs method = "bisect" (the grid runs every c anyway), got {self.method!r}',
                "search.lookahead",
            )
        require_positive("search.x_step", self.x_step)
        for key in ("x_min", "x_max", "x_start"):
            require_exponent(f"search.{key}", getattr(self, key))
        if self.x_max < self.x_min:
            raise ConfigError(
                f"search.x_max ({self.x_max}) must be >= search.x_min ({self.x_min}): the c range is upside down",
                "search.x_max",
            )
        if not self.x_min <= self.x_start <= self.x_max:
            raise ConfigError(
                f"search.x_start must lie in [x_min, x_max] = [{self.x_min}, {self.x_max}], got {self.x_start}",
                "search.x_start",
            )
        require_int("search.expand_step", self.expand_step, minimum=1)
        require_int("search.confirm", self.confirm, minimum=1)

    @property
    def grid(self) -> CGrid:
        return CGrid(self.x_min, self.x_max, self.x_step)

    def plan(self) -> SearchPlan:
        """The search over grid indices (earlyphase.core.search)."""
        if self.method == "grid":
            return GridPlan(self.grid)
        return BracketPlan(self.grid, self.grid.index_at_or_above(self.x_start), self.expand_step, self.confirm)


@dataclass(frozen=True)
class SweepPoint:
    """One (depth, width, init seed, SGD seed) of a sweep: one search over c."""

    depth: int
    width: int
    seed_init: int
    seed_sgd: int


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the shared run settings, the swept lists, the search and the runner.

    ``base`` holds every TrainConfig field shared by the runs (its depth, width and two seeds
    are those of the first point); ``config(point)`` is the run family of one point.
    """

    base: TrainConfig
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    init_seeds: tuple[int, ...]
    sgd_seeds: tuple[int, ...]
    search: SearchSpec = SearchSpec()
    runs_per_device: int = 1
    ensemble: int = 0
    runner: str = DEFAULT_RUNNER
    name: str = ""

    def points(self) -> tuple[SweepPoint, ...]:
        """Every (depth, width, seed_init, seed_sgd), depth slowest."""
        return tuple(
            SweepPoint(d, w, i, s)
            for d in self.depths
            for w in self.widths
            for i in self.init_seeds
            for s in self.sgd_seeds
        )

    def config(self, point: SweepPoint) -> TrainConfig:
        return replace(
            self.base, depth=point.depth, width=point.width, seed_init=point.seed_init, seed_sgd=point.seed_sgd
        )

    def to_dict(self) -> dict[str, Any]:
        """The spec as {top-level keys, section: {key: value}} (None for switched-off values)."""
        base = asdict(self.base)
        out: dict[str, Any] = {"name": self.name, "runner": self.runner}
        for section, key, field_name in _spec_keys():
            if (section, key) in _SWEPT:
                value: Any = list(getattr(self, _SWEPT[(section, key)][1]))
            elif section == "search":
                value = getattr(self.search, key)
            elif section == "execution" and field_name is None:
                value = getattr(self, key)
            else:
                value = base[field_name]  # type: ignore[index]  # a TrainConfig field here
            out.setdefault(section, {})[key] = value
        return out

    def identity(self) -> dict[str, Any]:
        """What decides the results (everything but the name): two specs with equal identity agree."""
        data = self.to_dict()
        data.pop("name")
        for field_name in RESULT_NEUTRAL_FIELDS:
            data[_FIELD_PATH[field_name].split(".")[0]].pop(field_name)
        return data


_SEARCH_KEYS = tuple(f.name for f in fields(SearchSpec))


@functools.cache
def _spec_keys() -> tuple[tuple[str, str, str | None], ...]:
    """(section, key, TrainConfig field or None) for every spec key, in file order."""
    leftover = [
        f.name
        for f in fields(TrainConfig)
        if f.name not in {"depth", "width", "seed_init", "seed_sgd", "seed_measure"}
        and not any(f.name in names for names in _SECTION_FIELDS.values())
    ]
    sections: dict[str, list[tuple[str, str | None]]] = {
        "model": [("depths", "depth"), ("widths", "width"), *((n, n) for n in _SECTION_FIELDS["model"])],
        "data": [(n, n) for n in _SECTION_FIELDS["data"]],
        "protocol": [(n, n) for n in _SECTION_FIELDS["protocol"]],
        "measurement": [(n, n) for n in _SECTION_FIELDS["measurement"]],
        "seeds": [("init", "seed_init"), ("sgd", "seed_sgd"), ("measure", "seed_measure")],
        "search": [(key, None) for key in _SEARCH_KEYS],
        "execution": [(n, n) for n in _SECTION_FIELDS["execution"]] + [("runs_per_device", None), ("ensemble", None)],
        ENGINE_SECTION: [(n, n) for n in leftover],
    }
    return tuple((section, key, field_name) for section, keys in sections.items() for key, field_name in keys)


def key_hint(section: str, key: str) -> Any:
    """The Python type of a spec value: tuple[int, ...] for the swept lists."""
    if (section, key) in _SWEPT:
        return tuple[int, ...]
    if section == "search":
        return typing.get_type_hints(SearchSpec)[key]
    if (section, key) in (("execution", "runs_per_device"), ("execution", "ensemble")):
        return int
    field_name = dict(((s, k), f) for s, k, f in _spec_keys())[(section, key)]
    return typing.get_type_hints(TrainConfig)[field_name]  # type: ignore[index]  # a TrainConfig field here


def is_list_key(section: str, key: str) -> bool:
    """Whether a spec key is one of the swept lists (model.depths, model.widths, seeds.init, seeds.sgd)."""
    return (section, key) in _SWEPT


def spec_keys() -> list[tuple[str, str]]:
    """Every (section, key) a spec accepts besides the top-level ``name`` and ``runner``."""
    return [(section, key) for section, key, _ in _spec_keys()]


# --- parsing -----------------------------------------------------------------------------
def coerce(path: str, value: Any, hint: Any, text: bool = False) -> Any:
    """``value`` as type ``hint`` (int, float, str, bool, X | None, tuple[int, ...]), else ConfigError naming ``path``.

    With ``text`` the value comes from the command line as a string (a list of strings for lists).
    """
    key = path.rsplit(".", 1)[-1]
    args = typing.get_args(hint)
    if isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union:
        if value is None or (isinstance(value, str) and value.lower() == NONE_WORDS.get(key, "none")):
            return None
        (inner,) = [a for a in args if a is not NoneType]
        return coerce(path, value, inner, text)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{path} must be a non-empty list of integers, got {value!r}", _key(path))
        items = tuple(coerce(f"{path}[{i}]", item, args[0], text) for i, item in enumerate(value))
        if len(set(items)) != len(items):
            raise ConfigError(f"{path} must not repeat values, got {list(items)}", _key(path))
        return items
    if text and isinstance(value, str):
        value = _from_text(path, value, hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false, got {value!r}", _key(path))
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path} must be an integer, got {value!r}", _key(path))
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path} must be a number, got {value!r}", _key(path))
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path} must be a string, got {value!r}", _key(path))
        return value
    raise TypeError(f"unsupported spec type {hint!r} for {path}")


def _key(path: str) -> str:
    """The spec key of a value's path: ``model.depths`` for ``model.depths[2]``."""
    return path.split("[", 1)[0]


def _from_text(path: str, value: str, hint: Any) -> Any:
    try:
        if hint is bool:
            return {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}[value.lower()]
        if hint is int:
            return int(value)
        if hint is float:
            return float(value)
    except (KeyError, ValueError):
        raise ConfigError(
            f"{path} must be {'true or false' if hint is bool else 'a number'}, got {value!r}", _key(path)
        ) from None
    return value


def spec_from_mapping(data: Mapping[str, Any]) -> SweepSpec:
    """Validate a parsed TOML document and build the ``SweepSpec`` (ConfigError naming the key)."""
    known: dict[str, set[str]] = {}
    for section, key in spec_keys():
        known.setdefault(section, set()).add(key)
    values: dict[tuple[str, str], Any] = {}
    for section, content in data.items():
        if section in ("name", "runner"):
            if not isinstance(content, str) or (section == "runner" and not content):
                raise ConfigError(f"{section} must be a non-empty string, got {content!r}", section)
            continue
        if section not in known:
            raise ConfigError(
                f"unknown spec section or key {section!r}; sections are {sorted(known)} (+ name, runner)", section
            )
        if not isinstance(content, Mapping):
            raise ConfigError(f"[{section}] must be a table of keys, got {content!r}", section)
        for key, value in content.items():
            if key not in known[section]:
                raise ConfigError(
                    f"unknown key {section}.{key}; [{section}] accepts {sorted(known[section])}", f"{section}.{key}"
                )
            values[(section, key)] = coerce(f"{section}.{key}", value, key_hint(section, key))
    for required in (("model", "depths"), ("model", "widths")):
        if required not in values:
            raise ConfigError(
                f"{'.'.join(required)} is required (a non-empty list of integers >= 1)", ".".join(required)
            )
    lists = {attr: values.get(sk, (getattr(TrainConfig, field_name),)) for sk, (field_name, attr) in _SWEPT.items()}
    for (section, key), (_, attr) in _SWEPT.items():
        for item in lists[attr]:
            require_int(f"{section}.{key}", item, minimum=1 if section == "model" else 0)
    search = SearchSpec(**{key: values[("search", key)] for key in _SEARCH_KEYS if ("search", key) in values})
    runs_per_device = require_int(
        "execution.runs_per_device", values.get(("execution", "runs_per_device"), 1), minimum=1
    )
    ensemble = require_int("execution.ensemble", values.get(("execution", "ensemble"), 0), minimum=0)
    if ensemble and data.get("runner", DEFAULT_RUNNER) != DEFAULT_RUNNER:
        raise ConfigError(
            f"execution.ensemble trains with the empirical engine; runner must be {DEFAULT_RUNNER!r}", "runner"
        )
    train = {
        field_name: values[(section, key)]
        for section, key, field_name in _spec_keys()
        if field_name is not None and (section, key) not in _SWEPT and (section, key) in values
    }
    train.setdefault("measure_mode", SWEEP_MEASURE)
    if train.get("steps", 1) < 1:
        raise ConfigError(f"protocol.steps must be >= 1, got {train['steps']}", "protocol.steps")
    spec = SweepSpec(
        base=_train_config(
            train, lists["depths"][0], lists["widths"][0], lists["init_seeds"][0], lists["sgd_seeds"][0]
        ),
        depths=lists["depths"],
        widths=lists["widths"],
        init_seeds=lists["init_seeds"],
        sgd_seeds=lists["sgd_seeds"],
        search=search,
        runs_per_device=runs_per_device,
        ensemble=ensemble,
        runner=data.get("runner", DEFAULT_RUNNER),
        name=data.get("name", ""),
    )
    for depth in spec.depths:  # every architecture / depth / width combination is checked up front
        for width in spec.widths:
            _train_config(train, depth, width, spec.init_seeds[0], spec.sgd_seeds[0])
    return spec


def _train_config(train: Mapping[str, Any], depth: int, width: int, seed_init: int, seed_sgd: int) -> TrainConfig:
    try:
        return TrainConfig(**train, depth=depth, width=width, seed_init=seed_init, seed_sgd=seed_sgd)
    except ConfigError as error:
        where = _FIELD_PATH.get(error.parameter or "")
        raise ConfigError(f"{where}: {error}", where) if where else error from None


_FIELD_PATH = {field_name: f"{section}.{key}" for section, key, field_name in _spec_keys() if field_name}


def load_spec(path: str | Path, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> SweepSpec:
    """Read a TOML spec file, apply ``overrides`` ({section: {key: value}}), validate."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"spec file not found: {path}", "spec") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"spec file {path} is not UTF-8 text (TOML files are UTF-8): byte {error.start}", "spec"
        ) from None
    except OSError as error:
        raise ConfigError(f"spec file {path} cannot be read: {error.strerror or error}", "spec") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"spec file {path} is not valid TOML: {error}", "spec") from None
    return spec_from_mapping(merge(data, overrides or {}))


def merge(data: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with the keys of ``overrides`` replaced (one level of sections)."""
    merged = {key: dict(value) if isinstance(value, Mapping) else value for key, value in data.items()}
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            merged.setdefault(key, {})
            if not isinstance(merged[key], dict):
                raise ConfigError(f"[{key}] must be a table of keys, got {merged[key]!r}", key)
            merged[key].update(value)
        else:
            merged[key] = value
    return merged


# --- writing -------------------------------------------------------------------------------
def to_toml(spec: SweepSpec) -> str:
    """The spec as a TOML document that ``load_spec`` reads back to an equal spec."""
    data = spec.to_dict()
    lines = [f"name = {_toml_value(data.pop('name'))}", f"runner = {_toml_value(data.pop('runner'))}"]
    for section, content in data.items():
        lines += ["", f"[{section}]"]
        for key, value in content.items():
            shown = NONE_WORDS.get(key, "none") if value is None else value
            lines.append(f"{key} = {_toml_value(shown)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))


def config_key(config: TrainConfig, runner: str) -> str:
    """Short stable hash of a run family: every TrainConfig field but the ``RESULT_NEUTRAL_FIELDS``,
    and ``barrier_set`` only where it moves the barrier off the evaluation set (so configurations
    from before that field existed keep their hash), and the runner."""
    neutral = RESULT_NEUTRAL_FIELDS + (("barrier_set",) if config.barrier_on_eval_set or not config.barrier else ())
    fields_hashed = {name: value for name, value in asdict(config).items() if name not in neutral}
    text = json.dumps({"config": fields_hashed, "runner": runner}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def search_key(search: SearchSpec) -> str:
    """Short stable hash of the search settings; ``lookahead`` enters only when on, so a plain
    search keeps the key it had before the option existed (its results directories resume)."""
    settings = asdict(search)
    if not settings["lookahead"]:
        del settings["lookahead"]
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
