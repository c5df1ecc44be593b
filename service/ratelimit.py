"""The one in-process sliding-window rate limiter of node and hub.

Kept home-made (see CONTRIBUTING.md): the maintained libraries (``limits``,
``aiolimiter``) are larger, async or token-bucket shaped, while both apps need one
synchronous "may this key act once more in the last window?" check.
"""

from __future__ import annotations

import time
from collections import deque


class RateLimiter:
    """Sliding window per key. ``limit`` is the default; a caller may pass its own per key
    (the hub's per-peer ``rate_per_minute``)."""

    def __init__(self, limit: int = 60, window_seconds: float = 60.0, *,
                 max_keys: int = 100_000):
        self.limit = limit
        self.window = window_seconds
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}

    def allow(self, key: str, limit: int | None = None, now: float | None = None) -> bool:
        """Record one attempt for ``key``; False when the limit for the window is used up."""
        t = time.monotonic() if now is None else now
        cap = self.limit if limit is None else limit
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self._evict(t)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= t - self.window:
            hits.popleft()
        if len(hits) >= cap:
            return False
        hits.append(t)
        return True

    def _evict(self, now: float) -> None:
        # Drop only idle keys first: clearing everything would let a flood of fresh keys
        # reset the counters of the key that is being limited.
        stale = [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]
        for k in stale:
            del self._hits[k]
        if len(self._hits) >= self.max_keys:
            self._hits.clear()
