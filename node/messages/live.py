"""Wake-ups for the live message streams of one node process.

A stream waits on its member's ``asyncio.Event``; sending a message (or reading one) sets
the events of both members. The stream then reads the database again, so the events carry
no data: a stream that missed a wake-up, or a message written by another process, is
caught up by the stream's next poll (``POLL_SECONDS``). Shutdown wakes every stream so
the server does not wait for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from node import typedefs as T

POLL_SECONDS = 20.0  # also the keep-alive comment's period
MAX_STREAM_SECONDS = 600.0  # then the browser's EventSource reconnects
# open streams per member and process: each holds a connection (WB_MAX_CONNECTIONS), so one
# member cannot use them up
MAX_STREAMS_PER_MEMBER = 8


class Notifier:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._alive: dict[asyncio.Event, Callable[[], bool]] = {}
        self.closing = False

    def subscribe(self, member_id: str,
                  alive: Callable[[], bool] = lambda: True) -> asyncio.Event:
        """``alive`` says whether the stream's client is still connected."""
        event = asyncio.Event()
        self._alive[event] = alive
        self._waiters.setdefault(member_id, set()).add(event)
        return event

    def open_for(self, member_id: str) -> int:
        """The member's streams whose client is still connected; the others are woken so
        they end now instead of at their next poll."""
        count = 0
        for event in self._waiters.get(member_id, ()):
            if self._alive.get(event, lambda: True)():
                count += 1
            else:
                event.set()
        return count

    def unsubscribe(self, member_id: str, event: asyncio.Event) -> None:
        self._alive.pop(event, None)
        waiters = self._waiters.get(member_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[member_id]

    def wake(self, *member_ids: str) -> None:
        for member_id in member_ids:
            for event in self._waiters.get(member_id, ()):
                event.set()

    def streams(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    def close(self) -> None:
        self.closing = True
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()


def notifier(app: web.Application) -> Notifier:
    return app[T.extras_key]["messages_notifier"]


def setup(app: web.Application) -> None:
    app[T.extras_key]["messages_notifier"] = Notifier()

    async def close(app: web.Application) -> None:
        notifier(app).close()

    app.on_shutdown.append(close)
