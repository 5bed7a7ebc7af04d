"""The two errors a loader raises; both are ConfigErrors, so the CLI prints them as one message."""

from __future__ import annotations

from earlyphase.core.validate import ConfigError


class DataFileError(ConfigError):
    """A data file exists but is truncated or malformed (the message names the file and the fault)."""

    parameter = "data_path"


class DatasetNotFoundError(FileNotFoundError, ConfigError):
    """No copy of a dataset was found (the message lists every place searched)."""

    parameter = "dataset"
