"""Soak: RSS per minute of a hub and two nodes under steady load (not part of the test suite).

Real processes as in bench_e2e.py: `wb hub serve`, `wb serve` for nodes A and C (C follows
the hub's live stream). For ``--minutes`` minutes: public requests are created on A at
``--rate`` per second (A pushes them, the hub stores and streams them, C applies them),
a reader loops over the hub's records API and A's requests page, and the RSS of every
process is printed once a minute. Ends with each process's growth after the first minute;
memory that keeps rising there is unbounded growth.

    python bench/soak.py [--minutes 10] [--rate 5] [POSTGRES_URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from bench.bench_e2e import three_party_network  # noqa: E402
from bench.bench_hub_stream import rss_mb  # noqa: E402


async def main(url: str | None, minutes: float, rate: float) -> None:
    from node.requests import service as reqs

    async with three_party_network(url, "wb-soak") as net:
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
    args = parser.parse_args()
    asyncio.run(main(args.url, args.minutes, args.rate))
