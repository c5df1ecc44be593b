"""Outbox scrub benchmark: what withdrawing a record costs when the outbox holds a big
snapshot (issue 14: the scrub runs inside the member's scope-change transaction).

    python bench/bench_outbox_scrub.py                                  # embedded PostgreSQL
    python bench/bench_outbox_scrub.py postgresql://postgres@127.0.0.1:5432/postgres

Seeds 100,000 public records (as bench_sync.py), exports a snapshot (~42 MB) and 20 small
deltas, then times ``set_scope(..., "private")`` on one request:
  * the first withdrawal (indexes every stored bundle's paths once, rewrites the snapshot),
  * later withdrawals (paths indexed; rewrites the bundles holding the record),
  * a withdrawal of a record no stored bundle holds, and the no-op scrub every push runs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_sync import SEED_SQL  # noqa: E402
from node.app import MIGRATIONS  # noqa: E402
from node.requests import service as S  # noqa: E402
from node.sync.outbox_scrub import scrub_outbox_now  # noqa: E402
from node.sync.service import our_origin, run_export  # noqa: E402
from service import db  # noqa: E402
from service.settings import Config  # noqa: E402
from tests.pg import TestServer  # noqa: E402


async def timed(label: str, coro) -> float:
    t = time.perf_counter()
    await coro
    ms = (time.perf_counter() - t) * 1000
    print(f"{label}: {ms:,.1f} ms")
    return ms


async def main(url: str | None) -> None:
    srv = TestServer(url)
    tpl = await srv.template("node", MIGRATIONS)
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-scrub-"))
    try:
        a_url = await srv.new_database(tpl)
        config = Config({"WB_DATABASE_URL": a_url, "WB_DATA_DIR": str(tmp / "a"),
                     "WB_PUBLISH_DELAY": "0"}, environ={})
        pool = await db.create_pool(a_url)
        await our_origin(pool, config)
        await pool.execute(SEED_SQL)
        res = await run_export(pool, config, snapshot=True)
        print(f"snapshot of {res.record_count} records, "
              f"{len(res.envelope or b'') / 1e6:.1f} MB ({srv.url})")
        for i in range(20):
            await pool.execute("UPDATE requests SET title = title || '!' WHERE id = $1",
                               f"R{i + 1}")
            await run_export(pool, config)
        cli = S.Actor.cli()
        await timed("first withdrawal (indexes 21 bundles, rewrites the snapshot)",
                    S.set_scope(pool, cli, [("request", "R30000")], "private"))
        for rid in ("R30001", "R30002"):
            await timed(f"withdrawal of {rid} (rewrites the snapshot)",
                        S.set_scope(pool, cli, [("request", rid)], "private"))
        await timed("withdrawal of R5 (in the snapshot and one delta)",
                    S.set_scope(pool, cli, [("request", "R5")], "private"))
        await pool.execute("INSERT INTO requests (id, description, created_by, sync_scope) "
                           "VALUES ('NEW1', 'never exported', 'U1', 'public')")
        await timed("withdrawal of a record no bundle holds",
                    S.set_scope(pool, cli, [("request", "NEW1")], "private"))
        await timed("no-op scrub before a push", scrub_outbox_now(pool))
        await pool.close()
    finally:
        await srv.aclose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url", nargs="?", default=None)
    asyncio.run(main(ap.parse_args().url))
