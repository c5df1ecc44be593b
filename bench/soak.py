"""Soak: RSS per minute of a hub and two nodes under steady load (not part of the test suite).

Real processes as in bench_e2e.py: `wb hub serve`, `wb serve` for nodes A and C (C follows
the hub's live stream). For ``--minutes`` minutes: public requests are created on A at
``--rate`` per second (A pushes them, the hub stores and streams them, C applies them),
a reader loops over the hub's records API and A's requests page, and the RSS of every
process is printed once a minute. Ends with each process's growth after the first minute;
memory that keeps rising there is unbounded growth.

    python bench/soak.py [--minutes 10] [--rate 5] [--hub-env NAME=VALUE ...]
                         [--trace DIR] [POSTGRES_URL]

``--hub-env`` sets a variable in the hub's environment only (``MALLOC_ARENA_MAX=2``,
``WB_HUB_STREAM_CACHE_ENTRIES=64``...). ``--trace DIR`` runs the hub with
``bench/memtrace/sitecustomize.py``: at every sample the hub writes a line of allocator
figures and (from minute 1) a tracemalloc snapshot to DIR; compare two minutes
with ``python bench/memtrace/compare.py DIR 2 10``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.bench_e2e import three_party_network  # noqa: E402
from bench.bench_hub_stream import rss_mb  # noqa: E402


def hub_environment(pairs: list[str], trace: str | None) -> dict[str, str]:
    env = dict(pair.split("=", 1) for pair in pairs)
    if trace is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (
            str(ROOT / "bench" / "memtrace"), os.environ.get("PYTHONPATH"))))
        env["WB_BENCH_MEMTRACE_DIR"] = str(Path(trace).resolve())
    return env


async def main(url: str | None, minutes: float, rate: float,
               hub_env: dict[str, str], prefix: str = "wb-soak",
               verify_processes: int = 0) -> None:
    from node.requests import service as reqs

    tracing = "WB_BENCH_MEMTRACE_DIR" in hub_env
    async with three_party_network(url, prefix, hub_env, verify_processes) as net:
        a, c, actor, hub, procs = net.a, net.c, net.actor, net.hub, net.procs
        deadline = time.monotonic() + minutes * 60
        created = reads = 0

        async def write() -> None:
            nonlocal created
            while time.monotonic() < deadline:
                await reqs.create_request(a, actor, title=f"soak {created}",
                                          description="steady load", sync_scope="public")
                created += 1
                await asyncio.sleep(1 / rate)

        async def read(session: aiohttp.ClientSession) -> None:
            nonlocal reads
            while time.monotonic() < deadline:
                for target in (f"{hub.url}/api/v2/records", f"{procs[1].url}/"):
                    async with session.get(target) as r:
                        await r.read()
                    reads += 1
                await asyncio.sleep(0.05)

        async def sample() -> list[list[float]]:
            rows = []
            start = time.monotonic()
            while True:
                row = [rss_mb(p.proc.pid) for p in procs]
                if tracing:  # snapshot n is taken at minute n
                    os.kill(procs[0].proc.pid, signal.SIGUSR1)
                rows.append(row)
                arrived = await c.fetchval("SELECT count(*) FROM requests WHERE title "
                                           "LIKE 'soak %'")
                print(f"  minute {len(rows) - 1:2d}: hub {row[0]:6.1f} MB, A {row[1]:6.1f} MB,"
                      f" C {row[2]:6.1f} MB; created {created}, arrived on C {arrived}, "
                      f"reads {reads}", flush=True)
                if time.monotonic() - start >= minutes * 60 - 1:
                    return rows
                await asyncio.sleep(min(60.0, max(0.0, deadline - time.monotonic())))

        async with aiohttp.ClientSession() as session:
            rows, *_ = await asyncio.gather(sample(), write(), read(session))
        if len(rows) > 2:
            for i, name in enumerate(("hub", "A", "C")):
                later = [r[i] for r in rows[1:]]
                print(f"{name}: minute 1 {later[0]:.1f} MB -> end {later[-1]:.1f} MB "
                      f"(max {max(later):.1f}, growth {later[-1] / later[0] - 1:+.1%})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=None)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=5.0, help="requests created per second")
    parser.add_argument("--hub-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a variable for the hub process only (repeatable)")
    parser.add_argument("--trace", metavar="DIR",
                        help="tracemalloc snapshots and allocator figures of the hub")
    parser.add_argument("--verify-processes", type=int, default=0,
                        help="the hub's verification processes (0: threads, as `wb demo`)")
    parser.add_argument("--prefix", default="wb-soak",
                        help="database name prefix (two soaks at once need two)")
    args = parser.parse_args()
    asyncio.run(main(args.url, args.minutes, args.rate,
                     hub_environment(args.hub_env, args.trace), args.prefix,
                     args.verify_processes))
