"""``GridPlan``'s stopping flags and its chunks (earlyphase.core.search).

Oracles: the indices ``next_index`` returns one call at a time, and ``critical_values`` on every
point of the grid (c_sharp is the smallest flagged c, so a walk that stops at it reads it).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from earlyphase.core import critical_values
from earlyphase.core.search import CGrid, Flags, GridPlan, run_search
from earlyphase.core.validate import ConfigError

GRID = CGrid(0.0, 3.0)  # 31 points
QUIET = Flags(loss_catapult=False, sharpness_catapult=False, diverged=False, barrier=False)


def one_at_a_time(plan: GridPlan, evaluated: dict[int, Flags], count: int) -> tuple[int, ...]:
    """The next ``count`` indices ``next_index`` asks for when none of the runs stops the walk."""
    assumed = dict(evaluated)
    indices: list[int] = []
    while len(indices) < count and (index := plan.next_index(assumed)) is not None:
        indices.append(index)
        assumed[index] = QUIET
    return tuple(indices)


@settings(max_examples=60, deadline=None)
@given(taken=st.integers(0, GRID.size), size=st.integers(1, 40), stop=st.sampled_from([None, "diverged", "barrier"]))
def test_a_chunk_is_what_next_index_asks_for_one_call_at_a_time(taken, size, stop):
    plan = GridPlan(GRID, until=("diverged", "barrier"))
    evaluated = {k: QUIET for k in range(taken)}
    if stop is not None and taken:
        evaluated[taken - 1] = Flags(False, False, stop == "diverged", stop == "barrier")
    chunk = plan.next_chunk(evaluated, size)
    assert chunk == one_at_a_time(plan, evaluated, size)
    if stop is not None and taken:
        assert chunk == ()
    else:
        assert chunk == tuple(range(taken, min(taken + size, GRID.size)))


@settings(max_examples=60, deadline=None)
@given(flags=st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=31, max_size=31))
def test_stopping_at_the_first_sharpness_catapult_keeps_c_sharp(flags):
    """Arbitrary flags: the walk that also stops at the first sharpness catapult reads the c_sharp
    of the whole grid, and stops at it or at the first divergence, whichever comes first."""
    loss_up, sharp_up, diverged = (np.array(column) for column in zip(*flags))
    diverged &= np.arange(GRID.size) % 4 == 3  # some grids diverge, not all at once
    result = run_search(
        GridPlan(GRID, until=("diverged", "sharpness_catapult")),
        lambda k: Flags(bool(loss_up[k] | diverged[k]), bool(sharp_up[k]), bool(diverged[k])),
    )
    everything = critical_values(GRID.values, loss_up | diverged, sharp_up, diverged)
    assert result.critical.c_sharp == everything.c_sharp
    stops = np.flatnonzero(sharp_up | diverged)
    assert result.order == tuple(range((stops[0] if stops.size else GRID.size - 1) + 1))


@pytest.mark.parametrize("until", [(), ("lambda0",), ("diverged", "loss")])
def test_unknown_stopping_flags_are_refused_by_name(until):
    with pytest.raises(ConfigError, match="until") as error:
        GridPlan(GRID, until=until)
    assert error.value.parameter == "until"


def test_a_chunk_needs_a_positive_size():
    with pytest.raises(ConfigError, match="size"):
        GridPlan(GRID).next_chunk({}, 0)
