"""The hub hands free C-heap pages back to the OS every WB_HUB_MALLOC_TRIM_INTERVAL (#26).

The soak's growth was free memory kept by glibc, not live objects (docs/benchmarks.md);
these tests check that trimming really lowers RSS, that a running hub trims on its
interval, that 0 turns it off and that shutdown stops it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web

from hub import typedefs as T
from service import malloc_trim
from service.settings import Config


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not malloc_trim.available(), reason="malloc_trim is glibc's")
def test_trim_returns_free_heap_pages_to_the_os() -> None:
    # The soak's pattern: buffers below the mmap threshold freed between live objects
    # that pin the heap's top, so glibc cannot shrink it by itself.
    keep, buffers = [], []
    for _ in range(600):
        buffers.append(bytearray(64 * 1024))  # 64 kB: from the heap, not mmap
        keep.append(bytearray(2048))
    pin = bytearray(64 * 1024)  # no free chunk fits: from the heap's top, which it pins
    buffers.clear()  # ~37 MB free inside the heap, below the pin: glibc keeps it resident
    before = _rss_kb()
    assert malloc_trim.trim() is True
    after = _rss_kb()
    assert before - after > 20 * 1024, (before, after)
    assert len(keep) == 600 and len(pin) == 64 * 1024


def _counting_trim(monkeypatch: pytest.MonkeyPatch, wanted: int
                   ) -> tuple[list[int], asyncio.Event]:
    calls: list[int] = []
    reached = asyncio.Event()

    def fake(pad: int) -> int:
        calls.append(pad)
        if len(calls) >= wanted:
            reached.set()
        return 1

    monkeypatch.setattr(malloc_trim, "_TRIM", fake)
    return calls, reached


async def test_a_running_hub_trims_on_its_interval(make_hub, monkeypatch) -> None:
    calls, reached = _counting_trim(monkeypatch, 3)
    client = await make_hub(T.HubOptions(malloc_trim_interval=0.01, verify_processes=0))
    await asyncio.wait_for(reached.wait(), 10)
    assert calls[:3] == [0, 0, 0]  # pad 0: release everything that is free
    async with client.get("/readyz") as r:  # serving goes on meanwhile
        assert r.status == 200


def _trim_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_coro().__name__ == "trim_every"]


async def test_zero_interval_never_trims_and_shutdown_stops_the_task(monkeypatch) -> None:
    calls, reached = _counting_trim(monkeypatch, 2)
    off = malloc_trim.trim_ctx(0)(web.Application())
    await off.__anext__()
    assert _trim_tasks() == []
    on = malloc_trim.trim_ctx(0.01)(web.Application())
    await on.__anext__()
    assert len(_trim_tasks()) == 1
    await asyncio.wait_for(reached.wait(), 10)
    with pytest.raises(StopAsyncIteration):
        await on.__anext__()  # cancels the task and waits for it
    with pytest.raises(StopAsyncIteration):
        await off.__anext__()
    assert _trim_tasks() == []  # nothing left behind to trim again
    assert len(calls) >= 2


def test_the_interval_is_a_setting(tmp_path: Path) -> None:
    config = Config({"WB_HUB_MALLOC_TRIM_INTERVAL": "0"}, environ={},
                    dotenv=tmp_path / "none.env")
    assert T.HubOptions.from_config(config).malloc_trim_interval == 0
    assert T.HubOptions().malloc_trim_interval == 60
