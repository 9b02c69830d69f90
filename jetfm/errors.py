"""Exceptions raised for bad user input.

Every error a user can cause (a missing branch, a corrupt file, a bad checkpoint) is a
:class:`JetFMError` with a message naming the file and the branch or field, so the CLI can
print one clear line instead of a traceback from deep inside torch or uproot.
"""

from __future__ import annotations


class JetFMError(Exception):
    """Base class for every error caused by user input or environment."""


class DataError(JetFMError, ValueError):
    """Input data is unreadable or inconsistent (names the file and branch)."""


class CheckpointError(JetFMError, OSError):
    """A checkpoint cannot be found, is corrupt, or is in a refused format (pickle)."""


class ConfigError(CheckpointError, ValueError):
    """A config file has a field of the wrong type or value (names the file and the field).

    A :class:`CheckpointError`, and a ``ValueError`` like the config constructors' own
    value checks, so ``except OSError`` and ``except ValueError`` both catch it.
    """


class MissingExtraError(JetFMError, ImportError):
    """An optional dependency group is not installed."""

    def __init__(self, extra: str, what: str):
        super().__init__(
            f"{what} needs the optional dependencies of jetfm[{extra}]: "
            f'pip install "jetfm[{extra}]"'
        )
        self.extra = extra
