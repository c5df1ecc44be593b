"""HTTP side of sync: the inbox a hub pushes bundles to."""

from __future__ import annotations

from aiohttp import web

from node import typedefs as T
from node.errors import AppError
from node.sync import peers as P
from node.sync.importer import SyncError
from node.sync.service import run_import
from node.web import csrf_exempt
from protocol.containers import from_cbor
from protocol.errors import ProtocolError
from service.limits import BodyTooLarge, read_capped


@csrf_exempt
async def inbox(request: web.Request) -> web.Response:
    """A hub peer delivers one CBOR bundle; every origin signature is verified here.

    A machine endpoint: every answer, errors included, is JSON whatever the client's
    ``Accept``. The body is read from the stream, capped by the node's limits (the
    app-wide form limit does not apply), so a bundle the node accepts by pull is
    accepted here too, and a larger one is refused before it is buffered."""
    try:
        return await _inbox(request)
    except AppError as exc:
        body: dict[str, object] = {"error": {"code": exc.code, "message": exc.message}}
        if exc.fields:
            body["error"]["fields"] = exc.fields  # type: ignore[index]
        return web.json_response(body, status=exc.status)


async def _inbox(request: web.Request) -> web.Response:
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth.startswith("Bearer ") else ""
    pool = request.app[T.pool_key]
    peer = await P.peer_by_inbox_token(pool, token) if token else None
    if peer is None:
        raise AppError(401, "unauthorized", "a registered hub peer's bearer token is required")
    limits = request.app[T.limits_key]
    try:
        data = await read_capped(request, limits.envelope_bytes)
    except BodyTooLarge as exc:
        raise AppError(413, "bundle_too_large",
                       f"bundle is too large for this node ({exc}); "
                       f"WB_MAX_BUNDLE_BYTES is {limits.max_bundle_bytes}") from None
    try:
        bundle = from_cbor(data, limits)
        [res] = await run_import(pool, request.app[T.config_key], [bundle], kind="inbox",
                                 actor=f"hub:{peer['name']}", peer=peer["name"],
                                 metrics=request.app[T.metrics_key], limits=limits)
    except ProtocolError as exc:
        raise AppError(400 if exc.code != "bundle_too_large" else 413, exc.code,
                       exc.message, fields={"path": exc.path} if exc.path else None) from None
    except SyncError as exc:
        raise AppError(409, exc.code, exc.message) from None
    await P.record_outcome(pool, peer["name"], None)
    status = {"applied": 201, "pending": 202}.get(res.result, 200)
    return web.json_response(res.as_json(), status=status)


def setup(app: web.Application) -> None:
    from node.sync import control, gossip, repair_web, scheduling

    app.router.add_post("/sync/inbox", inbox, name="sync_inbox")
    scheduling.setup(app)
    control.setup(app)
    repair_web.setup(app)
    gossip.setup(app)
