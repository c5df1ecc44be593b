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

The waiting reads are let through together: the first to wait arms one timer for all of
them, and when it fires (or the last push ends) every read waiting then goes on at once.
Released together they see the same log head, so the records API answers all of them with
one query (its response cache shares a query between concurrent misses at one head): under
a 32-connection reader the hub ran ~20 queries a second instead of one per request (~470).
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
        self.releases = 0  # times a group of waiting reads was let through
        self._gate: asyncio.Event | None = None  # what the reads waiting now wait for
        self._timer: asyncio.TimerHandle | None = None

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around the handling of one push."""
        self.writes += 1
        try:
            yield
        finally:
            self.writes -= 1
            if not self.writes:
                self._release()

    async def read_turn(self) -> None:
        """Before a public read: at once when no push is in flight, else with the group
        of reads waiting now, when no push is or when the group's deferral is up (at most
        ``defer`` seconds after the first of them came)."""
        if not self.writes or self.defer <= 0:
            return
        self.deferred += 1
        gate = self._gate
        if gate is None:
            gate = self._gate = asyncio.Event()
            self._timer = asyncio.get_running_loop().call_later(self.defer, self._release)
        await gate.wait()

    def _release(self) -> None:
        """Let every waiting read through; the next read to wait starts a new group."""
        gate, self._gate = self._gate, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if gate is not None:
            self.releases += 1
            gate.set()
