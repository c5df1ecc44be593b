"""Invite map benchmark: a 10,000-member invite tree, depth 3, cold and cached.

    python bench/bench_invite_map.py [--members 10000] [--viewers 50] [--depth 3]

Uses the embedded PostgreSQL (a throwaway one, deleted afterwards) unless
WB_BENCH_DATABASE_URL points at a server that allows CREATE DATABASE. The tree grows by
preferential attachment (active inviters invite more), so it has the hubs real invite
trees have; a quarter of the members are public. "cold" is a map computed from the
database (recursive query, anonymisation, SVG) and stored; "cached" is the same map
served from invite_map_cache. Viewers: a random sample plus the biggest hub.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.app import MIGRATIONS  # noqa: E402
from node.profiles import invite_map  # noqa: E402
from service import db  # noqa: E402
from service.ids import ulid  # noqa: E402


def build_tree(n: int, rng: random.Random) -> list[tuple[str, str, str | None, str]]:
    ids = [ulid() for _ in range(n)]
    weights_pool: list[int] = [0]  # index i appears (invitees + 1) times
    parents: list[int | None] = [None]
    for i in range(1, n):
        parent = rng.choice(weights_pool)
        parents.append(parent)
        weights_pool.extend((parent, i))
    rows = []
    for i, parent in enumerate(parents):
        scope = "public" if rng.random() < 0.25 else "private"
        rows.append((ids[i], f"user{i:05d}", None if parent is None else ids[parent], scope))
    return rows


def stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (f"median {statistics.median(ordered):7.2f} ms   p95 {p95:7.2f} ms   "
            f"max {ordered[-1]:7.2f} ms")


async def run(members: int, viewers: int, depth: int, url: str) -> None:
    await db.migrate_url(url, "node", MIGRATIONS)
    pool = await db.create_pool(url, max_size=4)
    try:
        rng = random.Random(8)
        rows = build_tree(members, rng)
        started = time.perf_counter()
        async with pool.acquire() as conn:
            await conn.copy_records_to_table(
                "users", records=[(i, u, u.title(), inv, s) for i, u, inv, s in rows],
                columns=["id", "username", "display_name", "invited_by", "sync_scope"])
            await conn.execute("ANALYZE users")
        print(f"inserted {members} members in {time.perf_counter() - started:.1f} s")
        hub = await pool.fetchval("SELECT invited_by FROM users GROUP BY invited_by "
                                  "ORDER BY count(*) DESC LIMIT 1")
        sample = [hub] + [r[0] for r in rng.sample(rows, viewers)]
        cold: list[float] = []
        cached: list[float] = []
        sizes: list[int] = []
        for viewer in sample:
            t0 = time.perf_counter()
            result = await invite_map.get_map(pool, viewer_id=viewer, is_admin=False,
                                              depth=depth)
            cold.append((time.perf_counter() - t0) * 1000)
            assert not result["cached"]
            sizes.append(len(result["nodes"]))
            t0 = time.perf_counter()
            result = await invite_map.get_map(pool, viewer_id=viewer, is_admin=False,
                                              depth=depth)
            cached.append((time.perf_counter() - t0) * 1000)
            assert result["cached"]
        print(f"depth {depth}, {len(sample)} viewers, nodes per map: median "
              f"{statistics.median(sizes):.0f}, max {max(sizes)} (hub: {sizes[0]})")
        print(f"cold   {stats(cold)}")
        print(f"cached {stats(cached)}")
        print(f"hub    cold {cold[0]:.2f} ms, cached {cached[0]:.2f} ms")
        await pool.execute("INSERT INTO users (id, username, invited_by) VALUES ($1, $2, $3)",
                           ulid(), "newcomer", hub)
        t0 = time.perf_counter()
        refreshed = await invite_map.refresh_stale(pool)
        print(f"refresh_stale after one new member: {refreshed} in "
              f"{(time.perf_counter() - t0) * 1000:.0f} ms")
    finally:
        await pool.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--depth", type=int, default=3, choices=(1, 2, 3))
    args = parser.parse_args()
    from tests.pg import TestServer

    external = os.environ.get("WB_BENCH_DATABASE_URL", "")
    if external:
        os.environ["WB_TEST_DATABASE_URL"] = external
    server = await asyncio.to_thread(TestServer)
    try:
        url = await server.new_database()
        try:
            await run(args.members, args.viewers, args.depth, url)
        finally:
            await server.drop(url)
    finally:
        await asyncio.to_thread(server.close)


if __name__ == "__main__":
    asyncio.run(main())
