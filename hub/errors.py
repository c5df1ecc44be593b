"""Hub errors with stable codes, rendered as {"error": {"code", "message"}} (or a page)."""

from __future__ import annotations


class HubError(Exception):
    def __init__(self, status: int, code: str, message: str, *, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}

