"""Following other hubs: read an upstream hub's public stream from a cursor kept in
PostgreSQL and ingest every frame here, exactly as if that hub had pushed it.

The upstream is a registered peer of kind ``hub``: bundles taken from it are recorded as
received from it, so they are never forwarded back to it. Each upstream is followed by
one process at a time (a PostgreSQL advisory lock held for the connection's life).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random

import aiohttp
import asyncpg

from hub import ingest as I
from hub import queries as Q
from hub import queries_delivery as QD
from protocol.containers import CBOR_MEDIA_TYPE, decode_frame, to_cbor
from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits

log = logging.getLogger("wb.hub.follow")

RESCAN_SECONDS = 5.0


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"wb-hub-follow-{name}".encode()).digest()[:4], "big")


class Follower:
    def __init__(self, pool: asyncpg.Pool, url: str, client: aiohttp.ClientSession,
                 on_stored: object, limits: Limits = DEFAULT_LIMITS) -> None:
        self.pool = pool
        self.limits = limits
        self.url = url
        self.client = client
        self.on_stored = on_stored  # callable(seq) after a bundle was stored here
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._main: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._main = asyncio.create_task(self._scan())

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), *([self._main] if self._main else [])]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def _scan(self) -> None:
        while True:
            try:
                for up in await Q.upstreams(self.pool):
                    task = self._tasks.get(up["name"])
                    if task is None or task.done():
                        self._tasks[up["name"]] = asyncio.create_task(self._follow(up["name"]))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("cannot read upstreams; retrying")
            await asyncio.sleep(RESCAN_SECONDS)

    async def _follow(self, name: str) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            if not await QD.try_follow_lock(conn, _lock_key(name)):
                return  # another hub process follows it
            failures = 0
            while True:
                row = await QD.upstream_by_name(conn, name)
                if row is None:
                    return
                try:
                    await self._read(name, row["url"], row["cursor"])
                    failures = 0
                except (aiohttp.ClientError, OSError, TimeoutError, _Reconnect) as exc:
                    failures += 1
                    await Q.upstream_progress(self.pool, name, None, str(exc)[:300])
                except _Stop as exc:
                    await Q.upstream_progress(self.pool, name, None, str(exc)[:300])
                    log.warning("stopped following upstream", extra={"upstream": name,
                                                                    "error": str(exc)})
                    return
                delay = min(60.0, 0.5 * 2 ** min(failures, 7)) * (0.5 + random.random() / 2)
                await asyncio.sleep(delay if failures else 0.1)
        finally:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _read(self, name: str, url: str, cursor: int) -> None:
        stream = url.rstrip("/") + f"/api/v2/stream?since={cursor}"
        async with self.client.ws_connect(stream, heartbeat=30, max_msg_size=0) as ws:
            await Q.upstream_progress(self.pool, name, None, None, connected=True)
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                frame = decode_frame(msg.data)
                if frame.op == "info":
                    continue
                if frame.op == "error":
                    if frame.code == "consumer_too_slow":
                        raise _Reconnect(f"upstream says {frame.code}")
                    raise _Stop(f"upstream refused cursor {cursor}: {frame.code}")
                assert frame.bundle is not None
                await self._ingest(name, frame.bundle)
                await Q.upstream_progress(self.pool, name, frame.seq)
        raise _Reconnect("upstream closed the stream")

    async def _ingest(self, name: str, bundle: object) -> None:
        data = to_cbor(bundle)  # type: ignore[arg-type]
        try:
            checked = await I.run_check(data, CBOR_MEDIA_TYPE, self.limits)
            outcome = await I.store(self.pool, checked, data, peer=name, hops=1)
        except (ProtocolError, I.Refused) as exc:
            log.info("bundle from upstream refused",
                     extra={"upstream": name, "error_code": exc.code})
            return
        if outcome.stored_seq is not None:
            self.on_stored(outcome.stored_seq)  # type: ignore[operator]


class _Reconnect(Exception):
    pass


class _Stop(Exception):
    pass
