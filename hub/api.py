"""The machine API of the hub: ingest, the log (pull and stream), index, subscriptions."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Any

import cbor2
from aiohttp import WSMsgType, web

from hub import ingest as I
from hub import queries as Q
from hub import tlog
from hub import typedefs as T
from hub.errors import HubError
from hub.stream import OutdatedCursor, control_frame
from hub.web import logged, require_peer
from protocol.containers import CBOR_MEDIA_TYPE
from protocol.errors import ProtocolError
from protocol.limits import Limits
from service.ids import ulid
from service.limits import BodyTooLarge, read_capped

log = logging.getLogger("wb.hub.api")

VERSION = "2"
CBOR_TYPES = (CBOR_MEDIA_TYPE, "application/cbor")

#: The ingest pipeline's results and refusals as HTTP: the one place they meet statuses.
RESULT_STATUS = {"stored": 201, "duplicate": 200, "pending": 202}
REFUSAL_STATUS = {"unsupported_media_type": 415, "verifier_unavailable": 503,
                  "origin_blocked": 403, "revoked_key": 403, "equivocation": 409,
                  "not_found": 404, "origin_ambiguous": 409, "origin_claim_unconfirmed": 409}


def http_refusal(exc: I.Refused) -> HubError:
    """A refusal of the pipeline as the HTTP error the views answer."""
    return HubError(REFUSAL_STATUS.get(exc.code, 400), exc.code, exc.message, extra=exc.extra)


def limits_of(app: web.Application, peer: T.Peer | None = None) -> Limits:
    """The hub's limits (``WB_MAX_BUNDLE_BYTES``), lowered to the peer's own bound."""
    limits = app[T.limits_key]
    if peer is not None and peer.max_bundle_bytes:
        return replace(limits, max_bundle_bytes=min(limits.max_bundle_bytes,
                                                    peer.max_bundle_bytes))
    return limits


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``max_bytes``."""
    try:
        return await read_capped(request, max_bytes)
    except BodyTooLarge as exc:
        raise HubError(413, "bundle_too_large", str(exc)) from None


def _hops(request: web.Request) -> int:
    try:
        return max(0, min(int(request.headers.get("X-WB-Hops", "0")), 1000))
    except ValueError:
        return 0


async def _ingest(request: web.Request, peer: T.Peer, content_type: str, *,
                  data: bytes | None = None) -> I.Outcome:
    """Rate-limit, read (unless ``data`` was read already, e.g. from a v1 form) and
    ingest one push."""
    app = request.app
    options = app[T.options_key]
    metrics = app[T.metrics_key]
    limit = peer.rate_per_minute or options.rate_per_minute
    if not app[T.rate_limiter_key].allow(peer.name, limit):
        raise HubError(429, "rate_limited", f"more than {limit} pushes per minute",
                       extra={"retry_after": 60})
    limits = limits_of(app, peer)
    # the envelope adds framing per file; the protocol checks the bundle bytes themselves
    if data is None:
        data = await read_body(request, limits.envelope_bytes)
    started = time.perf_counter()
    pool = app[T.pool_key]
    try:
        with app[T.writes_first_key].writing():
            outcome = await I.ingest(pool, data, content_type, limits=limits, peer=peer.name,
                                     hops=_hops(request), verifier=app[T.executor_key],
                                     inline_bytes=options.inline_verify_bytes)
    except (I.Refused, ProtocolError) as exc:
        metrics.rejections.labels(exc.code).inc()
        with contextlib.suppress(Exception):
            await Q.count_error(pool, exc.code, exc.message, peer.name)
        if isinstance(exc, I.Refused):
            raise http_refusal(exc) from None
        raise
    metrics.ingest_seconds.observe(time.perf_counter() - started)
    metrics.ingest_bundles.labels(outcome.result).inc()
    if outcome.stored_seq is not None:
        metrics.ingest_records.inc(outcome.extra.get("records", 0))
        logged(app, outcome.stored_seq)
    return outcome


async def post_bundle(request: web.Request) -> web.Response:
    peer = await require_peer(request)
    outcome = await _ingest(request, peer, request.headers.get("Content-Type", ""))
    return web.json_response(outcome.body, status=RESULT_STATUS[outcome.result])


# ------------------------------------------------------------------------- the log

def _int_param(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise HubError(400, "invalid_cursor", f"{name} must be a non-negative integer")
    return int(raw)


def _list_param(request: web.Request, name: str) -> list[str] | None:
    values = [v for raw in request.query.getall(name, []) for v in raw.split(",") if v]
    return values or None


async def check_cursor(app: web.Application, since: int) -> int:
    head, pruned = await Q.log_state(app[T.pool_key])
    if since > head:
        raise HubError(400, "future_cursor",
                       f"since={since} is beyond the newest hub sequence {head}",
                       extra={"head": head})
    if since < pruned:
        raise HubError(410, "outdated_cursor",
                       f"entries up to {pruned} are no longer retained; resync from a "
                       f"snapshot and continue from since={pruned}",
                       extra={"oldest": pruned + 1})
    return head


async def list_bundles(request: web.Request) -> web.Response:
    app = request.app
    since = _int_param(request, "since", 0)
    limit = _int_param(request, "limit", 100)
    assert since is not None and limit is not None
    limit = max(1, min(limit, app[T.options_key].page_limit))
    origins = _list_param(request, "origin")
    entities = _list_param(request, "entity")
    head = await check_cursor(app, since)
    upto = head if origins is None and entities is None else min(head, since + limit * 20)
    rows = await Q.log_after(app[T.pool_key], since, limit, origins=origins,
                             entities=entities, upto=upto)
    await check_cursor(app, since)  # pruned meanwhile? then ``rows`` may have a hole
    following = rows[-1]["seq"] if len(rows) == limit else max(upto, since)
    accept = request.headers.get("Accept", "")
    if any(t in accept for t in CBOR_TYPES):
        value = {"head": head, "next": following, "entries": [
            {"seq": r["seq"], "digest": r["digest"], "origin": r["origin"],
             "bundle": bytes(r["container"])} for r in rows]}
        return web.Response(body=cbor2.dumps(value, canonical=True),
                            content_type="application/cbor")
    return web.json_response({
        "head": head, "next": following,
        "entries": [{"seq": r["seq"], "digest": r["digest"], "origin": r["origin"],
                     "sequence": r["sequence"],
                     "bundle": base64.b64encode(bytes(r["container"])).decode()}
                    for r in rows]})


async def stream(request: web.Request) -> web.WebSocketResponse:
    app = request.app
    options = app[T.options_key]
    bc = app[T.broadcaster_key]
    metrics = app[T.metrics_key]
    since = _int_param(request, "since", None)
    origins = _list_param(request, "origin")
    entities = _list_param(request, "entity")
    # compress=False: one encoded frame serves every subscriber; a subscriber that offered
    # permessage-deflate would have had each frame deflated for it alone (5 ms of CPU per
    # subscriber and 476 kB frame: docs/benchmarks.md, "Fan-out to 1,000 subscribers")
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=4096, timeout=5, compress=False)
    await ws.prepare(request)
    if since is None:
        since = bc.head
    try:
        await check_cursor(app, since)
    except HubError as exc:
        await ws.send_bytes(control_frame("error", since, exc.code, exc.message))
        await ws.close()
        return ws
    bc.subscribers += 1
    metrics.stream_subscribers.inc()
    app[T.streams_key].add(ws)
    # ?checkpoints=1: signed log checkpoints as info frames (docs/transparency.md)
    checkpoints = partial(tlog.stream_checkpoint, app) \
        if request.query.get("checkpoints") in ("1", "true") else None
    writer = asyncio.create_task(_stream_writer(ws, bc, since, origins, entities, options,
                                                checkpoints, request.transport))
    try:
        async for msg in ws:  # the client only closes or pings; anything else is ignored
            if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                break
    finally:
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
        app[T.streams_key].discard(ws)
        bc.subscribers -= 1
        metrics.stream_subscribers.dec()
    return ws


async def _stream_writer(ws: web.WebSocketResponse, bc: Any, cursor: int,
                         origins: list[str] | None, entities: list[str] | None,
                         options: T.HubOptions,
                         checkpoint: Callable[[], tuple[int, bytes] | None] | None = None,
                         transport: asyncio.BaseTransport | None = None) -> None:
    """Replay from ``cursor``, then follow live. The cursor only moves past an entry once
    its frame was written, so the seam between replay and live has no gap or duplicate.
    Each newer signed checkpoint goes out as an ``info`` frame (code ``checkpoint``).

    A live subscriber is cut off (``consumer_too_slow``) when a frame does not drain within
    the send timeout, or when it is more than ``stream_max_lag`` entries behind AND its
    connection still holds unsent frames: the lag alone also grows while the hub itself is
    busy, and a subscriber that reads everything it is sent is never blamed for that."""
    timeout = options.stream_send_timeout
    await ws.send_bytes(control_frame("info", cursor))
    shown = -1  # hub_seq of the last leaf of the newest checkpoint sent
    live = False
    while not ws.closed:
        latest = None if checkpoint is None else checkpoint()
        if latest is not None and latest[0] > shown:
            shown = latest[0]
            await ws.send_bytes(control_frame("info", cursor, "checkpoint",
                                              latest[1].decode()))
        if cursor >= bc.head:
            live = True
            # a checkpoint covering what was just sent follows within its interval
            await bc.wait_beyond(cursor, 1.0 if checkpoint and shown < cursor else 15.0)
            continue
        if live and bc.head - cursor > options.stream_max_lag and _backed_up(transport):
            await _too_slow(ws, cursor, transport, timeout)
            return
        try:
            entries, reached = await bc.entries_after(cursor, 100, origins=origins,
                                                      entities=entities)
        except OutdatedCursor as exc:
            with contextlib.suppress(Exception):
                await ws.send_bytes(control_frame(
                    "error", cursor, "outdated_cursor",
                    f"entries up to {exc.pruned_through} are no longer retained; resync "
                    f"from a snapshot and continue from since={exc.pruned_through}"))
                await ws.close(code=1008, message=b"outdated_cursor")
            return
        if entries and _writable(transport):
            # a prompt subscriber (nothing of ours unsent): every ready frame in one write,
            # the shared bytes as they are, no await (the next turn sees any backlog)
            transport.writelines(  # type: ignore[union-attr]
                [part for entry in entries for part in (entry.ws_header, entry.frame)])
            entries, cursor = [], entries[-1].seq
        for entry in entries:
            try:
                async with asyncio.timeout(timeout):  # no extra task per frame and stream
                    await ws.send_bytes(entry.frame)
            except TimeoutError:
                await _too_slow(ws, cursor, transport, timeout)
                return
            cursor = entry.seq
        cursor = max(cursor, reached)


def _writable(transport: asyncio.BaseTransport | None) -> bool:
    """Open, and holding nothing of ours unsent: frames can go straight to it."""
    return _unsent(transport) == 0


def _backed_up(transport: asyncio.BaseTransport | None) -> bool:
    """Frames written to this subscriber are still waiting in the hub's buffer (the kernel's
    send buffer is full), i.e. the client is not reading as fast as it is sent."""
    return _unsent(transport) != 0


def _unsent(transport: asyncio.BaseTransport | None) -> int:
    """Bytes of ours the transport still holds; -1 when it is closing or gone. (Duck-typed:
    uvloop's transports are not asyncio.WriteTransport instances, and an isinstance test
    made every subscriber look prompt on uvloop.)"""
    if transport is None or transport.is_closing():
        return -1
    size = getattr(transport, "get_write_buffer_size", None)
    return -1 if size is None else size()


async def _too_slow(ws: web.WebSocketResponse, cursor: int,
                    transport: asyncio.BaseTransport | None, grace: float) -> None:
    """Tell the subscriber (if it reads at all) and end the connection either way: a
    subscriber left open after the cut-off waited forever for frames that never came."""
    log.info("stream consumer too slow", extra={"cursor": cursor})
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.send_bytes(control_frame(
            "error", cursor, "consumer_too_slow",
            f"fell too far behind; reconnect with since={cursor}")), 1.0)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(ws.close(code=1008, message=b"consumer_too_slow"), 2.0)
    if transport is not None and not transport.is_closing():
        transport.close()  # what is buffered still goes out if the client reads again
        asyncio.get_running_loop().call_later(max(grace, 1.0), transport.abort)


# ------------------------------------------------------------------------- index

def head_fields(head: str) -> dict[str, str]:
    """``Name: value`` lines of a stored header block."""
    out = {}
    for line in head.split("\n"):
        name, sep, value = line.partition(": ")
        if sep:
            out[name] = value
    return out


def _record_json(r: Any) -> dict[str, Any]:
    return {"origin": r["origin"], "entity": r["entity"], "id": r["id"],
            "revision": r["revision"], "instance": r["instance"],
            "updated_at": r["updated_at"], "headers": head_fields(r["head"]), "body": r["body"],
            "bundle": r["digest"]}


async def list_records(request: web.Request) -> web.Response:
    """Served from the response cache while the log head is unchanged: the head is read
    BEFORE the query, so a cached answer is never older than the head it is filed under."""
    app = request.app
    await app[T.writes_first_key].read_turn()
    head = app[T.broadcaster_key].head
    body = await app[T.records_cache_key].answer(request.query_string, head,
                                                 lambda: _records_body(request))
    return web.Response(body=body, content_type="application/json")


async def _records_body(request: web.Request) -> bytes:
    limit = max(1, min(_int_param(request, "limit", 50) or 50, 500))
    q = request.query.get("q", "").strip()[:200] or None
    rows = await Q.search_records(
        request.app[T.read_pool_key], origin=request.query.get("origin") or None,
        entity=request.query.get("entity") or None, q=q,
        after=request.query.get("after") or None, limit=limit)
    after = None
    if len(rows) == limit:
        last = rows[-1]
        after = f"{last['origin']}|{last['entity']}|{last['id']}"
    return json.dumps({"records": [_record_json(r) for r in rows], "after": after},
                      separators=(",", ":")).encode()


async def list_origins(request: web.Request) -> web.Response:
    pool = request.app[T.pool_key]
    rows = await Q.origins(pool)
    gaps: dict[str, list[list[int]]] = {}
    for g in await Q.chain_gaps(pool):
        gaps.setdefault(g["origin"], []).append([g["from_sequence"], g["to_sequence"]])
    return web.json_response({"origins": [
        {"origin": r["origin"], "instance": r["instance"],
         "last_sequence": r["last_sequence"], "last_digest": r["last_digest"],
         "bundles": r["bundles"], "records": r["records"],
         "keys": [{"key_id": k, "public_key": p.strip()}
                  for k, p in zip(r["key_ids"], r["public_keys"], strict=False)],
         "gaps": gaps.get(r["origin"], []),
         "last_seen_at": r["last_seen_at"].isoformat()} for r in rows]})


async def well_known(request: web.Request) -> web.Response:
    app = request.app
    options = app[T.options_key]
    head, pruned = await Q.log_state(app[T.pool_key])
    return web.json_response({
        "software": "whiteballoon-hub", "protocol_version": VERSION,
        "url": app[T.config_key]["WB_HUB_URL"].rstrip("/"),
        "head": head, "oldest_retained": pruned + 1,
        "limits": {"max_bundle_bytes": app[T.limits_key].max_bundle_bytes,
                   "pushes_per_minute": options.rate_per_minute,
                   "page_limit": options.page_limit,
                   "stream_max_lag": options.stream_max_lag, "hop_limit": options.hop_limit},
        "media_types": [CBOR_MEDIA_TYPE, "application/gzip"],
        "endpoints": {"ingest": "/api/v2/bundles", "log": "/api/v2/bundles",
                      "stream": "/api/v2/stream", "records": "/api/v2/records",
                      "origins": "/api/v2/origins", "subscriptions": "/api/v2/subscriptions"},
        "key": None,
    })


# ------------------------------------------------------------------------- subscriptions

async def create_subscription(request: web.Request) -> web.Response:
    peer = await require_peer(request)
    try:
        body = await request.json()
    except ValueError:
        raise HubError(400, "invalid_subscription", "send a JSON object") from None
    sub = await subscribe(request.app[T.pool_key], peer.name, body)
    if sub["mode"] == "push":
        request.app[T.delivery_key].subscribed()
    return web.json_response(sub, status=201)


async def subscribe(pool: Any, peer_name: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise HubError(400, "invalid_subscription", "send a JSON object")
    mode = body.get("mode", "push")
    inbox = body.get("inbox_url")
    if mode not in ("push", "pull"):
        raise HubError(400, "invalid_subscription", "mode is push or pull")
    if inbox is not None and not (isinstance(inbox, str)
                                  and inbox.startswith(("http://", "https://"))):
        raise HubError(400, "invalid_subscription", "inbox_url is an http(s) URL")
    if mode == "push" and inbox is None:
        raise HubError(400, "invalid_subscription", "push needs an http(s) inbox_url")
    lists = {}
    for name in ("origins", "entities"):
        value = body.get(name)
        if value is not None and not (isinstance(value, list)
                                      and all(isinstance(v, str) for v in value)):
            raise HubError(400, "invalid_subscription", f"{name} is a list of strings")
        lists[name] = value or None
    cursor = body.get("cursor", 0)
    if not isinstance(cursor, int) or isinstance(cursor, bool) or not 0 <= cursor < 2**62:
        raise HubError(400, "invalid_subscription", "cursor is a non-negative integer")
    token = body.get("inbox_token")
    sub_id = ulid()
    await Q.add_subscription(pool, sub_id=sub_id, peer_name=peer_name, mode=mode,
                             inbox_url=inbox, inbox_token=token if isinstance(token, str)
                             else None, origins=lists["origins"], entities=lists["entities"],
                             cursor=cursor)
    return {"id": sub_id, "mode": mode, "inbox_url": inbox, "cursor": cursor, **lists}


async def get_subscriptions(request: web.Request) -> web.Response:
    peer = await require_peer(request)
    rows = await Q.subscriptions(request.app[T.pool_key], peer.name)
    return web.json_response({"subscriptions": [
        {"id": r["id"], "mode": r["mode"], "inbox_url": r["inbox_url"],
         "origins": r["origins"], "entities": r["entities"], "cursor": r["cursor"],
         "lag": r["lag"], "failures": r["failures"], "last_error": r["last_error"]}
        for r in rows]})


async def delete_subscription(request: web.Request) -> web.Response:
    peer = await require_peer(request)
    if not await Q.remove_subscription(request.app[T.pool_key], request.match_info["sub_id"],
                                       peer.name):
        raise HubError(404, "not_found", "no such subscription")
    return web.json_response({"deleted": True})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/v2/bundles", post_bundle, name="ingest")
    r.add_get("/api/v2/bundles", list_bundles, name="log")
    r.add_get("/api/v2/stream", stream, name="stream")
    r.add_get("/api/v2/records", list_records, name="records")
    r.add_get("/api/v2/origins", list_origins, name="origins")
    r.add_post("/api/v2/subscriptions", create_subscription, name="subscribe")
    r.add_get("/api/v2/subscriptions", get_subscriptions, name="subscriptions")
    r.add_delete("/api/v2/subscriptions/{sub_id}", delete_subscription, name="unsubscribe")
    r.add_get("/.well-known/whiteballoon-hub", well_known, name="well_known")
