"""Everything a sweep needs, checked on this machine before its results directory is created.

``preflight(spec)`` resolves what ``spec_from_mapping`` cannot see from the file alone: the
dataset name (with a suggestion for a near miss such as "fashion-mnist"), the data files
(located and read once, which also fills the dataset's cache for the workers), n_train against
the dataset's size, and the device. A refused spec raises ConfigError in one line naming the
spec key; nothing is written. With a custom runner the data are the runner's business and only
the device is checked; with a remote cluster (``this_machine_runs=False``) neither the device nor
the data of this machine say anything about the workers', so both are left to the workers.
"""

from __future__ import annotations

import difflib

from earlyphase.core.validate import ConfigError
from earlyphase.empirical.sweep.spec import DEFAULT_RUNNER, SweepSpec


def preflight(spec: SweepSpec, this_machine_runs: bool = True) -> None:
    """Raise ConfigError (one line, naming the spec key) if a run of ``spec`` cannot start here."""
    if not this_machine_runs:
        return
    from earlyphase.empirical.training import load_training_data, resolve_device

    if spec.runner == DEFAULT_RUNNER:
        check_dataset_name(spec.base.data.dataset)
        try:
            load_training_data(spec.base)
        except ValueError as error:
            raise ConfigError(f"data ({_data_keys(spec)}): {one_line(error)}", "data") from None
    if spec.runner == DEFAULT_RUNNER or spec.base.execution.device != "cpu":
        try:
            resolve_device(spec.base.execution.device)
        except (ValueError, RuntimeError) as error:
            raise ConfigError(f"execution.device: {one_line(error)}", "execution.device") from None


def check_dataset_name(name: str) -> str:
    """``name`` if the data loader knows it, else ConfigError listing the names (and the nearest)."""
    from earlyphase.empirical.data.load import DATASET_NAMES

    if name in DATASET_NAMES:
        return name
    near = difflib.get_close_matches(name.replace("-", "_").lower(), DATASET_NAMES, n=1, cutoff=0.6)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    raise ConfigError(f"data.dataset must be one of {sorted(DATASET_NAMES)}, got {name!r}{hint}", "data.dataset")


def one_line(error: BaseException) -> str:
    """The message of ``error`` on one line (a multi-line list of searched places joined by spaces)."""
    return " ".join(part.strip() for part in str(error).splitlines() if part.strip())


def _data_keys(spec: SweepSpec) -> str:
    config = spec.base
    keys = [
        f"dataset = {config.data.dataset!r}",
        f"data_path = {config.data.data_path!r}",
        f"n_train = {config.data.n_train!r}",
    ]
    return "data." + ", ".join(keys)
