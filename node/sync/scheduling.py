"""Federation on a schedule: per-peer push and pull jobs, the change watcher and the
live hub stream.

- ``push:<peer>`` exports what changed (if anything) and sends the chain links the peer
  lacks; ``pull:<peer>`` fetches what the peer has past its cursor. Both run every
  ``WB_SYNC_INTERVAL`` seconds with jitter through ``node.scheduler.run_job`` (no
  overlap, pause/resume, back-off), and are also ``wb jobs run push:<peer>`` and buttons
  on ``/admin/sync-control``.
- ``sync:reconcile`` keeps the job table equal to ``sync_peers`` (peers added at runtime
  get jobs, removed peers lose them); it runs at startup, every few seconds, and right
  after the control center changes a peer.
- The change watcher checks twice a second (three probes of the ``*_sync_dirty`` partial
  indexes) whether there are local changes due for export or peers behind the chain,
  and if so runs the push jobs at once. A public change is due once it is
  ``WB_PUBLISH_DELAY`` seconds old (default 120: the member can still undo it);
  withdrawals and tombstones are due at once and leave within about a second.
- For every v2 hub peer a background task follows ``GET /api/v2/stream`` (WebSocket)
  from the peer's cursor and imports each bundle as it arrives; when the stream is
  unavailable it reconnects with back-off while the pull job keeps polling.

Nothing here runs inside a request handler: a slow peer costs a background task its
time-outs, never the web server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from node import typedefs as T
from node.i18n import plural
from node.scheduler import JOB_ACTOR, Job, add_runtime_job, jobs_key, remove_runtime_job, run_job
from node.sync import audit as A
from node.sync import peers as P
from node.sync import queries as Q
from node.sync import transport
from node.sync.export import publish_delay
from node.sync.service import our_origin, run_export, run_import
from service import outage

log = logging.getLogger("wb.node.sync.scheduling")

RECONCILE = "sync:reconcile"
PUSH_CHANGES = "sync:push-changes"
WATCH_SECONDS = 0.5
RECONCILE_SECONDS = 10.0
PEER_JOB_TIMEOUT = 300.0
STREAM_BACKOFF_MAX = 60.0


@dataclass
class SyncRuntime:
    """Per-app state of the scheduled federation (parked in ``app[T.extras_key]``)."""

    streams: dict[str, tuple[tuple[Any, ...], asyncio.Task[None]]] = field(default_factory=dict)
    stream_status: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    ws_client: aiohttp.ClientSession | None = None
    live: bool = False  # background tasks allowed (the scheduler runs)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


def runtime(app: web.Application) -> SyncRuntime:
    extras = app[T.extras_key]
    if "sync" not in extras:
        extras["sync"] = SyncRuntime()
    return extras["sync"]


# --------------------------------------------------------------------------- jobs

async def export_if_changed(app: web.Application, actor: str | None = None) -> int | None:
    """Export the next chain link when local rows changed; return its sequence."""
    pool, config = app[T.pool_key], app[T.config_key]
    if not await Q.has_unexported_changes(pool, publish_delay(config)):
        return None
    res = await run_export(pool, config, actor=actor or JOB_ACTOR.get(),
                           metrics=app[T.metrics_key])
    return res.sequence


def push_job(name: str, interval: float) -> Job:
    async def fn(app: web.Application) -> str:
        await export_if_changed(app)
        res = await transport.push(app[T.pool_key], app[T.config_key], name,
                                   actor=JOB_ACTOR.get(), metrics=app[T.metrics_key],
                                   session=app[T.client_key])
        bundles = plural(res.bundles, "%(num)d bundle", "%(num)d bundles")
        return f"pushed {bundles}, {res.bytes} bytes"
    return Job(f"push:{name}", fn, interval=interval, timeout=PEER_JOB_TIMEOUT)


def pull_job(name: str, interval: float) -> Job:
    async def fn(app: web.Application) -> str:
        res = await transport.pull(app[T.pool_key], app[T.config_key], name,
                                   actor=JOB_ACTOR.get(), metrics=app[T.metrics_key],
                                   session=app[T.client_key])
        records = sum(i["records"] for i in res.imported)
        refused = f", {len(res.errors)} refused" if res.errors else ""
        return (f"pulled {plural(res.bundles, '%(num)d bundle', '%(num)d bundles')}, "
                f"{plural(records, '%(num)d record', '%(num)d records')}{refused}")
    return Job(f"pull:{name}", fn, interval=interval, timeout=PEER_JOB_TIMEOUT)


async def push_changes(app: web.Application) -> str:
    """Export local changes and run the push job of every peer missing chain links."""
    pool = app[T.pool_key]
    await export_if_changed(app)
    behind = await Q.peers_behind(pool)
    results = []
    for name in behind:
        job = app[jobs_key].get(f"push:{name}")
        if job is None:
            continue
        results.append(f"{name}: {await run_job(app, job)}")
    return "; ".join(results) or "nothing to push"


async def reconcile(app: web.Application) -> str:
    """Make the per-peer jobs and stream tasks match ``sync_peers``."""
    pool, config = app[T.pool_key], app[T.config_key]
    interval = float(config.get_int("WB_SYNC_INTERVAL"))
    rows = await P.list_peers(pool)
    wanted: dict[str, Job] = {}
    for row in rows:
        name = row["name"]
        if row["kind"] == "dir" or row["token"]:
            wanted[f"push:{name}"] = push_job(name, interval)
        wanted[f"pull:{name}"] = pull_job(name, interval)
    jobs = app[jobs_key]
    added = [jid for jid in wanted if jid not in jobs]
    removed = [jid for jid in jobs if jid.startswith(("push:", "pull:")) and jid not in wanted]
    for jid in added:
        add_runtime_job(app, wanted[jid])
    for jid in removed:
        remove_runtime_job(app, jid)
    rt = runtime(app)
    if rt.live:
        _reconcile_streams(app, rows)
    if added or removed:
        log.info("sync jobs reconciled", extra={"added": added, "removed": removed})
    return f"{len(wanted)} peer job(s); added {len(added)}, removed {len(removed)}"


def _reconcile_streams(app: web.Application, rows: list[Any]) -> None:
    rt = runtime(app)
    wanted = {r["name"]: (r["location"], r["token"]) for r in rows
              if r["kind"] == "hub" and r["api"] == "v2"}
    for name, (key, task) in list(rt.streams.items()):
        if wanted.get(name) != key or task.done():
            task.cancel()
            del rt.streams[name]
            rt.stream_status.pop(name, None)
    for name, key in wanted.items():
        if name not in rt.streams:
            task = asyncio.create_task(follow_stream(app, name), name=f"wb-stream-{name}")
            rt.streams[name] = (key, task)


def sync_jobs() -> tuple[Job, ...]:
    return (Job(RECONCILE, reconcile, interval=RECONCILE_SECONDS, timeout=30),
            Job(PUSH_CHANGES, push_changes, interval=60.0, timeout=PEER_JOB_TIMEOUT))


# --------------------------------------------------------------------------- live stream

def stream_url(location: str) -> str:
    return f"{location.rstrip('/')}/api/v2/stream"


async def follow_stream(app: web.Application, name: str) -> None:
    """Follow one hub's stream from the peer cursor, forever; reconnect with back-off."""
    rt = runtime(app)
    status = rt.stream_status.setdefault(name, {"state": "connecting", "since": None,
                                                "frames": 0, "error": None})
    delay = 1.0
    while True:
        try:
            connected = await _stream_once(app, name, status)
            if connected:
                delay = 1.0
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure means: poll, retry later
            status.update(state="down", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            log.info("hub stream unavailable", extra={"peer": name,
                                                      "error": type(exc).__name__})
        status["state"] = "waiting" if status["state"] != "down" else "down"
        await asyncio.sleep(delay * (0.5 + random.random() / 2))
        delay = min(STREAM_BACKOFF_MAX, delay * 2)


async def _stream_once(app: web.Application, name: str, status: dict[str, Any]) -> bool:
    from node.sync.importer import SyncError
    from protocol.containers import decode_frame
    from protocol.errors import ProtocolError

    pool, config = app[T.pool_key], app[T.config_key]
    rt = runtime(app)
    peer = await P.get_peer(pool, name)
    origin = await our_origin(pool, config)
    assert rt.ws_client is not None
    headers = {"Authorization": f"Bearer {peer['token']}"} if peer["token"] else {}
    cursor = peer["cursor"]
    connected = False
    # checkpoints=1: the hub sends each newer signed checkpoint as an info frame; each is
    # checked against the one kept (docs/transparency.md, "What the hub publishes")
    async with rt.ws_client.ws_connect(stream_url(peer["location"]),
                                       params={"since": str(cursor), "checkpoints": "1"},
                                       headers=headers, heartbeat=20,
                                       max_msg_size=64 * 1024 * 1024) as ws:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                if msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                    break
                continue
            frame = decode_frame(msg.data)
            if frame.op == "info":
                connected = True
                status.update(state="live", since=frame.seq, error=None)
                if frame.code == "checkpoint" and frame.message:
                    await A.check_streamed(pool, config, peer, app[T.client_key],
                                           frame.message.encode())
                continue
            if frame.op == "error":
                status.update(state="down", error=f"{frame.code}: {frame.message}")
                break
            status["frames"] += 1
            if frame.seq > cursor + 1:  # unfiltered, so contiguous: the audit checks a skip
                await A.record_skipped(pool, name, A.skipped_of(cursor, [], frame.seq - 1))
            cursor = max(cursor, frame.seq)
            if frame.origin != origin and frame.bundle is not None:
                try:
                    await run_import(pool, config, [frame.bundle], kind="stream",
                                     actor=f"stream:{name}", peer=name,
                                     metrics=app[T.metrics_key])
                except (ProtocolError, SyncError) as exc:
                    log.warning("stream bundle refused",
                                extra={"peer": name, "error_code": exc.code, "seq": frame.seq})
            await P.record_outcome(pool, name, None, cursor=frame.seq)
    return connected


# --------------------------------------------------------------------------- watcher

async def watch_changes(app: web.Application) -> None:
    """Push shortly after a local change is due: a cheap indexed check twice a second.
    A public change waits out WB_PUBLISH_DELAY first; a withdrawal leaves at once."""
    pool = app[T.pool_key]
    delay = publish_delay(app[T.config_key])
    while True:
        await asyncio.sleep(WATCH_SECONDS)
        if outage.is_down(app):  # logged once by the gate; it says when it is back
            continue
        try:
            if await Q.has_unexported_changes(pool, delay) or await Q.peers_behind(pool):
                await push_changes(app)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the watcher must outlive any one failure
            if not await outage.noticed(app, exc):
                log.exception("change watcher failed; retrying")
            await asyncio.sleep(5)


def spawn(app: web.Application, coro: Any) -> asyncio.Task[Any]:
    """Run ``coro`` in the background, kept until it finishes (the app cancels it on exit)."""
    rt = runtime(app)
    task = asyncio.create_task(coro)
    rt.tasks.add(task)
    task.add_done_callback(rt.tasks.discard)
    return task


async def sync_ctx(app: web.Application) -> AsyncIterator[None]:
    """Register peer jobs on startup (also for `wb jobs`); with the scheduler on, start
    the change watcher and the hub streams."""
    rt = runtime(app)
    rt.live = app[T.config_key].get_bool("WB_SCHEDULER")
    if rt.live:
        rt.ws_client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10),
            headers={"User-Agent": "WhiteBalloon-node"})
    try:
        await reconcile(app)
    except Exception:  # noqa: BLE001 - a broken peer row must not stop the node
        log.exception("could not load sync peers")
    if rt.live:
        spawn(app, watch_changes(app))
    yield
    tasks = [t for _, t in rt.streams.values()] + list(rt.tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    rt.streams.clear()
    if rt.ws_client is not None:
        await rt.ws_client.close()


def setup(app: web.Application) -> None:
    from node.scheduler import register_job

    for job in sync_jobs():
        register_job(app, job)
    app.cleanup_ctx.append(sync_ctx)
