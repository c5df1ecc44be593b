"""bench_sync.py's three measurements, repeated, in wall time and in CPU time, for A/B
comparisons of two checkouts on a shared, loaded machine.

    python bench/bench_sync_cpu.py postgresql://postgres@127.0.0.1:5432/postgres
    python bench/bench_sync_cpu.py --tree /path/to/other/checkout postgresql://...

Seeds bench_sync.py's 100,000 records once, then runs 6 delta exports (10 changed records
each), 3 snapshot exports and 6 imports of the 10,000-record bundle (each into a fresh
database). For each it records the wall time and the CPU time spent on it: this Python
process (``time.process_time``) plus every PostgreSQL backend of the database (utime +
stime from ``/proc/<pid>/stat``; Linux, PostgreSQL on this machine). Wall time on a busy
machine mostly measures the other load; CPU time barely moves with it, so two checkouts
can be compared while others work. ``--tree`` measures another checkout (copy this
checkout's ``bench/bench_sync.py`` and ``tests/pg.py`` there first, so that both run the
same benchmark). Prints one JSON object: lists of the wall and CPU seconds of each kind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a backend that just ended
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / TICK


async def backend_cpu(pool: Any) -> float:
    """CPU seconds used so far by the PostgreSQL backends of the pool's database."""
    pids = [r[0] for r in await pool.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
    return _cpu_seconds(pids)


async def cpu(pool: Any) -> float:
    return time.process_time() + await backend_cpu(pool)


async def main(url: str | None) -> dict[str, list[float]]:
    import bench_sync as B

    from node.app import MIGRATIONS
    from node.sync import peers as P
    from node.sync.service import our_origin, run_export, run_import
    from service import db
    from service.settings import Config
    from tests.pg import TestServer

    def config(db_url: str, data: Path) -> Config:
        return Config({"WB_DATABASE_URL": db_url, "WB_DATA_DIR": str(data),
                       "WB_PUBLISH_DELAY": "0"}, environ={})

    out: dict[str, list[float]] = {k: [] for k in (
        "delta_wall", "delta_cpu", "snapshot_wall", "snapshot_cpu", "import_wall",
        "import_cpu")}

    async def measure(kind: str, pool: Any, action: Any) -> Any:
        c, t = await cpu(pool), time.perf_counter()
        result = await action()
        out[f"{kind}_wall"].append(time.perf_counter() - t)
        out[f"{kind}_cpu"].append(await cpu(pool) - c)
        return result

    srv = TestServer(url)
    tpl = await srv.template("node", MIGRATIONS)
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-sync-cpu-"))
    try:
        a_url = await srv.new_database(tpl)
        ca = config(a_url, tmp / "a")
        pa = await db.create_pool(a_url)
        await our_origin(pa, ca)
        await pa.execute(B.SEED_SQL)
        for i in range(6):
            await pa.execute("UPDATE requests SET title = title || '!' WHERE id = ANY($1)",
                             [f"R{j}" for j in range(1 + 10 * i, 11 + 10 * i)])
            res = await measure("delta", pa, lambda: run_export(pa, ca))
            assert res.record_count == 10, res.record_count
        for _ in range(3):
            res = await measure("snapshot", pa, lambda: run_export(pa, ca, snapshot=True))
            assert res.record_count == 100_000, res.record_count
        await pa.close()
        origin, bundle = B.remote_bundle(10_000)
        for i in range(6):
            b_url = await srv.new_database(tpl)
            cb = config(b_url, tmp / f"b{i}")
            pb = await db.create_pool(b_url)
            await our_origin(pb, cb)
            await P.pin_key(pb, origin)
            [imp] = await measure("import", pb, lambda: run_import(pb, cb, [bundle]))  # noqa: B023
            assert imp.applied_total == 10_000, imp.applied_total
            await pb.close()
            await srv.drop(b_url)
    finally:
        for attempt in range(5):  # a shared server may be out of connections for a moment
            try:
                await srv.aclose()
                break
            except asyncpg.TooManyConnectionsError:
                await asyncio.sleep(2 * (attempt + 1))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url", nargs="?", default=None)
    ap.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1],
                    help="the checkout to measure (default: this one)")
    args = ap.parse_args()
    tree = args.tree.resolve()
    # the tree's code, and its bench_sync (seed and bundle; it puts its own tree first)
    sys.path[:0] = [str(tree), str(tree / "bench")]
    result = asyncio.run(main(args.url))
    import node

    assert Path(node.__file__).resolve().is_relative_to(tree), node.__file__
    print(json.dumps({"tree": str(tree), **result}))
