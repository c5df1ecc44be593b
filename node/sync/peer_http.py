"""Talking HTTP to a hub peer: timeouts, retries with back-off, headers, error answers.

Used by the transport (push, pull), the gap filler and repair. Every call has a timeout
and is retried with exponential backoff on connection errors, 429 and 5xx answers. The
original v1 hub's upload form and key header are here too.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from node.sync.errors import SyncError

RETRIES = 3
BACKOFF = 0.5
V1_FIELD = "bundle"                  # the original hub's upload form field
V1_KEY_HEADER = "X-WB-Public-Key"    # the original hub reads the signing key from it


class TransientError(Exception):
    pass


async def with_retries(fn: Callable[[], Awaitable[Any]], *, retries: int = RETRIES,
                       backoff: float = BACKOFF) -> Any:
    for attempt in range(retries):
        try:
            return await fn()
        except (TimeoutError, TransientError, aiohttp.ClientConnectionError):
            if attempt == retries - 1:
                raise
            await asyncio.sleep(backoff * (2 ** attempt))
    raise AssertionError("unreachable")


def headers(peer: Any, content_type: str | None = None) -> dict[str, str]:
    h = {"User-Agent": "WhiteBalloon-node"}
    if peer["token"]:
        h["Authorization"] = f"Bearer {peer['token']}"
    if content_type:
        h["Content-Type"] = content_type
    return h


def json_headers(peer: Any) -> dict[str, str]:
    return {**headers(peer), "Accept": "application/json"}


async def request(session: aiohttp.ClientSession, method: str, url: str, **kw: Any
                  ) -> tuple[int, bytes, str]:
    """``(status, body, content type)``; 429 and 5xx are retried, then raised as
    ``TransientError``."""
    async def once() -> tuple[int, bytes, str]:
        async with session.request(method, url, **kw) as resp:
            body = await resp.read()
            if resp.status >= 500 or resp.status == 429:
                raise TransientError(f"{resp.status} from {url}")
            return resp.status, body, resp.headers.get("Content-Type", "")
    return await with_retries(once)


def client(timeout: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout, connect=10))


# --------------------------------------------------------------------------- v1 hub

def multipart(archive: bytes) -> tuple[bytes, str]:
    """The original client's upload form: one file field ``bundle`` (bytes, so a retry
    can send it again)."""
    boundary = f"wb-{os.urandom(12).hex()}"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{V1_FIELD}\"; "
            f"filename=\"bundle.tar.gz\"\r\nContent-Type: application/gzip\r\n\r\n")
    body = head.encode() + archive + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def v1_headers(peer: Any, public_key: bytes, content_type: str | None = None
               ) -> dict[str, str]:
    return {**headers(peer, content_type),
            V1_KEY_HEADER: base64.b64encode(public_key).decode()}


def v1_url(peer: Any, what: str) -> str:
    return f"{peer['location']}/api/v1/sync/{peer['name']}/{what}"


# --------------------------------------------------------------------------- answers

def answer(body: bytes) -> dict[str, Any]:
    """A JSON object answer, or ``{}``."""
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def error_of(body: bytes) -> dict[str, Any]:
    """The ``error`` object of a JSON error answer, or ``{}``."""
    err = answer(body).get("error", {})
    return err if isinstance(err, dict) else {}


def answer_error(status: int, body: bytes) -> tuple[str, str, str | None]:
    """``(code, message, pending_id)`` of a hub's error answer, in our shape
    (``{"error": {"code", "message"}}``) or the original v1 hub's (``{"detail": text}``,
    ``{"detail": {"error", "message", "pending_id"}}``, or FastAPI's list for 422)."""
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    code: str | None = None
    message = ""
    pending: str | None = None
    if isinstance(value, dict):
        detail, err = value.get("detail"), value.get("error")
        if isinstance(detail, dict):
            code = str(detail.get("error") or detail.get("code") or "") or None
            message = str(detail.get("message", ""))
            pending = None if detail.get("pending_id") is None else str(detail["pending_id"])
        elif isinstance(detail, list):
            code = "upload_refused"
            message = "; ".join(f"{'.'.join(str(x) for x in d.get('loc', []))}: "
                                f"{d.get('msg', '')}" for d in detail if isinstance(d, dict))
        elif isinstance(detail, str):
            message = detail
        if isinstance(err, dict):
            code = err.get("code") or code
            message = message or str(err.get("message", ""))
    if code is None:
        code = {401: "unauthorized", 403: "peer_blocked", 404: "not_found",
                413: "bundle_too_large", 422: "upload_refused"}.get(status, "hub_error")
    return code, message or body[:200].decode("utf-8", "replace"), pending


def check(status: int, body: bytes, peer: Any = None) -> None:
    """Raise ``SyncError`` for an error answer (with advice for the v1 hub's refusals)."""
    if status < 300:
        return
    code, message, pending = answer_error(status, body)
    if peer is not None and peer["api"] == "v1":
        name = peer["name"]
        if code == "peer_key_mismatch":
            raise SyncError(code, f"hub answered {status}: it holds the bundle until its "
                                  f"admin approves this node's key (pending id {pending}); "
                                  f"ask them to approve it, then push again ({message})")
        if status == 401:
            raise SyncError("unauthorized", f"hub answered 401: it does not take this token "
                                            f"for peer {name} ({message}); fix it with "
                                            f"`wb sync peers remove {name}` and add it again "
                                            f"with --token")
        if status == 404 and code in ("not_found", "unknown_peer"):
            raise SyncError("unknown_peer", f"hub answered 404: it has no peer named {name} "
                                            f"({message}); ask its admin to register it")
    raise SyncError(code, f"hub answered {status}: {message}")
