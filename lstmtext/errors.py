"""One error hierarchy for everything a user can get wrong.

The command line turns any :class:`LstmtextError` into a single red line and a
non-zero exit code, never a traceback. Library code raises these with enough
context (file, line, option or key) for that one line to be actionable.
"""

from __future__ import annotations

from pathlib import Path


class LstmtextError(Exception):
    """Base class of all errors caused by user input or user-supplied files."""

    exit_code = 1


class DataError(LstmtextError):
    """A data file is missing, unreadable or malformed.

    Args:
        message: What is wrong.
        path: The offending file, if known.
        line: 1-based line number, if known.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.message = message
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
            where += ": "
        super().__init__(where + message)


class ConfigError(LstmtextError):
    """A configuration key is unknown or a value has the wrong type.

    Args:
        message: What is wrong.
        key: The dotted configuration key involved, if any.
    """

    def __init__(self, message: str, key: str | None = None):
        self.key = key
        super().__init__(f"config key '{key}': {message}" if key else message)


class UsageError(LstmtextError):
    """A command-line option has a bad value or options conflict."""

    exit_code = 2


class BundleError(LstmtextError):
    """A model bundle is missing, incomplete, corrupt, unsafe or too new."""


class TrainingError(LstmtextError):
    """Training cannot go on (for example the loss became NaN)."""
