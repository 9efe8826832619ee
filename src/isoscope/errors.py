"""Errors a user can cause.

Every error that bad input can trigger is an :class:`IsoscopeError` (or a
subclass) whose message is one clear sentence. The command-line layer prints
that sentence and exits with a non-zero code instead of a traceback.
"""

from __future__ import annotations


class IsoscopeError(Exception):
    """An error caused by user input; its message is one sentence for the user."""

    exit_code: int = 2


class InputError(IsoscopeError, ValueError):
    """Bad input data: wrong shape, NaN/Inf values, too few points, malformed files."""


class ModelNotAvailableError(IsoscopeError):
    """A model name or path that cannot be loaded offline."""


class StoreError(IsoscopeError):
    """A missing, damaged, incomplete or locked embedding store."""


class StoreLockedError(StoreError):
    """Another process is writing to the store."""


class RunLockedError(IsoscopeError):
    """Another isoscope process is writing to the same run folder."""
