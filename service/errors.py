"""Stable error codes: each app keeps its registry (code -> HTTP status and meaning) next to
its error class; this is the one check that a raised code is registered, and
:class:`CodedError` the one shape of an answered failure. The protocol's codes count as
registered everywhere (verification failures pass through unchanged)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

from protocol.errors import ERROR_DESCRIPTIONS

#: Refuse unregistered codes at once (the test suite sets it; ``python3 -X dev`` turns it
#: on). In production an unknown code is answered as given, never turned into a 500.
STRICT = sys.flags.dev_mode


def code_checker(component: str, registry: Mapping[str, object],
                 where: str) -> Callable[[str], str]:
    """``check_code(code) -> code`` for one app's ``registry``; ``where`` says where a new
    code must be added (named in the error a strict run raises)."""

    def check_code(code: str) -> str:
        if STRICT and code not in registry and code not in ERROR_DESCRIPTIONS:
            raise ValueError(f"unregistered {component} error code {code!r}: add it to {where}")
        return code

    return check_code


class CodedError(Exception):
    """A failure answered to the client: HTTP status, stable code, human message.

    The node's ``AppError``, the hub's ``HubError`` and the route policy's ``PolicyDenied``
    are this shape; each app's subclass checks the code against its own registry."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
