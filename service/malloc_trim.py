"""Hand the C heap's free pages back to the operating system now and then (glibc only).

The hub's RSS grew by ~1-3 MB a minute under a steady soak while its live memory did
not: `tracemalloc` and glibc's own figures (`bench/soak.py --trace`) showed Python
objects and the bytes malloc had handed out nearly flat, and the growth was free memory
inside glibc's main heap: buffers of tens to hundreds of kB freed in the middle of the
heap between longer-lived objects (the stream cache's frames above all), so the heap's
top cannot shrink and glibc keeps those pages resident (docs/benchmarks.md).
``malloc_trim(0)`` releases every whole free page inside the heap (``madvise``), so RSS
follows what is in use. It takes a few milliseconds at most (3.4 ms to release 16 MB,
0.1 ms with nothing to release); where there is no glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from service.tasks import cancel_and_wait

log = logging.getLogger("wb.memory")


def _load_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _load_trim()


def available() -> bool:
    """True where the C library is glibc (``malloc_trim`` exists)."""
    return _TRIM is not None


def trim() -> bool:
    """Release the free pages of every malloc arena now; True when some were released."""
    return _TRIM is not None and bool(_TRIM(0))


async def trim_every(seconds: float) -> None:
    """Trim every ``seconds`` until cancelled."""
    while True:
        await asyncio.sleep(seconds)
        started = time.perf_counter()
        released = trim()
        log.debug("malloc_trim", extra={"released": released,
                                        "ms": round((time.perf_counter() - started) * 1000, 2)})


def trim_ctx(seconds: float) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that trims every ``seconds`` (0, or no glibc: never)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(trim_every(seconds)) \
            if seconds > 0 and available() else None
        yield
        await cancel_and_wait(task)

    return ctx
