"""Live fan-out of the durable log: LISTEN/NOTIFY wake-ups and a shared frame cache.

Every ingest transaction ends with ``pg_notify('wb_hub_log', seq)``; PostgreSQL delivers
it after commit to every hub process listening on the database, so a bundle ingested by
one process reaches the stream subscribers of all of them. Each process keeps the most
recent log entries as encoded CBOR frames, fetched once from PostgreSQL and shared by all
its stream subscribers; older cursors are replayed straight from the log.

The cache is filled over a database connection of its own, never from the shared pool:
under write load every pool connection is busy with ingest transactions and readers'
queries, and a fill queued behind them delayed every live subscriber by seconds (see
docs/benchmarks.md, "Hub under mixed load"). Frames are spliced around the stored
envelope bytes instead of decoding and re-encoding them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial

import asyncpg

from hub import queries as Q
from protocol.containers import Frame, encode_bundle_frame, encode_frame
from service.tasks import SingleFlight, cancel_and_wait

log = logging.getLogger("wb.hub.stream")

POLL_SECONDS = 5.0  # safety net: re-read the head even if a notification was lost
FILL_BATCH = 100  # log entries per query when the cache catches up with the head


class OutdatedCursor(Exception):
    """The cursor fell below the retained range (the log was pruned past it)."""

    def __init__(self, pruned_through: int) -> None:
        super().__init__(pruned_through)
        self.pruned_through = pruned_through


@dataclass(frozen=True)
class Entry:
    seq: int
    digest: str
    origin: str
    entities: tuple[str, ...]
    received_from: str | None
    frame: bytes
    #: the WebSocket header of ``frame`` as every subscriber gets it (a server's frames
    #: are unmasked and the stream is uncompressed, so header + frame are the same bytes
    #: on every connection: written as they are, see ``hub.api._stream_writer``)
    ws_header: bytes = b""

    def matches(self, origins: list[str] | None, entities: list[str] | None) -> bool:
        if origins is not None and self.origin not in origins:
            return False
        return entities is None or bool(set(entities) & set(self.entities))


def entry_of(row: asyncpg.Record) -> Entry:
    frame = encode_bundle_frame(row["seq"], row["digest"], row["origin"], row["container"])
    return Entry(row["seq"], row["digest"], row["origin"], tuple(row["entities"]),
                 row["received_from"], frame, ws_binary_header(len(frame)))


def ws_binary_header(length: int) -> bytes:
    """RFC 6455 header of a final, unmasked, uncompressed binary frame of ``length``."""
    if length < 126:
        return struct.pack("!BB", 0x82, length)
    if length < 65536:
        return struct.pack("!BBH", 0x82, 126, length)
    return struct.pack("!BBQ", 0x82, 127, length)


def control_frame(op: str, seq: int, code: str | None = None,
                  message: str | None = None) -> bytes:
    return encode_frame(Frame(op=op, seq=seq, code=code, message=message))


class Broadcaster:
    """Knows the log head (woken by NOTIFY) and caches recent frames for streams."""

    def __init__(self, pool: asyncpg.Pool, url: str, cache_entries: int,
                 cache_bytes: int = 32 * 1024 * 1024, *, batch_seconds: float = 0.0) -> None:
        self.pool = pool
        self.url = url
        self.cache_entries = cache_entries
        self.cache_bytes = cache_bytes
        self.head = 0
        self._event = asyncio.Event()
        self.batch = batch_seconds  # at most one wake-up of the streams per this long
        self._woken_at = -1e9  # loop time of the last wake-up
        self._late_wake: asyncio.TimerHandle | None = None
        self.wakes = 0  # wake-ups of the streams so far (for tests)
        self.fill_waits = 0  # times a stream queued behind a fill in progress (for tests)
        #: reads from the log for streams behind the cache, one per cursor and filter at a
        #: time: subscribers that fell behind together share it (each reading its own
        #: 100 entries and their bundles once overloaded the database for good)
        self._catchups: SingleFlight[tuple[object, ...], tuple[list[Entry], int]] = \
            SingleFlight()
        self.catchup_reads = 0  # answers from the log (for tests)
        self.log_reads = 0  # queries of the log for them (for tests)
        self._cache: OrderedDict[int, Entry] = OrderedDict()
        self._cached_bytes = 0
        self._cache_high = 0  # every entry with seq <= _cache_high was fetched
        self._fill_lock = asyncio.Lock()
        self._conn: asyncpg.Connection | None = None
        self._fetch_conn: asyncpg.Connection | None = None  # the fills' own connection
        self._task: asyncio.Task[None] | None = None
        self._prefill: asyncio.Task[None] | None = None
        self.subscribers = 0

    async def start(self) -> None:
        self.head, _ = await Q.log_state(self.pool)
        self._cache_high = self.head
        await self._listen()
        self._task = asyncio.create_task(self._watch())

    async def _listen(self) -> None:
        self._conn = await asyncpg.connect(self.url)
        await self._conn.add_listener(Q.NOTIFY_CHANNEL, self._on_notify)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        await cancel_and_wait(self._prefill)
        for conn in (self._conn, self._fetch_conn):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        self._wake()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith("scrub:"):
            self.forget(payload[len("scrub:"):])
            return
        try:
            seq = int(payload)
        except ValueError:
            return
        self.advance(seq)

    def forget(self, digest: str) -> None:
        """Drop a cached frame whose stored bundle was scrubbed (re-read on demand)."""
        for seq, entry in list(self._cache.items()):
            if entry.digest == digest:
                del self._cache[seq]
                self._cached_bytes -= len(entry.frame)

    def advance(self, seq: int) -> None:
        if seq > self.head:
            self.head = seq
            self._wake_soon()

    def _wake_soon(self) -> None:
        """Wake the streams now if they were not woken in the last ``batch`` seconds,
        else once that much time has passed since they were: under a stream of pushes
        every subscriber gets the frames logged meanwhile in one write (a wake-up per
        entry cost the hub a send per entry and subscriber, and each subscriber a
        receive), while a push after a quiet spell goes out at once."""
        if self._late_wake is not None:
            return  # a wake-up is already due
        loop = asyncio.get_running_loop()
        wait = self._woken_at + self.batch - loop.time()
        if wait <= 0:
            self._wake()
        else:
            self._late_wake = loop.call_later(wait, self._wake)

    def _wake(self) -> None:
        """Wake the streams; with subscribers and new entries not cached yet, once they
        are: one fill for all, instead of the first stream woken fetching while every
        other one queued behind it on the fill lock, each woken in turn to find nothing
        left to do (a convoy of a task step per subscriber and wake-up)."""
        if self._late_wake is not None:
            self._late_wake.cancel()
            self._late_wake = None
        self._woken_at = asyncio.get_running_loop().time()
        if self.subscribers and self._cache_high < self.head:
            if self._prefill is None or self._prefill.done():
                self._prefill = asyncio.create_task(self._fill_then_release())
            return  # (a running fill reads up to the head as it is when it ends)
        self._release()

    async def _fill_then_release(self) -> None:
        try:  # one round: under a stream of pushes the head may outrun a fill that
            await self._fill(once=True)  # waits to catch up, and the streams with it
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            pass  # each stream then reads the log itself (entries_after)
        finally:
            self._release()

    def _release(self) -> None:
        self.wakes += 1
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def _watch(self) -> None:
        """Re-read the head periodically and re-LISTEN if the connection died."""
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                if self._conn is None or self._conn.is_closed():
                    await self._listen()
                head, _ = await Q.log_state(self.pool)
                self.advance(head)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("log watcher cannot reach the database; retrying")

    async def wait_beyond(self, cursor: int, max_wait: float) -> None:
        """Return once the head is past ``cursor`` (or after ``max_wait`` seconds)."""
        if self.head > cursor:
            return
        event = self._event
        # asyncio.timeout, not wait_for: wait_for wraps event.wait() in a task of its own,
        # one per stream writer and wake-up (1,000 tasks per bundle at 1,000 subscribers)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max_wait):
                await event.wait()

    async def _fetch_after(self, seq: int) -> list[asyncpg.Record]:
        """Log entries after ``seq`` over the broadcaster's own connection (opened on
        demand, replaced if it broke); the pool only when that connection cannot open."""
        try:
            if self._fetch_conn is None or self._fetch_conn.is_closed():
                self._fetch_conn = await asyncpg.connect(self.url)
            return await Q.log_after(self._fetch_conn, seq, FILL_BATCH)
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresError):
            # a broken or terminated connection (a database restart): the pool this once
            if self._fetch_conn is not None:
                self._fetch_conn.terminate()
                self._fetch_conn = None
            return await Q.log_after(self.pool, seq, FILL_BATCH)

    async def _fill(self, *, once: bool = False) -> None:
        """Cache the log entries up to the head, ``FILL_BATCH`` a query (one query only
        with ``once``)."""
        if self._fill_lock.locked():
            self.fill_waits += 1
        async with self._fill_lock:
            while self._cache_high < self.head:
                rows = await self._fetch_after(self._cache_high)
                if not rows:
                    break
                for row in rows:
                    entry = entry_of(row)
                    self._cache[row["seq"]] = entry
                    self._cached_bytes += len(entry.frame)
                    self._cache_high = row["seq"]
                self.advance(self._cache_high)
                while self._cache and (len(self._cache) > self.cache_entries
                                       or self._cached_bytes > self.cache_bytes):
                    _, old = self._cache.popitem(last=False)
                    self._cached_bytes -= len(old.frame)
                if once:
                    break

    async def entries_after(self, cursor: int, limit: int, *, origins: list[str] | None,
                            entities: list[str] | None) -> tuple[list[Entry], int]:
        """Up to ``limit`` matching entries after ``cursor`` and the cursor they reach.

        The second value is the highest sequence examined, so filtered-out entries are
        skipped exactly once.
        """
        low = next(iter(self._cache), self._cache_high + 1)
        if cursor + 1 >= low or cursor >= self._cache_high:
            await self._fill()
            out: list[Entry] = []
            reached = cursor
            for seq in range(cursor + 1, min(self._cache_high, cursor + limit) + 1):
                entry = self._cache.get(seq)
                if entry is None:  # evicted meanwhile: fall back to the log
                    break
                reached = seq
                if entry.matches(origins, entities):
                    out.append(entry)
            if reached > cursor or self._cache_high <= cursor:
                return out, reached
        # behind the cache: the subscribers that fell behind together read together
        key = (cursor, limit, None if origins is None else tuple(origins),
               None if entities is None else tuple(entities))
        self.catchup_reads += 1
        return await self._catchups.run(
            key, partial(self._from_log, cursor, limit, origins, entities))

    async def _from_log(self, cursor: int, limit: int, origins: list[str] | None,
                        entities: list[str] | None) -> tuple[list[Entry], int]:
        self.log_reads += 1
        # the head is read BEFORE the entries: everything up to it has committed
        head, _ = await Q.log_state(self.pool)
        upto = min(head, cursor + limit * 20)
        rows = await Q.log_after(self.pool, cursor, limit, origins=origins, entities=entities,
                                 upto=upto)
        _, pruned = await Q.log_state(self.pool)  # read AFTER: a prune meanwhile is seen
        if cursor < pruned:
            raise OutdatedCursor(pruned)
        entries = [entry_of(r) for r in rows]
        if len(rows) == limit:
            return entries, rows[-1]["seq"]
        return entries, max(upto, cursor)
