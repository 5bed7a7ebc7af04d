"""One runner for searches over c whose runs are looked up in a store, computed if missing, and stored.

Search s follows its ``earlyphase.core.search`` plan over the grid of c; all searches advance in
lockstep (``earlyphase.empirical.ensemble.search.run_lockstep``: each round every unfinished
search asks for its next grid index and, with ``lookahead`` L > 1, the L - 1 it would ask for
next if none of them set a flag). The runs a round requests are read from the ``RunStore`` when
it has them; the others go to ``compute`` together (one ``run_at_c`` each, or one ensemble).
A run enters its search's result in the search's own order, and only then is it saved and
counted: a speculative run the search never asks for is dropped. So a search resumed after a
kill replays its stored runs and continues where it stopped, and every search takes the path
``earlyphase.core.search.run_search`` would (docs/PROTOCOL.md section 3).

Stores: ``earlyphase.empirical.sweep.store.PointRuns`` (a sweep's results directory) and
``MemoryStore`` (nothing kept beyond the process: benchmarks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from earlyphase.core.search import SearchPlan, SearchResult, flags_of
from earlyphase.core.trajectory import Trajectory
from earlyphase.empirical.ensemble.search import run_lockstep

RunKey = tuple[int, int]
"""(search number, grid index): the run at c = grid.c(index) of search ``number``."""


class RunStore(Protocol):
    """Where the runs of the searches are kept between (and across) invocations."""

    def has_run(self, key: RunKey) -> bool: ...

    def load(self, key: RunKey) -> Trajectory: ...

    def save(self, key: RunKey, record: Trajectory) -> None: ...


@dataclass
class MemoryStore:
    """A ``RunStore`` in memory (starts empty; gone with the process)."""

    records: dict[RunKey, Trajectory] = field(default_factory=dict)

    def has_run(self, key: RunKey) -> bool:
        return key in self.records

    def load(self, key: RunKey) -> Trajectory:
        return self.records[key]

    def save(self, key: RunKey, record: Trajectory) -> None:
        self.records[key] = record


@dataclass(frozen=True)
class SearchRuns:
    """One finished search: its result, the runs computed now and loaded from the store,
    lambda_H0, L_0 of its runs (None if it evaluated none), and ``hvps``: the Hessian-vector
    products of the runs computed now, each counted once (their steps' ``Trajectory.step_hvps``,
    plus the lambda_H0 solve, ``config["lambda0_hvps"]``, once if any run was computed)."""

    result: SearchResult
    computed: int
    loaded: int
    lambda0: float | None
    loss0: float | None
    hvps: int = 0


@dataclass
class _Tally:
    computed: int = 0
    loaded: int = 0
    lambda0: float | None = None
    loss0: float | None = None
    step_hvps: int = 0
    lambda0_hvps: int = 0

    @property
    def hvps(self) -> int:
        return self.step_hvps + (self.lambda0_hvps if self.computed else 0)


def run_searches(
    plans: Sequence[SearchPlan],
    store: RunStore,
    compute: Callable[[list[RunKey]], list[Trajectory]],
    epsilon: float,
    lookahead: int = 1,
) -> list[SearchRuns]:
    """Drive every plan to its end; ``compute(keys)`` returns the records of runs the store lacks
    (one per key, in order). ``epsilon``: the flags' tolerance (``earlyphase.core.search.flags_of``)."""
    tallies = [_Tally() for _ in plans]

    def evaluate(requests: list[RunKey]) -> list[tuple[Trajectory, bool]]:
        """(record, computed now) per request."""
        missing = [key for key in requests if not store.has_run(key)]
        computed = dict(zip(missing, compute(missing) if missing else [], strict=True))
        return [(computed[key], True) if key in computed else (store.load(key), False) for key in requests]

    def consume(number: int, index: int, run: tuple[Trajectory, bool]) -> None:
        record, is_new = run
        tally = tallies[number]
        if is_new:
            store.save((number, index), record)
            tally.computed += 1
            tally.step_hvps += record.step_hvps
            tally.lambda0_hvps = int(record.config.get("lambda0_hvps", 0))
        else:
            tally.loaded += 1
        tally.lambda0, tally.loss0 = record.lambda0, record.loss0

    results = run_lockstep(plans, evaluate, lambda run: flags_of(run[0], epsilon), lookahead, consume)
    return [SearchRuns(result, t.computed, t.loaded, t.lambda0, t.loss0, t.hvps) for result, t in zip(results, tallies)]
