"""Domain errors with stable codes, mapped to HTTP answers by the error middleware."""

from __future__ import annotations


class AppError(Exception):
    """A failure the client caused or may see: status, stable code, human message."""

    def __init__(self, status: int, code: str, message: str,
                 *, fields: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}


def bad_request(code: str, message: str, **fields: str) -> AppError:
    return AppError(400, code, message, fields=fields)


def forbidden(code: str = "forbidden", message: str = "You may not do that.") -> AppError:
    return AppError(403, code, message)


def not_found(code: str = "not_found", message: str = "Not found.") -> AppError:
    return AppError(404, code, message)


def conflict(code: str, message: str) -> AppError:
    return AppError(409, code, message)
