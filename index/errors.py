"""Errors a user can cause; the CLI prints them as one line, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix; the message says what and what to do."""


class LoadError(UserError):
    """A bulletin file that cannot be read; names the file and why."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UpdateBusy(UserError):
    """Another process holds the data directory's update lock."""
