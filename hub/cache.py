"""A short-lived cache of public API answers, invalidated by every new log entry.

Every change to the public record index happens in an ingest transaction that appends
to the log, and every hub process learns the new log head (its own ingests directly,
the others' through LISTEN/NOTIFY), so an answer computed at head H stays right until
the head moves. A maximum age bounds staleness should a notification be lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from service.tasks import SingleFlight
from service.ttlcache import TTLCache


class ResponseCache:
    """Encoded answers by key, each valid while the log head is unchanged and for at most
    ``max_age`` seconds; the least recently used go first beyond ``entries``."""

    def __init__(self, entries: int, max_age: float) -> None:
        self.entries = entries
        self.max_age = max_age
        self._items: TTLCache[tuple[int, bytes]] = TTLCache(entries, max_age)
        self._flights: SingleFlight[tuple[str, int], bytes] = SingleFlight()
        self.hits = 0
        self.misses = 0
        self.computed = 0  # answers computed (concurrent misses at one head share one)

    def get(self, key: str, head: int) -> bytes | None:
        item = self._items.get(key)
        if item is None or item[0] != head:
            self.misses += 1
            return None
        self.hits += 1
        return item[1]

    def put(self, key: str, head: int, body: bytes) -> None:
        self._items.put(key, (head, body))

    def clear(self) -> None:
        self._items.clear()

    async def answer(self, key: str, head: int,
                     compute: Callable[[], Awaitable[bytes]]) -> bytes:
        """The answer for ``key`` at log ``head``: cached, or computed once however many
        ask for it meanwhile (a stampede after each ingest would otherwise run the query
        once per waiting connection)."""
        body = self.get(key, head)
        if body is not None:
            return body

        async def compute_and_keep() -> bytes:
            self.computed += 1
            body = await compute()
            self.put(key, head, body)
            return body

        return await self._flights.run((key, head), compute_and_keep)
