"""The sync feature's domain error, in its own module so that every sync module can raise it
without importing the importer (which would tie them into an import cycle)."""

from __future__ import annotations


class SyncError(Exception):
    """A verified bundle the node refuses (equivocation, own origin...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
