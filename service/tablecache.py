"""Caches that hold until the database changes (issue 24): per-table change counters and
a bounded LRU whose entries carry the counters they were computed under.

``TableWatch`` keeps one counter per table. Three things move them:

* a ``NOTIFY wb_table_changed, '<table>'`` sent by a trigger in the same transaction as
  every write to a watched table (the node's migration 0290), whatever process wrote:
  the web app, a CLI command, a job, a sync import; the dedicated listening connection
  receives it a moment after the commit;
* every statement that writes, sent through this process's pool (``query_logger``, added
  to each pooled connection): asyncpg calls it on the event loop's next turn after the
  statement returns, so any later request of this process (a redirect's GET, a test's
  next call) never sees the old answer, even before the notification arrives. (Code that
  writes and then reads a cache in the same step, without yielding, would: none does;
  the request that wrote also makes everything stale when it ends, ``changed()``);
* ``changed()`` with no table (an *epoch*): after every state-changing request and on each
  (re)connection of the listener, every entry of every cache is stale.

While the listening connection is down (not yet open, lost with the database) ``stamp``
answers None and every cache misses: nothing cached is served that a lost notification
could have made stale. ``StampedCache`` entries may also carry a deadline, for answers
that change with time (an expiring session, a pin that ends).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

import asyncpg

from service.tasks import cancel_and_wait

log = logging.getLogger("wb.cache")

CHANNEL = "wb_table_changed"
RECONNECT_SECONDS = 1.0
PROBE_SECONDS = 10.0
PROBE_TIMEOUT = 5.0

V = TypeVar("V")
Stamp = tuple[int, ...]

# The table an INSERT or UPDATE names; anything else that may write moves the epoch (a
# DELETE too: its cascades reach tables it does not name).
_WRITE = re.compile(r"\b(insert|update|delete|truncate|merge|copy|call)\b", re.I)
_TARGET = re.compile(r"^\s*(?:insert\s+into|update)\s+(?:only\s+)?"
                     r"\"?([a-z_][a-z0-9_]*)\"?", re.I)
_READ_ONLY = re.compile(r"^\s*(select|show|begin|start\s+transaction|rollback|savepoint"
                        r"|release|explain|values|fetch|close|prepare|listen|unlisten)\b",
                        re.I)


@functools.lru_cache(maxsize=2048)
def written_tables(query: str) -> tuple[str, ...] | None:
    """``()`` for a statement that cannot write, ``(table,)`` for a single-table write,
    None when it may write anywhere (the caller then moves the epoch)."""
    target = _TARGET.match(query)
    if target is not None and not _WRITE.search(query, target.end()):
        return (target.group(1).lower(),)
    if _READ_ONLY.match(query) and not _WRITE.search(query):
        return ()
    return None


class TableWatch:
    """Change counters of the watched tables, kept current by LISTEN/NOTIFY."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._epoch = 0
        self._conn: asyncpg.Connection | None = None
        self._connect: Callable[[], Awaitable[asyncpg.Connection]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None
        self.probe_seconds = PROBE_SECONDS
        self.probe_timeout = PROBE_TIMEOUT
        self._closed = False
        # statements the query logger must not count (e.g. the session's last-seen touch)
        self.ignored: set[str] = set()

    @property
    def live(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    def stamp(self, tables: tuple[str, ...]) -> Stamp | None:
        """The counters ``tables`` have now (None: caching is off until the listener is
        back). Take it *before* reading, store the answer under it."""
        conn = self._conn
        if conn is None or conn.is_closed():  # closed: before its termination callback
            return None
        get = self._versions.get
        return (self._epoch, *[get(t, 0) for t in tables])

    def changed(self, table: str | None = None) -> None:
        if table is None:
            self._epoch += 1
        else:
            self._versions[table] = self._versions.get(table, 0) + 1

    # -- the listener ----------------------------------------------------------------------

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.changed(payload or None)

    def _on_lost(self, _conn: Any) -> None:
        self._conn = None
        self.changed()
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _listen(self) -> None:
        assert self._connect is not None
        conn = await self._connect()
        try:
            await conn.add_listener(CHANNEL, self._on_notify)
        except BaseException:
            await conn.close()
            raise
        conn.add_termination_listener(self._on_lost)
        self.changed()  # whatever happened while nobody listened
        self._conn = conn

    async def _reconnect(self) -> None:
        while not self._closed:
            await asyncio.sleep(RECONNECT_SECONDS)
            try:
                await self._listen()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                continue
            log.info("cache listener reconnected")
            return

    async def _watchdog(self) -> None:
        """A connection can die without the socket saying so (a dropped network path):
        every PROBE_SECONDS the listener must answer a query within PROBE_TIMEOUT, or it
        is closed, which turns the caches off until a new one listens."""
        while not self._closed:
            await asyncio.sleep(self.probe_seconds)
            conn = self._conn
            if conn is None or conn.is_closed():
                continue
            try:
                async with asyncio.timeout(self.probe_timeout):
                    await conn.fetchval("SELECT 1")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                log.warning("cache listener stopped answering: caches are off until a new "
                            "one listens")
                conn.terminate()  # its termination listener turns the caches off

    async def start(self, connect: Callable[[], Awaitable[asyncpg.Connection]]) -> None:
        """Open the listening connection (retried in the background if it fails)."""
        self._connect = connect
        loop = asyncio.get_running_loop()
        self._probe = loop.create_task(self._watchdog())
        try:
            await self._listen()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            log.warning("cache listener could not connect: caches are off until it does")
            self._task = loop.create_task(self._reconnect())

    async def close(self) -> None:
        self._closed = True
        await cancel_and_wait(self._task, self._probe)
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.remove_termination_listener(self._on_lost)
            await conn.close()

    # -- writes made through this process's pool -------------------------------------------

    def query_logger(self, record: Any) -> None:
        """asyncpg query logger (``Connection.add_query_logger``): a statement that wrote
        moves its table's counter (or the epoch) at once."""
        query = record.query
        if query in self.ignored:
            return
        tables = written_tables(query)
        if tables is None:
            self._epoch += 1
        for table in tables or ():
            self.changed(table)


class StampedCache(Generic[V]):
    """A bounded LRU whose entries are valid while the watched tables' counters (and the
    optional deadline) say so. ``max_entries`` 0 turns it off."""

    def __init__(self, watch: TableWatch, tables: tuple[str, ...], max_entries: int) -> None:
        self.watch = watch
        self.tables = tables
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, tuple[Stamp, float, V]] = OrderedDict()

    def stamp(self) -> Stamp | None:
        if self.max_entries <= 0:
            return None
        return self.watch.stamp(self.tables)

    def get(self, key: Hashable, stamp: Stamp | None) -> V | None:
        found = self.get_until(key, stamp)
        return None if found is None else found[0]

    def get_until(self, key: Hashable, stamp: Stamp | None) -> tuple[V, float] | None:
        """The value and its deadline (``time.monotonic()``; inf: none)."""
        if stamp is None:
            return None
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] != stamp or item[1] <= time.monotonic():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[2], item[1]

    def put(self, key: Hashable, stamp: Stamp | None, value: V,
            ttl: float | None = None) -> float:
        """Store ``value``; returns its deadline (also when nothing is stored)."""
        deadline = time.monotonic() + ttl if ttl is not None else float("inf")
        if stamp is None or self.max_entries <= 0:
            return deadline
        self._items[key] = (stamp, deadline, value)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)
        return deadline

    def discard(self, key: Hashable) -> None:
        self._items.pop(key, None)

    async def load(self, key: Hashable, loader: Callable[[], Awaitable[V]],
                   ttl: float | None = None) -> V:
        """The cached value, or ``loader()``'s, stored under the counters taken before it
        ran (a write that lands meanwhile makes the stored answer stale at once)."""
        return (await self.load_until(key, loader, ttl))[0]

    async def load_until(self, key: Hashable, loader: Callable[[], Awaitable[V]],
                         ttl: float | None = None) -> tuple[V, float]:
        """``load``, with the answer's deadline (``time.monotonic()``; inf: none)."""
        stamp = self.stamp()
        found = self.get_until(key, stamp)
        if found is None:
            value = await loader()
            return value, self.put(key, stamp, value, ttl)
        return found

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
