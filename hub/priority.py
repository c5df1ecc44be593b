"""Pushes first: while peers' pushes are in flight, anonymous public reads wait a turn.

A hub's first job is relaying what peers push. Public reads (the records API, the feed
page, the Atom feeds) are cheap one by one, but a reader that asks again as soon as it is
answered takes whatever CPU the pushes leave, and on a small machine that was most of
it: under an unpaced 32-connection reader the write rate fell to half (issue 26). So a
public read that arrives while a push is being handled waits until no push is, or at
most ``WB_HUB_READ_DEFER_MS`` milliseconds: readers get a bounded extra latency only
while the hub is busy ingesting, and a closed-loop reader's rate is bounded by its
connections / that wait, which leaves the pushes their share. Peers' own reads (the log,
the stream, subscriptions) are never deferred.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class WritesFirst:
    def __init__(self, defer_seconds: float) -> None:
        self.defer = defer_seconds
        self.writes = 0  # pushes being handled now
        self.deferred = 0  # public reads that waited (for /metrics and tests)
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around the handling of one push."""
        self.writes += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.writes -= 1
            if not self.writes:
                self._idle.set()

    async def read_turn(self) -> None:
        """Before a public read: at once when no push is in flight, else when none is,
        or after the deferral at most."""
        if not self.writes or self.defer <= 0:
            return
        self.deferred += 1
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.defer):
                await self._idle.wait()
