"""Time from a public change on node A to its appearance on node C, through a hub.

Real processes: `wb hub serve`, `wb serve` for A and C, the default schedule
(WB_SYNC_INTERVAL=60: A's change watcher pushes at once, C follows the hub's live stream).
Each change is a new public request posted on A through the request service; the clock
stops when C's database has the row (polled every 5 ms).

    python bench/bench_e2e.py [--changes 50] [POSTGRES_URL]

Without POSTGRES_URL a temporary embedded PostgreSQL is used (databases are created and
dropped on it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from ops.demo import NodeInfo, federate, hub_proc, node_proc, prepare_node  # noqa: E402
from service import db  # noqa: E402


@dataclass
class Network:
    """A hub and two nodes (A, C) as real ``wb`` processes on their own databases."""

    hub: Any
    procs: list[Any]
    a: asyncpg.Pool
    c: asyncpg.Pool
    actor: Any  # a public member of A, for node.requests.service calls


@contextlib.asynccontextmanager
async def three_party_network(url: str | None, prefix: str,
                              hub_env: dict[str, str] | None = None,
                              verify_processes: int = 0) -> AsyncIterator[Network]:
    """Start hub, A and C (federated through the hub) and stop and drop them all after;
    ``url`` is a PostgreSQL that allows CREATE DATABASE (None: an embedded one);
    ``hub_env`` adds variables to the hub process's environment only."""
    from tests.pg import TestServer, with_database

    # transport latency, not the publishing grace period (``wb demo`` holds changes 10 s)
    os.environ.setdefault("WB_PUBLISH_DELAY", "0")
    server = None
    if url is None:
        server = TestServer()
        url = server.url
    tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
    admin = await asyncpg.connect(url)
    names = [f"{prefix.replace('-', '_')}_{n}" for n in ("hub", "a", "c")]
    for n in names:
        await admin.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{n}"')
    hub_url, a_url, c_url = (with_database(url, n) for n in names)
    nodes = [NodeInfo("alpha", a_url, tmp / "alpha"), NodeInfo("gamma", c_url, tmp / "gamma")]
    for n in nodes:
        await prepare_node(n)
    hub = hub_proc("hub", hub_url, tmp / "hub", log_path=tmp / "hub.log")
    hub.env.update(hub_env or {})
    hub.args[hub.args.index("--verify-processes") + 1] = str(verify_processes)
    await federate(hub_url, hub.url, nodes)
    procs = [hub] + [node_proc(n.name, n.db_url, n.data_dir, log_path=tmp / f"{n.name}.log")
                     for n in nodes]
    a = await db.create_pool(a_url, max_size=2)
    c = await db.create_pool(c_url, max_size=2)
    try:
        for p in procs:
            p.start()
        await asyncio.gather(*(p.wait_ready() for p in procs))
        from node.requests import service as reqs
        from tests.factories import create_user

        ann = await create_user(a, "ann", scope="public")
        yield Network(hub, procs, a, c, reqs.Actor(ann, False, True))
    finally:
        for p in reversed(procs):
            await asyncio.to_thread(p.stop)
        await a.close()
        await c.close()
        for n in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')
        await admin.close()
        if server is not None:
            server.close()


async def main(url: str | None, changes: int) -> None:
    from node.requests import service as reqs

    async with three_party_network(url, "wb-bench-e2e") as net:
        a, c, actor = net.a, net.c, net.actor
        await asyncio.sleep(2)  # let C's stream connect and the member go out first
        times = []
        for i in range(changes):
            started = time.perf_counter()
            row = await reqs.create_request(a, actor, title=f"bench {i}", description="x",
                                            sync_scope="public")
            while not await c.fetchval("SELECT 1 FROM requests WHERE origin_id = $1",
                                       row["id"]):
                if time.perf_counter() - started > 120:
                    raise TimeoutError(f"change {i} never reached C")
                await asyncio.sleep(0.005)
            times.append(time.perf_counter() - started)
            await asyncio.sleep(0.2 + (i % 5) * 0.1)  # spread changes over the watch tick
        times.sort()
        p50 = statistics.median(times)
        p95 = times[max(0, int(len(times) * 0.95) - 1)]
        print(f"{changes} changes A -> hub -> C: p50 {p50 * 1000:.0f} ms, "
              f"p95 {p95 * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms (goal p95 < 2000 ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default=None)
    parser.add_argument("--changes", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.changes))
