"""The original hub API (``/api/v1/sync/<peer>/bundle|status``), as the original's clients
speak it.

What the original really sends and answers is recorded in docs/federation.md ("Mixing
with original (v1) nodes and hubs"); in short:

- push: ``multipart/form-data`` with one file field ``bundle`` (or, from our own older
  nodes, the tar.gz as the raw body), ``Authorization: Bearer`` and ``X-WB-Public-Key``;
  the archive may hold directory entries, every file twice (identical bytes) and
  ``hub_metadata.json``;
- answers: ``202 {"peer", "manifest_digest", "signed_at", "stored_bytes",
  "stored_files", "auto_registered"}``; an untrusted key is ``400 {"detail": {"error":
  "peer_key_mismatch", "message", "peer", "pending_id"}}`` (the bundle waits for the
  operator; ``pending_id`` is the key id to approve); every other error is
  ``{"detail": "<text>"}``, with our stable code beside it in ``{"error": {...}}``.

Verification, trust, storage and the v2 API are the same as for ``/api/v2/bundles``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from hub import ingest as I
from hub import queries as Q
from hub import typedefs as T
from hub.api import _ingest, http_refusal, limits_of, read_body
from hub.errors import HubError, check_code
from hub.web import protocol_status
from protocol.bundle import Bundle
from protocol.containers import CBOR_MEDIA_TYPE, from_cbor, from_targz, to_cbor, to_targz
from protocol.errors import ProtocolError
from protocol.signature import key_id, parse_signature
from service.ids import token_hash

log = logging.getLogger("wb.hub.v1")

#: the multipart field the original client uploads the archive in
FIELD = "bundle"
PUBLIC_KEY_HEADER = "X-WB-Public-Key"
AUTO_HEADER = "X-WB-Auto-Registered"
_RAW_TYPES = I.TARGZ_TYPES | {"", "application/octet-stream"}

V1Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class V1Error(Exception):
    """An answer in the original's error shape; ``detail`` is a text or an object."""

    def __init__(self, status: int, code: str, detail: Any, message: str | None = None):
        check_code(code)
        super().__init__(message or str(detail))
        self.status = status
        self.code = code
        self.detail = detail
        self.message = message or str(detail)


def v1_answer(status: int, code: str, detail: Any, message: str) -> web.Response:
    return web.json_response({"detail": detail,
                              "error": {"code": code, "message": message}}, status=status)


def v1_errors(handler: V1Handler) -> V1Handler:
    """Render every failure of a v1 route in the original's ``{"detail": ...}`` shape
    (with our stable code beside it), never as a 500 with a traceback."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except V1Error as exc:
            return v1_answer(exc.status, exc.code, exc.detail, exc.message)
        except (HubError, I.Refused) as caught:
            exc = http_refusal(caught) if isinstance(caught, I.Refused) else caught
            headers = {"Retry-After": str(exc.extra["retry_after"])} \
                if "retry_after" in exc.extra else None
            resp = v1_answer(exc.status, exc.code, f"{exc.code}: {exc.message}", exc.message)
            if headers:
                resp.headers.update(headers)
            return resp
        except ProtocolError as exc:
            where = f" ({exc.path})" if exc.path else ""
            return v1_answer(protocol_status(exc.code), exc.code,
                             f"{exc.code}: {exc.message}{where}", exc.message + where)

    return wrapped


# ------------------------------------------------------------------------- who is asking

def _public_key(request: web.Request) -> bytes | None:
    raw = request.headers.get(PUBLIC_KEY_HEADER)
    if raw is None:
        return None
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise V1Error(400, "invalid_public_key",
                      f"{PUBLIC_KEY_HEADER} must be the base64 of a 32-byte Ed25519 key")
    return key


async def v1_peer(request: web.Request) -> tuple[T.Peer, str, bool]:
    """The peer named in the path, authenticated by its bearer token: (peer, status,
    auto_registered). An unknown name is 404, or registered *pending* on this first
    request when ``WB_HUB_V1_AUTO_REGISTER`` is on (the admin approves it)."""
    name = request.match_info["peer"]
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        raise V1Error(401, "unauthorized", "Missing or invalid bearer token")
    pool = request.app[T.pool_key]
    hashed = token_hash(token)
    row = await Q.peer_by_token(pool, hashed)
    if row is not None and row["name"] == name:
        if row["status"] == "blocked":
            raise V1Error(403, "peer_blocked", f"Peer {name} is blocked on this hub")
        return (T.Peer(row["name"], row["kind"], row["max_bundle_bytes"],
                       row["rate_per_minute"]), row["status"], False)
    if await Q.get_peer(pool, name) is not None:
        raise V1Error(401, "unauthorized", f"Invalid token for peer {name}")
    if not request.app[T.options_key].v1_auto_register:
        raise V1Error(404, "unknown_peer", f"Unknown peer {name}")
    if row is not None:
        raise V1Error(401, "unauthorized",
                      "this token belongs to another peer; a new peer needs its own")
    key = _public_key(request)
    if key is None:
        raise V1Error(404, "unknown_peer",
                      f"Unknown peer {name} (auto-registration needs {PUBLIC_KEY_HEADER})")
    if len(token) < 16:
        raise V1Error(401, "unauthorized", "auto-registration needs a token of at least "
                                           "16 characters")
    if not await Q.add_pending_peer(pool, name, hashed):
        raise V1Error(400, "invalid_peer",
                      f"cannot register peer {name}: the name is taken or not allowed "
                      "(lowercase letters, digits, '.', '_' or '-')")
    log.warning("v1 peer auto-registered, pending approval",
                extra={"peer": name, "key_id": key_id(key)})
    return T.Peer(name, "node", None, None), "pending", True


# ------------------------------------------------------------------------- push

async def _read_upload(request: web.Request, cap: int) -> bytes:
    """The archive: the ``bundle`` field of a multipart form, or the raw body; read as a
    stream and refused with 413 as soon as it exceeds ``cap``."""
    ctype = request.content_type.lower()
    if ctype == "multipart/form-data":
        try:
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if getattr(part, "name", None) != FIELD:
                    await part.release()
                    continue
                chunks: list[bytes] = []
                size = 0
                while chunk := await part.read_chunk(1 << 16):  # type: ignore[union-attr]
                    size += len(chunk)
                    if size > cap:
                        raise HubError(413, "bundle_too_large", f"upload exceeds limit {cap}")
                    chunks.append(chunk)
                return b"".join(chunks)
        except (ValueError, AssertionError, KeyError) as exc:
            raise V1Error(400, "malformed_multipart", f"unreadable multipart body: {exc}") \
                from None
        raise V1Error(422, "missing_field",
                      [{"type": "missing", "loc": ["body", FIELD], "msg": "Field required",
                        "input": None}],
                      f"the multipart form has no {FIELD!r} file field")
    if ctype in _RAW_TYPES or ctype in (CBOR_MEDIA_TYPE, "application/cbor"):
        return await read_body(request, cap)
    raise V1Error(415, "unsupported_media_type",
                  f"send multipart/form-data with a {FIELD!r} file, or application/gzip, "
                  f"not {ctype}")


def _decode(data: bytes, content_type: str, limits: Any) -> Bundle:
    """The bundle in a v1 upload: tar.gz as the original writes it (directory entries,
    identical duplicates and ``hub_metadata.json`` tolerated), or our CBOR envelope when
    the body says it is one."""
    if content_type in (CBOR_MEDIA_TYPE, "application/cbor"):
        return from_cbor(data, limits)
    return from_targz(data, limits, original_hub=True)


@v1_errors
async def push(request: web.Request) -> web.Response:
    peer, status, auto = await v1_peer(request)
    app = request.app
    limits = limits_of(app, peer)
    data = await _read_upload(request, limits.envelope_bytes)
    bundle = await asyncio.to_thread(_decode, data, request.content_type.lower(), limits)
    sig = parse_signature(bundle.sig)
    claimed = _public_key(request)
    if claimed is not None and claimed != sig.public_key:
        raise V1Error(400, "public_key_mismatch",
                      f"{PUBLIC_KEY_HEADER} is key {key_id(claimed)} but the bundle is "
                      f"signed by {sig.key_id}")
    stored, _ = I.public_only(bundle)
    files = stored.to_files()
    envelope = await asyncio.to_thread(to_cbor, bundle)
    if status == "pending":
        outcome = await _park(app, peer, envelope, limits)
    else:
        outcome = await _ingest(request, peer, CBOR_MEDIA_TYPE, data=envelope)
    body = outcome.body
    if outcome.result == "pending":
        raise V1Error(400, "peer_key_mismatch", {
            "error": "peer_key_mismatch",
            "message": f"key {body['key_id']} is not trusted for this peer yet; the bundle "
                       "waits for the hub admin's approval",
            "peer": peer.name, "pending_id": body["key_id"]},
            f"key {body['key_id']} awaits the hub admin's approval")
    return web.json_response({
        "peer": peer.name, "manifest_digest": body["digest"], "signed_at": sig.signed_at,
        "stored_bytes": sum(len(v) for v in files.values()), "stored_files": len(files),
        "auto_registered": auto, "status": body["status"]}, status=202)


async def _park(app: web.Application, peer: T.Peer, envelope: bytes, limits: Any) -> I.Outcome:
    """A pending peer's bundle is verified completely and parked, whatever its key:
    nothing it sends is published before the admin approves."""
    limit = app[T.options_key].rate_per_minute
    if not app[T.rate_limiter_key].allow(peer.name, limit):
        raise HubError(429, "rate_limited", f"more than {limit} pushes per minute",
                       extra={"retry_after": 60})
    checked = await I.run_check(envelope, CBOR_MEDIA_TYPE, limits, app[T.executor_key])
    async with app[T.pool_key].acquire() as conn:
        await Q.park_bundle(conn, origin=checked.origin, key_id=checked.key_id,
                            public_key=checked.public_key, peer_name=peer.name,
                            digest=checked.digest, sequence=checked.sequence, hops=0,
                            container=envelope)
    return I.Outcome("pending", {"status": "pending", "digest": checked.digest,
                           "key_id": checked.key_id, "origin": checked.origin})


# ------------------------------------------------------------------------- pull, status

async def _latest(app: web.Application, peer: T.Peer, status: str) -> Any:
    if status == "pending":
        return None
    return await Q.latest_bundle_from(app[T.pool_key], peer.name)


@v1_errors
async def pull(request: web.Request) -> web.Response:
    peer, status, auto = await v1_peer(request)
    row = await _latest(request.app, peer, status)
    if row is None:
        raise V1Error(404, "not_found", f"No bundle stored for peer {peer.name}")
    data = await asyncio.to_thread(lambda: to_targz(from_cbor(bytes(row["container"]),
                                                              I.SCRUB_LIMITS)))
    return web.Response(body=data, content_type="application/gzip", headers={
        "Content-Disposition": f"attachment; filename={peer.name}_public_sync.tar.gz",
        AUTO_HEADER: "true" if auto else "false"})


@v1_errors
async def status(request: web.Request) -> web.Response:
    peer, peer_status, _ = await v1_peer(request)
    row = await _latest(request.app, peer, peer_status)
    metadata = None
    file_count = total_bytes = 0
    if row is not None:
        bundle = from_cbor(bytes(row["container"]), I.SCRUB_LIMITS)
        files = bundle.to_files()
        file_count, total_bytes = len(files), sum(len(v) for v in files.values())
        metadata = {"peer": peer.name, "manifest_digest": row["digest"],
                    "signed_at": parse_signature(bundle.sig).signed_at,
                    "stored_at": row["received_at"].isoformat()}
    return web.json_response({
        "peer": peer.name, "has_bundle": row is not None, "metadata": metadata,
        "file_count": file_count, "total_bytes": total_bytes,
        # ours, kept for the WhiteBalloon nodes that read them
        "digest": row["digest"] if row else None,
        "origin": row["origin"] if row else None,
        "sequence": row["sequence"] if row else None,
        "records": row["record_count"] if row else 0,
        "updated_at": row["received_at"].isoformat() if row else None,
        "pending": peer_status == "pending"})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v1/sync/{peer}/bundle", push, name="v1_push")
    r.add_get("/api/v1/sync/{peer}/bundle", pull, name="v1_pull")
    r.add_get("/api/v1/sync/{peer}/status", status, name="v1_status")
