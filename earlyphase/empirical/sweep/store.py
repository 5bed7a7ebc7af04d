"""The results directory of one sweep: spec, one record per run, one summary per search.

    DIR/spec.toml, DIR/spec.json              the validated spec (TOML to rerun it, JSON to compare)
    DIR/runs/POINT/x+3.1000.{parquet,json}    one earlyphase.core.Trajectory per run (c = 2**3.1)
    DIR/searches/POINT.SEARCH.json            the finished search of one point: flags, critical values
    DIR/failed/POINT.SEARCH.json              the error of a search that raised (retried on rerun)
    DIR/lookahead/POINT.KEY.json              a look-ahead search's prediction (earlyphase.empirical.sweep.lookahead_search)
    DIR/index.csv                             one row per run of every finished search
    DIR/critical_values.csv, DIR/critical_values_mean.csv   (earlyphase.empirical.sweep.tables)

POINT names the architecture, depth, width and seeds plus a hash of the whole run
configuration, so a run is reused only by the configuration that produced it; SEARCH hashes
the search settings. Every file is written atomically (temporary file, then rename), and a
run counts as recorded only once its JSON exists (``Trajectory.save`` writes it last): after
a kill a run is either complete or redone, never half-read, never duplicated.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from earlyphase.core.trajectory import Trajectory, _atomic_write, is_complete_record
from earlyphase.core.validate import ConfigError
from earlyphase.empirical.sweep.spec import SweepPoint, SweepSpec, config_key, search_key, spec_from_mapping, to_toml

SPEC_JSON = "spec.json"
SPEC_TOML = "spec.toml"
INDEX_FILE = "index.csv"
LOCK_FILE = ".lock"


@dataclass(frozen=True)
class Store:
    """Paths of one results directory for one spec."""

    root: Path
    spec: SweepSpec

    def point_name(self, point: SweepPoint) -> str:
        config = self.spec.config(point)
        return (
            f"{config.model.arch}_d{point.depth}_w{point.width}_i{point.seed_init}_s{point.seed_sgd}"
            f"_{config_key(config, self.spec.runner)}"
        )

    def run_stem(self, point: SweepPoint, x: float) -> Path:
        """Stem of the record of the run at c = 2**x (``Trajectory.save`` adds .parquet/.json)."""
        return self.root / "runs" / self.point_name(point) / f"x{x:+.4f}"

    def recorded_runs(self, point: SweepPoint) -> int:
        """Number of complete run records of ``point`` (JSON present)."""
        directory = self.root / "runs" / self.point_name(point)
        return sum(1 for _ in directory.glob("x*.json")) if directory.is_dir() else 0

    def _search_file(self, kind: str, point: SweepPoint) -> Path:
        return (
            self.root / kind / f"{self.point_name(point)}.{self.spec.search.method}-{search_key(self.spec.search)}.json"
        )

    def search_path(self, point: SweepPoint) -> Path:
        return self._search_file("searches", point)

    def failure_path(self, point: SweepPoint) -> Path:
        return self._search_file("failed", point)

    def load_search(self, point: SweepPoint) -> dict[str, Any] | None:
        """The finished search summary of ``point``, or None."""
        path = self.search_path(point)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except ValueError as error:  # written atomically, so damaged from outside
            raise ConfigError(
                f"{path}: damaged search summary ({error}); delete it to redo that search from its recorded runs", "out"
            ) from None

    def save_search(self, point: SweepPoint, summary: dict[str, Any]) -> None:
        write_atomic(self.search_path(point), json.dumps(summary, indent=1))
        self.failure_path(point).unlink(missing_ok=True)

    def save_failure(self, point: SweepPoint, message: str) -> None:
        write_atomic(self.failure_path(point), json.dumps({"point": point.__dict__, "error": message}, indent=1))

    def load_failure(self, point: SweepPoint) -> str | None:
        path = self.failure_path(point)
        return json.loads(path.read_text())["error"] if path.is_file() else None

    def remove_temporaries(self) -> int:
        """Delete temporary files left by killed writers (call while holding the lock)."""
        removed = 0
        for path in self.root.rglob(".*.tmp"):
            path.unlink(missing_ok=True)
            removed += 1
        return removed

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold DIR/.lock: one sweep at a time per directory (a lock left by a dead process is taken over)."""
        path = self.root / LOCK_FILE
        owner = f"{socket.gethostname()} {os.getpid()}"
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = path.read_text().split() if path.is_file() else []
            if len(holder) == 2 and holder[0] == socket.gethostname() and _alive(int(holder[1])):
                raise ConfigError(
                    f"results directory {self.root} is in use by process {holder[1]} (remove {path} if stale)", "out"
                ) from None
            path.unlink(missing_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        with os.fdopen(fd, "w") as handle:
            handle.write(owner)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


@dataclass(frozen=True)
class PointRuns:
    """The run records of some points of a ``Store`` as an ``earlyphase.empirical.search_runner.RunStore``:
    key (n, k) is the run of points[n] at c = grid.c(k); recorded once its JSON exists and the
    Parquet beside it is the one written with it."""

    store: Store
    points: tuple[SweepPoint, ...]

    def _stem(self, key: tuple[int, int]) -> Path:
        number, index = key
        return self.store.run_stem(self.points[number], self.store.spec.search.grid.x(index))

    def has_run(self, key: tuple[int, int]) -> bool:
        return is_complete_record(self._stem(key))  # a foreign or missing Parquet: recomputed

    def load(self, key: tuple[int, int]) -> Trajectory:
        return Trajectory.load(self._stem(key))

    def save(self, key: tuple[int, int], record: Trajectory) -> None:
        record.save(self._stem(key))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file, fsync, rename), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, lambda tmp: tmp.write_text(text))


def stored_spec(root: str | Path) -> SweepSpec:
    """The spec kept in an existing results directory (ConfigError if there is none)."""
    path = Path(root) / SPEC_JSON
    if not path.is_file():
        raise ConfigError(f"{root} is not a sweep results directory (no {SPEC_JSON})", "out")
    return spec_from_mapping(json.loads(path.read_text()))


def open_store(root: str | Path, spec: SweepSpec, force_spec: bool = False) -> Store:
    """The store of ``spec`` in ``root``, writing the spec there.

    An existing directory holding a different spec is refused (ConfigError listing the keys
    that differ) unless ``force_spec``; then the new spec replaces it, runs whose whole
    configuration is unchanged are reused and the others are recomputed.
    """
    root = Path(root)
    if (root / SPEC_JSON).is_file():
        old = stored_spec(root)
        changed = _differences(old.identity(), spec.identity())
        if changed and not force_spec:
            raise ConfigError(
                f"results directory {root} holds a different spec ({'; '.join(changed)}); "
                "use another --out, or pass --force-spec to replace it (unchanged runs are kept)",
                "out",
            )
    elif root.exists() and any(root.iterdir()):
        raise ConfigError(
            f"--out {root} exists and is not a sweep results directory (no {SPEC_JSON}); choose an empty or new directory",
            "out",
        )
    write_atomic(root / SPEC_JSON, json.dumps(spec.to_dict(), indent=1))
    write_atomic(root / SPEC_TOML, to_toml(spec))
    return Store(root, spec)


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changes = []
    for section in sorted(set(old) | set(new)):
        a, b = old.get(section), new.get(section)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += [
                f"{section}.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)
            ]
        elif a != b:
            changes.append(f"{section}: {a!r} -> {b!r}")
    return changes
