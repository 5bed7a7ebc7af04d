"""Many searches over c advanced in lockstep, each round evaluated as ONE ensemble.

The plans of ``earlyphase.core.search`` are pure: the next grid index is a function of the flags
evaluated so far. Each round, every unfinished search asks for its next index k and, with
``lookahead`` L > 1, for the L - 1 indices it would ask for next if none of those runs set a
flag (``speculate``): for the full grid the next L grid points, for a bracketing search its
expansion path (and, while bisecting, the upward half of the tree). All requests of a round go
to ``evaluate`` at once. A search then consumes, in its own order, exactly the indices its plan
asks for; speculative runs it never asks for are dropped. So every search takes the same path,
evaluates the same points and reports the same critical values as ``run_search`` would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from earlyphase.core.search import Flags, SearchPlan, SearchResult, search_result
from earlyphase.core.validate import require_int

Run = TypeVar("Run")

NO_FLAGS = Flags(loss_catapult=False, sharpness_catapult=False, diverged=False, barrier=False)
"""The outcome assumed for speculative points: no catapult, no divergence, no barrier."""


def speculate(plan: SearchPlan, evaluated: dict[int, Flags], count: int) -> list[int]:
    """The plan's next index, then up to count - 1 more it would ask for if each came out ``NO_FLAGS``."""
    assumed = dict(evaluated)
    indices: list[int] = []
    while len(indices) < count and (index := plan.next_index(assumed)) is not None:
        if index in assumed:
            raise RuntimeError(f"search plan asked for grid index {index} twice")
        indices.append(index)
        assumed[index] = NO_FLAGS
    return indices


@dataclass
class _Search(Generic[Run]):
    plan: SearchPlan
    flags: dict[int, Flags] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    pending: dict[int, Run] = field(default_factory=dict)


def run_lockstep(
    plans: Sequence[SearchPlan],
    evaluate: Callable[[list[tuple[int, int]]], list[Run]],
    flags_of_run: Callable[[Run], Flags],
    lookahead: int = 1,
    on_consume: Callable[[int, int, Run], None] | None = None,
) -> list[SearchResult]:
    """Drive every plan to its end; ``evaluate([(search, index), ...])`` returns one run per request.

    ``flags_of_run`` turns a run into its flags; ``on_consume(search, index, run)`` is called
    when a search takes a run into its result (in the search's own order), e.g. to store it.
    Returns one ``SearchResult`` per plan, as ``earlyphase.core.search.run_search`` would.
    """
    require_int("lookahead", lookahead, minimum=1)
    searches: list[_Search[Run]] = [_Search(plan) for plan in plans]
    while True:
        requests: list[tuple[int, int]] = []
        for number, search in enumerate(searches):
            while (index := search.plan.next_index(search.flags)) is not None and index in search.pending:
                run = search.pending.pop(index)
                search.flags[index] = flags_of_run(run)
                search.order.append(index)
                if on_consume is not None:
                    on_consume(number, index, run)
            if index is None:
                search.pending.clear()
            else:
                requests += [
                    (number, k) for k in speculate(search.plan, search.flags, lookahead) if k not in search.pending
                ]
        if not requests:
            break
        for (number, index), run in zip(requests, evaluate(requests), strict=True):
            searches[number].pending[index] = run
    return [search_result(s.plan.grid, tuple(s.order), s.flags) for s in searches]
