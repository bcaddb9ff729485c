"""Errors of the nightly job; each names the argument or the stage at fault."""

from __future__ import annotations


class NightlyError(Exception):
    """The night cannot run as asked; nothing was written. ``field`` names the bad argument."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ChunkScoringError(Exception):
    """A chunk could not be scored (adapter, index or engine failure); its message names the chunk."""
