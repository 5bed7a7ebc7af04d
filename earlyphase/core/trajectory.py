"""The per-step trajectory record shared by theory and experiment.

One ``Trajectory`` is one run at one learning rate eta = c / lambda_H0. Row t holds the
state AFTER t optimisation steps (row 0 is the initialisation). Quantities that were not
measured at a step are NaN (e.g. sharpness in a long run measured every k steps, the NTK
eigenvalue when not requested, everything after divergence).

On disk a trajectory is two files with a common stem: ``STEM.parquet`` (the per-step
columns) and ``STEM.json`` (scalars, configuration, seeds, library versions and the loss
convention). Both are first written in full to temporary files (a full disk fails here and
leaves any previous record untouched, temporaries removed), then renamed into place, JSON last,
so a record whose JSON exists is complete. The JSON holds the sha256 of its Parquet file:
``load`` refuses a Parquet that is not the one written with the JSON (``RecordMismatchError``),
and ``is_complete_record`` says whether a stem holds a whole, matching record.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from earlyphase.core.conventions import DEFAULT_LOSS_MAX, is_diverged
from earlyphase.core.provenance import library_versions
from earlyphase.core.validate import ConfigError

STEP_COLUMNS = (
    "step",
    "loss",
    "batch_loss",
    "sharpness",
    "sharpness_residual",
    "hvp_count",
    "ntk_top",
    "accuracy",
)
"""Per-step columns. ``loss``: loss on the fixed evaluation set; ``batch_loss``: loss of the
SGD batch used at that step (NaN at t = 0 and for theory models); ``sharpness``: top
Hessian eigenvalue lambda_H_t on the measurement batch; ``sharpness_residual``:
||Hv - lambda v|| / |lambda|; ``hvp_count``: Hessian-vector products spent on that solve
(row 0 of an engine's record: 0, since lambda_H0 is solved once for every run of a
configuration and its count kept once, as ``config["lambda0_hvps"]``);
``ntk_top``: lambda_max(Theta) / (B k) on the measurement batch; ``accuracy``: on the
evaluation set."""


class RecordMismatchError(ConfigError):
    """A record's Parquet file is not the one written with its JSON (another run's, or damaged)."""

    parameter = "record"


@dataclass(frozen=True, eq=False)
class Trajectory:
    """One early-training run: per-step columns plus everything needed to reproduce it."""

    c: float
    eta: float
    steps: pd.DataFrame
    loss_convention: str
    loss_max: float = DEFAULT_LOSS_MAX
    barrier_loss: float = math.nan
    """max_s L((1 - s) theta_0 + s theta_T) over s in [0, 1]; NaN if not computed."""
    barrier_loss0: float = math.nan
    """L(theta_0) on the set the barrier path was evaluated on, when that is not the evaluation set
    of ``loss`` (NaN: it is; the barrier's reference is then L_0). See ``barrier_reference``."""
    config: Mapping[str, Any] = field(default_factory=dict)
    seeds: Mapping[str, int] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=library_versions)

    def __post_init__(self) -> None:
        missing = [name for name in STEP_COLUMNS if name not in self.steps.columns]
        if missing:
            raise ValueError(f"steps is missing columns {missing}; expected {list(STEP_COLUMNS)}")

    @classmethod
    def from_arrays(cls, c: float, eta: float, loss: Any, loss_convention: str, **kwargs: Any) -> Trajectory:
        """Build a record from per-step arrays; any of STEP_COLUMNS not given is NaN.

        ``loss`` (length T + 1) fixes the number of rows; other per-step arrays are passed
        by their column name, scalars (barrier_loss, config, seeds, ...) by field name.
        """
        loss = np.asarray(loss, dtype=float)
        columns: dict[str, np.ndarray] = {"step": np.arange(loss.shape[0]), "loss": loss}
        for name in STEP_COLUMNS[2:]:
            values = kwargs.pop(name, None)
            columns[name] = np.full(loss.shape[0], np.nan) if values is None else np.asarray(values, dtype=float)
        return cls(c=float(c), eta=float(eta), steps=pd.DataFrame(columns), loss_convention=loss_convention, **kwargs)

    # --- derived quantities -------------------------------------------------------
    @property
    def num_steps(self) -> int:
        """T, the number of optimisation steps recorded."""
        return len(self.steps) - 1

    @property
    def loss(self) -> np.ndarray:
        return self.steps["loss"].to_numpy(dtype=float)

    @property
    def sharpness(self) -> np.ndarray:
        return self.steps["sharpness"].to_numpy(dtype=float)

    @property
    def loss0(self) -> float:
        return float(self.loss[0])

    @property
    def lambda0(self) -> float:
        return float(self.sharpness[0])

    @property
    def barrier_reference(self) -> float:
        """What ``barrier_loss`` is compared with (docs/PROTOCOL.md section 3): L(theta_0) on the
        barrier's own set, ``barrier_loss0``, or L_0 where that is NaN."""
        return self.loss0 if math.isnan(self.barrier_loss0) else self.barrier_loss0

    @property
    def step_hvps(self) -> int:
        """Hessian-vector products spent on the steps t >= 1: sum of hvp_count over rows 1..T (NaN: none)."""
        return int(np.nansum(self.steps["hvp_count"].to_numpy(dtype=float)[1:]))

    @property
    def divergence_step(self) -> int | None:
        """First step t >= 1 with a non-finite loss or L_t > L_max, or None (L_0 is the start)."""
        flags = is_diverged(self.loss[1:], self.loss_max)
        return int(np.argmax(flags)) + 1 if flags.any() else None

    @property
    def diverged(self) -> bool:
        return self.divergence_step is not None

    # --- persistence --------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        """The scalar part of the record, as written to ``STEM.json``."""
        return {
            "c": self.c,
            "eta": self.eta,
            "loss0": self.loss0,
            "lambda0": self.lambda0,
            "diverged": self.diverged,
            "divergence_step": self.divergence_step,
            "loss_convention": self.loss_convention,
            "loss_max": self.loss_max,
            "barrier_loss": None if math.isnan(self.barrier_loss) else self.barrier_loss,
            "barrier_loss0": None if math.isnan(self.barrier_loss0) else self.barrier_loss0,
            "config": dict(self.config),
            "seeds": dict(self.seeds),
            "versions": dict(self.versions),
        }

    def save(self, stem: str | os.PathLike[str]) -> Path:
        """Write ``STEM.parquet`` and ``STEM.json`` (with the Parquet's sha256) to temporary files,
        then rename them into place, JSON last; return the JSON path. On a failed write nothing
        is replaced and the temporaries are removed."""
        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        parquet = stem.with_name(stem.name + ".parquet")
        meta = stem.with_name(stem.name + ".json")
        parquet_tmp, meta_tmp = _temporary(parquet), _temporary(meta)
        try:
            self.steps.to_parquet(parquet_tmp, index=False)
            _fsync(parquet_tmp)
            metadata = {**self.metadata(), "parquet_sha256": _sha256(parquet_tmp)}
            meta_tmp.write_text(json.dumps(metadata, indent=2, default=_json_default))
            _fsync(meta_tmp)
            os.replace(parquet_tmp, parquet)
            os.replace(meta_tmp, meta)
        finally:
            parquet_tmp.unlink(missing_ok=True)
            meta_tmp.unlink(missing_ok=True)
        return meta

    @classmethod
    def load(cls, stem: str | os.PathLike[str]) -> Trajectory:
        """Read a record written by ``save`` (give the stem, or either file's path)."""
        stem = Path(stem)
        if stem.suffix in (".json", ".parquet"):
            stem = stem.with_suffix("")
        meta = json.loads(stem.with_name(stem.name + ".json").read_text())
        parquet = stem.with_name(stem.name + ".parquet")
        if not _parquet_matches(parquet, meta):
            raise RecordMismatchError(
                f"record {stem}: {parquet.name} is not the Parquet written with {stem.name}.json "
                "(its sha256 differs: another run's file, or a damaged one); delete both to recompute"
            )
        steps = pd.read_parquet(parquet)
        barrier, barrier0 = meta.get("barrier_loss"), meta.get("barrier_loss0")
        return cls(
            c=meta["c"],
            eta=meta["eta"],
            steps=steps,
            loss_convention=meta["loss_convention"],
            loss_max=meta["loss_max"],
            barrier_loss=math.nan if barrier is None else barrier,
            barrier_loss0=math.nan if barrier0 is None else barrier0,
            config=meta["config"],
            seeds=meta["seeds"],
            versions=meta["versions"],
        )


def is_complete_record(stem: str | os.PathLike[str]) -> bool:
    """Whether ``STEM.json`` exists and ``STEM.parquet`` is the file written with it (records
    older than the stored digest: whether the Parquet exists)."""
    stem = Path(stem)
    meta_path = stem.with_name(stem.name + ".json")
    if not meta_path.is_file():
        return False
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and _parquet_matches(stem.with_name(stem.name + ".parquet"), meta)


def _parquet_matches(parquet: Path, meta: Mapping[str, Any]) -> bool:
    if not parquet.is_file():
        return False
    expected = meta.get("parquet_sha256")
    return expected is None or _sha256(parquet) == expected


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _atomic_write(path: Path, write: Any) -> None:
    """Write ``path`` through ``write(temporary)``, fsync, rename; a failed write leaves ``path`` as it was."""
    tmp = _temporary(path)
    try:
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a record's JSON")
