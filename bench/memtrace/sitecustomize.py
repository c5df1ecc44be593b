"""Bench-only memory tracing for a server process started by ``bench/soak.py --trace DIR``.

Put on ``PYTHONPATH`` (never installed, never imported by the project): with
``WB_BENCH_MEMTRACE_DIR`` set, the first SIGUSR1 starts ``tracemalloc`` with
``WB_BENCH_MEMTRACE_FRAMES`` frames (0: never; tracing from the start made the hub too
slow to come up on a loaded machine), and each SIGUSR1 writes ``snap-NN.pickle`` (a
``tracemalloc`` snapshot: allocations since the first signal that are still alive)
and appends one JSON line
to ``stats.jsonl``: RSS, traced Python memory, gc object count and glibc ``mallinfo2``
(arena bytes in use and free; ``malloc-NN.xml`` has them per arena), so Python growth
can be told from allocator growth. With ``WB_BENCH_MEMTRACE_TRIM=1`` each sample then
calls glibc's ``malloc_trim(0)`` and records the RSS after it (``rss_trimmed_kb``): what
is left is memory in use, the difference was free heap memory kept by the allocator.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import time
import tracemalloc

_DIR = os.environ.get("WB_BENCH_MEMTRACE_DIR")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def _mallinfo() -> dict[str, int]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        m = libc.mallinfo2()
    except (OSError, AttributeError):
        return {}
    return {"arena": m.arena, "mmap": m.hblkhd, "in_use": m.uordblks, "free": m.fordblks,
            "free_chunks": m.ordblks}


def _malloc_info(path: str) -> None:
    """glibc's per-arena XML report (which arena holds the free memory)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.fopen.restype = ctypes.c_void_p
        fp = libc.fopen(path.encode(), b"w")
        libc.malloc_info(0, ctypes.c_void_p(fp))
        libc.fclose(ctypes.c_void_p(fp))
    except (OSError, AttributeError):
        pass


def _rss_kb() -> int:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _threads() -> int:
    return len(os.listdir(f"/proc/{os.getpid()}/task"))


_count = 0
_FRAMES = int(os.environ.get("WB_BENCH_MEMTRACE_FRAMES", "25"))
_TRIM = os.environ.get("WB_BENCH_MEMTRACE_TRIM") == "1"


def _dump(signum: int, frame: object) -> None:
    global _count
    assert _DIR is not None
    row: dict[str, object] = {"n": _count, "t": time.time(), "rss_kb": _rss_kb(),
                              "gc_objects": len(gc.get_objects()), "threads": _threads(),
                              "malloc": _mallinfo()}
    _malloc_info(os.path.join(_DIR, f"malloc-{_count:02d}.xml"))
    if tracemalloc.is_tracing():
        row["traced"] = tracemalloc.get_traced_memory()[0]
        tracemalloc.take_snapshot().dump(os.path.join(_DIR, f"snap-{_count:02d}.pickle"))
    if _TRIM:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        row["rss_trimmed_kb"] = _rss_kb()
    with open(os.path.join(_DIR, "stats.jsonl"), "a") as f:
        f.write(json.dumps(row) + "\n")
    if _FRAMES and not tracemalloc.is_tracing():
        tracemalloc.start(_FRAMES)
    _count += 1


if _DIR:
    os.makedirs(_DIR, exist_ok=True)
    signal.signal(signal.SIGUSR1, _dump)
