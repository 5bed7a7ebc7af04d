"""Control sweeps drawn over a main sweep's phase diagram (docs/PROTOCOL.md section 4).

A control is a second sweep of the same architecture that changes one setting of the main one
(the zero or muP readout, the cross-entropy loss, the authors' protocol). Its seed-averaged
boundaries are drawn over the main diagram, unshaded, and named by the settings in which its
spec differs from the main spec (e.g. "readout = zero"), so a figure says what was changed
without a caption.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from earlyphase.empirical.sweep.spec import RESULT_NEUTRAL_FIELDS, SweepSpec, spec_settings

NOT_A_CONTROL = RESULT_NEUTRAL_FIELDS + ("data_path", "device")
"""Settings that never name a control: where the data lie, which device ran, how records are kept."""


@dataclass(frozen=True)
class Control:
    """A control sweep's seed-averaged boundaries (``seed_average`` rows) and its legend label;
    ``main_values``: the main sweep's values of the settings the control changes (``main_label``)."""

    label: str
    measured: pd.DataFrame
    main_values: tuple[tuple[str, Any], ...] = ()


def spec_difference(main: SweepSpec, control: SweepSpec) -> dict[str, Any]:
    """{"section.key": control value} for every trained setting (a TrainConfig setting, not the
    swept lists, the search or ``NOT_A_CONTROL``) whose value in ``control`` differs from ``main``'s,
    plus "runner" (its last dotted name) when the runners differ."""
    difference: dict[str, Any] = {}
    if main.runner != control.runner:
        difference["runner"] = control.runner.rsplit(".", 1)[-1]
    for key in spec_settings():
        if key.holder != "base" or key.setting.name in NOT_A_CONTROL:
            continue
        value = key.value_in(control)
        if value != key.value_in(main):
            difference[f"{key.setting.section}.{key.setting.key}"] = value
    return difference


def control_label(main: SweepSpec | None, control: SweepSpec | None, fallback: str) -> str:
    """Its "key = value, ..." of ``spec_difference`` (keys without their section); ``fallback``
    when either spec is unknown or the two train the same thing."""
    if main is None or control is None:
        return fallback
    return _label(spec_difference(main, control).items()) or fallback


def main_label(controls: Sequence[Control], fallback: str = "main sweep") -> str:
    """The main sweep's label next to its controls: its own values of every setting they change
    (e.g. "readout = standard"), ``fallback`` when none is known."""
    values = dict(value for control in controls for value in control.main_values)
    return _label(values.items()) or fallback


def _label(settings: Iterable[tuple[str, Any]]) -> str:
    return ", ".join(f"{name.rsplit('.', 1)[-1]} = {value}" for name, value in settings)
