"""Background tasks of a process: stopping one the same way everywhere, and sharing one
computation between concurrent callers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Generic, TypeVar


async def cancel_and_wait(*tasks: asyncio.Task[object] | None) -> None:
    """Cancel each task (None: nothing to stop) and wait until it has ended."""
    for task in tasks:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


K = TypeVar("K")
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """Concurrent calls for one key share one computation: the first starts it, the
    others wait for its result (or its exception). A caller that is cancelled does not
    cancel it for the others; the key is free again once it has ended."""

    def __init__(self) -> None:
        self._flights: dict[K, asyncio.Future[V]] = {}

    async def run(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(compute())
            self._flights[key] = flight
            flight.add_done_callback(partial(self._ended, key))
        return await asyncio.shield(flight)

    def _ended(self, key: K, flight: asyncio.Future[V]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not flight.cancelled():
            flight.exception()  # retrieved, even when every caller was cancelled
