"""The sweep specification: a TOML file (or the equivalent command-line flags), validated whole.

A sweep is the product depths x widths x init seeds x SGD seeds of one run family (every other
``TrainConfig`` setting is shared), each searched over c = 2**x for its critical values::

    name = "fcn-fashion"            # optional label
    runner = "earlyphase.empirical.training"
    [model]       depths (list), widths (list), and ModelConfig's other fields
    [data]        DataConfig's fields
    [protocol]    ProtocolConfig's fields
    [measurement] MeasurementConfig's fields (measure_mode: "flags" by default in a sweep)
    [seeds]       init (list), sgd (list), measure
    [search]      SearchSpec's fields: method ("bisect" | "grid"), x_min, x_max, x_step, ..., lookahead
    [execution]   ExecutionConfig's fields, runs_per_device, ensemble

Every key but the swept lists, ``runs_per_device`` and ``ensemble`` (fields of ``SweepSpec``)
and the [search] keys is a field of a section of ``earlyphase.empirical.config.TrainConfig``, with
its default, type, help and validation; ``earlyphase sweep run --help`` lists them all.
``measurement.measure_mode`` is "flags" by default in a sweep (a search needs the flags only; they
and the critical values are those of "full"), so it is neither part of a spec's identity nor of a
run's configuration hash (``config_key``): runs of either mode are reused by both. Optional
values are switched off with a word: ``batch_size = "full"`` (full-batch GD), ``n_train =
"all"``, ``sigma_w2 = "default"``, ``"none"`` elsewhere. Unknown sections or keys, wrong types
and impossible values raise ``ConfigError`` naming the key (its ``parameter``: ``section.key``),
before anything runs.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from earlyphase.core.grid import DEFAULT_X_MAX, DEFAULT_X_STEP, require_exponent
from earlyphase.core.schema import Setting, coerce, setting, settings_of
from earlyphase.core.search import BracketPlan, CGrid, GridPlan, SearchPlan
from earlyphase.core.validate import ConfigError, require_choice, require_int, require_positive
from earlyphase.empirical.config import SeedConfig, TrainConfig

DEFAULT_RUNNER = "earlyphase.empirical.training"
"""Module (or ``module:object``) providing ``prepare(config)`` and ``run_at_c(experiment, c)``."""

SEARCH_METHODS = ("bisect", "grid")
SEARCH_SECTION = "search"
SWEEP_MEASURE = "flags"
"""A sweep's default ``TrainConfig.measurement.measure_mode``: only what the flags need."""
RESULT_NEUTRAL_FIELDS = ("measure_mode",)
"""TrainConfig settings that never change a run's flags: left out of ``config_key`` and ``SweepSpec.identity``."""


@dataclass(frozen=True)
class SearchSpec:
    """How c is searched: the grid c_k = 2**(x_min + k x_step) <= 2**x_max and the method."""

    method: str = setting(
        "bisect",
        "bisect (bracketing search per critical value) or grid (every c = 2^x up to the first divergence)",
        choices=SEARCH_METHODS,
        name="search",
    )
    x_min: float = setting(0.0, "lowest grid exponent: c_min = 2^x_min")
    x_max: float = setting(DEFAULT_X_MAX, "highest grid exponent: c_max of the scan = 2^x_max")
    x_step: float = setting(DEFAULT_X_STEP, "grid step in x (0.1: 7.2 % steps in c)")
    x_start: float = setting(1.0, "bisect: first exponent evaluated (then expand up/down)")
    expand_step: int = setting(6, "bisect: expansion stride from x_start until a bracket is found, in grid steps")
    confirm: int = setting(
        1,
        "bisect: grid points below each bracket that must be evaluated (1: plain bisection; 2 catches one-point flicker)",
    )
    lookahead: bool = setting(
        False,
        "bisect: run first at the c_loss and c_sharp the one-step look-ahead predicts from theta_0 and one grid "
        "step below, then bracket as usual; each prediction is checked by those full runs (flag with its peak at "
        "t = 1, none below) and every critical value is read from full runs "
        "(earlyphase.empirical.sweep.lookahead_search)",
    )

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


def _spec_field(help: str, at: str = "", minimum: int = 0, sweeps: str = "", **default: Any) -> Any:
    """A SweepSpec field: ``help``; ``at``: its ``section.key`` in the file (empty: top level or
    none); ``minimum``: least integer value; ``sweeps``: the TrainConfig setting a list replaces."""
    return field(**default, metadata={"help": help, "at": at, "minimum": minimum, "sweeps": sweeps})


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: the shared run settings, the swept lists, the search and the runner.

    ``base`` holds every TrainConfig setting shared by the runs (its depth, width and two seeds
    are those of the first point); ``config(point)`` is the run family of one point.
    """

    base: TrainConfig = _spec_field("the settings shared by every run")
    depths: tuple[int, ...] = _spec_field(
        "depths d (number of weight layers), a list", "model.depths", minimum=1, sweeps="depth"
    )
    widths: tuple[int, ...] = _spec_field(
        "widths w (hidden units, or channels for cnn/resnet18), a list", "model.widths", minimum=1, sweeps="width"
    )
    init_seeds: tuple[int, ...] = _spec_field(
        "initialisation seeds, a list", "seeds.init", sweeps="seed_init", default=(SeedConfig().init,)
    )
    sgd_seeds: tuple[int, ...] = _spec_field(
        "SGD batch-order seeds, a list", "seeds.sgd", sweeps="seed_sgd", default=(SeedConfig().sgd,)
    )
    search: SearchSpec = _spec_field("how c is searched", default=SearchSpec())
    runs_per_device: int = _spec_field(
        "most runs sharing one CUDA device at once (set from its memory)",
        "execution.runs_per_device",
        minimum=1,
        default=1,
    )
    ensemble: int = _spec_field(
        "0: one run at a time; L >= 1: the seeds of each (depth, width) searched in lockstep, "
        "L points per search per round, trained as one batched ensemble (earlyphase.empirical.ensemble)",
        "execution.ensemble",
        default=0,
    )
    runner: str = _spec_field(
        f"module (or module:object) with prepare(config) and run_at_c(experiment, c) (default {DEFAULT_RUNNER})",
        default=DEFAULT_RUNNER,
    )
    name: str = _spec_field("a label for the sweep", default="")

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
        return self.base.replace(
            depth=point.depth, width=point.width, seed_init=point.seed_init, seed_sgd=point.seed_sgd
        )

    def to_dict(self) -> dict[str, Any]:
        """The spec as {top-level keys, section: {key: value}} (None for switched-off values)."""
        out: dict[str, Any] = {"name": self.name, "runner": self.runner}
        for key in spec_settings():
            out.setdefault(key.setting.section, {})[key.setting.key] = key.value_in(self)
        return out

    def identity(self) -> dict[str, Any]:
        """What decides the results (everything but the name): two specs with equal identity agree."""
        data = self.to_dict()
        data.pop("name")
        for key in spec_settings():
            if key.holder == "base" and key.setting.name in RESULT_NEUTRAL_FIELDS:
                data[key.setting.section].pop(key.setting.key)
        return data


@dataclass(frozen=True)
class SpecKey:
    """One key of a spec file: its ``setting`` and where its value is held: "base" (a TrainConfig
    setting, by its flat name), "search" (a SearchSpec field) or "spec" (a SweepSpec field: the
    swept lists, runs_per_device, ensemble); ``sweeps``: the TrainConfig setting a swept list
    replaces; ``minimum``: a spec field's least integer value."""

    setting: Setting
    holder: str
    sweeps: str = ""
    minimum: int = 0

    @property
    def many(self) -> bool:
        """Whether the key is a swept list (model.depths, model.widths, seeds.init, seeds.sgd)."""
        return bool(self.sweeps)

    def value_in(self, spec: SweepSpec) -> Any:
        if self.holder == "search":
            return getattr(spec.search, self.setting.key)
        if self.holder == "spec":
            value = getattr(spec, self.setting.name)
            return list(value) if self.many else value
        return spec.base.flat()[self.setting.name]


@functools.cache
def spec_settings() -> tuple[SpecKey, ...]:
    """Every key a spec accepts besides the top-level ``name`` and ``runner``, in file order: per
    TrainConfig section its swept lists, its other settings, its SweepSpec fields; [search] before
    [execution], as the files are written."""
    spec_fields = [f for f in fields(SweepSpec) if f.metadata["at"]]
    swept = {f.metadata["sweeps"] for f in spec_fields}
    hints = typing.get_type_hints(SweepSpec)
    by_section: dict[str, list[SpecKey]] = {}
    for f in spec_fields:
        section, key = f.metadata["at"].split(".")
        found = Setting(section, key, f.name, hints[f.name], f.default, f.metadata["help"])
        by_section.setdefault(section, []).append(
            SpecKey(found, "spec", sweeps=f.metadata["sweeps"], minimum=f.metadata["minimum"])
        )
    keys: list[SpecKey] = []
    for section in dict.fromkeys(s.section for s in TrainConfig.settings()):
        if section == "execution":
            keys += [SpecKey(s, "search") for s in settings_of(SearchSpec, SEARCH_SECTION)]
        own = by_section.get(section, [])
        keys += [k for k in own if k.many]
        keys += [
            SpecKey(dataclasses.replace(s, default=SWEEP_MEASURE) if s.name == "measure_mode" else s, "base")
            for s in TrainConfig.settings()
            if s.section == section and s.name not in swept
        ]
        keys += [k for k in own if not k.many]
    return tuple(keys)


def spec_keys() -> list[tuple[str, str]]:
    """Every (section, key) a spec accepts besides the top-level ``name`` and ``runner``."""
    return [(key.setting.section, key.setting.key) for key in spec_settings()]


# --- parsing -----------------------------------------------------------------------------
def spec_from_mapping(data: Mapping[str, Any]) -> SweepSpec:
    """Validate a parsed TOML document and build the ``SweepSpec`` (ConfigError naming the key)."""
    keys = {(k.setting.section, k.setting.key): k for k in spec_settings()}
    known: dict[str, set[str]] = {}
    for section, key in keys:
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
            found = keys[(section, key)].setting
            values[(section, key)] = coerce(found.path, value, found.hint, found.none_word)
    given: dict[str, dict[str, Any]] = {"base": {}, "search": {}, "spec": {}}
    for where, spec_key in keys.items():
        path = spec_key.setting.path
        if spec_key.holder == "spec":
            if where not in values and spec_key.setting.default is dataclasses.MISSING:
                raise ConfigError(f"{path} is required (a non-empty list of integers >= 1)", path)
            value = values.get(where, spec_key.setting.default)
            for item in value if spec_key.many else (value,):
                require_int(path, item, minimum=spec_key.minimum)
            given["spec"][spec_key.setting.name] = value
        elif where in values:
            name = spec_key.setting.name if spec_key.holder == "base" else spec_key.setting.key
            given[spec_key.holder][name] = values[where]
    if given["spec"]["ensemble"] and data.get("runner", DEFAULT_RUNNER) != DEFAULT_RUNNER:
        raise ConfigError(
            f"execution.ensemble trains with the empirical engine; runner must be {DEFAULT_RUNNER!r}", "runner"
        )
    train = {"measure_mode": SWEEP_MEASURE, **given["base"]}
    if train.get("steps", 1) < 1:
        raise ConfigError(f"protocol.steps must be >= 1, got {train['steps']}", "protocol.steps")
    lists = given["spec"]
    spec = SweepSpec(
        base=_train_config(
            train, lists["depths"][0], lists["widths"][0], lists["init_seeds"][0], lists["sgd_seeds"][0]
        ),
        search=SearchSpec(**given["search"]),
        runner=data.get("runner", DEFAULT_RUNNER),
        name=data.get("name", ""),
        **lists,
    )
    for depth in spec.depths:  # every architecture / depth / width combination is checked up front
        for width in spec.widths:
            _train_config(train, depth, width, spec.init_seeds[0], spec.sgd_seeds[0])
    return spec


def _train_config(train: Mapping[str, Any], depth: int, width: int, seed_init: int, seed_sgd: int) -> TrainConfig:
    """The TrainConfig of one point; an error about a swept setting names the spec's list."""
    try:
        return TrainConfig.build(**train, depth=depth, width=width, seed_init=seed_init, seed_sgd=seed_sgd)
    except ConfigError as error:
        where = _swept_path().get(error.parameter or "")
        raise ConfigError(f"{where}: {error}", where) if where else error from None


@functools.cache
def _swept_path() -> dict[str, str]:
    """{TrainConfig setting's path: the spec list that sweeps it}, e.g. model.depth -> model.depths."""
    paths = {s.name: s.path for s in TrainConfig.settings()}
    return {paths[k.sweeps]: k.setting.path for k in spec_settings() if k.many}


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
    settings = {(k.setting.section, k.setting.key): k.setting for k in spec_settings()}
    lines = [f"name = {_toml_value(data.pop('name'))}", f"runner = {_toml_value(data.pop('runner'))}"]
    for section, content in data.items():
        lines += ["", f"[{section}]"]
        for key, value in content.items():
            shown = settings[(section, key)].shown(value)
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
    """Short stable hash of a run family: every TrainConfig setting by its flat name (``config.flat()``)
    but the ``RESULT_NEUTRAL_FIELDS``, and ``barrier_set`` only where it moves the barrier off the
    evaluation set (so configurations from before that setting existed keep their hash), and the runner."""
    off_eval_set = config.measurement.barrier and not config.barrier_on_eval_set
    neutral = RESULT_NEUTRAL_FIELDS + (() if off_eval_set else ("barrier_set",))
    fields_hashed = {name: value for name, value in config.flat().items() if name not in neutral}
    text = json.dumps({"config": fields_hashed, "runner": runner}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def search_key(search: SearchSpec) -> str:
    """Short stable hash of the search settings; ``lookahead`` enters only when on, so a plain
    search keeps the key it had before the option existed (its results directories resume)."""
    settings = asdict(search)
    if not settings["lookahead"]:
        del settings["lookahead"]
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
