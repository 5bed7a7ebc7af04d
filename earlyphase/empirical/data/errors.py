"""The two errors a loader raises; both are ValueErrors, so the CLI prints them as one line."""

from __future__ import annotations


class DataFileError(ValueError):
    """A data file exists but is truncated or malformed (the message names the file and the fault)."""


class DatasetNotFoundError(FileNotFoundError, ValueError):
    """No copy of a dataset was found (the message lists every place searched)."""
