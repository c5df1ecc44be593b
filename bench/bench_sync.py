"""Sync benchmark: delta export, full snapshot and import against a populated node.

    python bench/bench_sync.py                                  # embedded PostgreSQL
    python bench/bench_sync.py postgresql://postgres@127.0.0.1:5432/postgres

Seeds 100,000 public local records (20,000 members, 50,000 requests, 30,000 comments),
marks them as already published, then measures:
  * a delta export after 10 records changed (goal < 50 ms),
  * a full snapshot export (goal >= 30,000 records/s),
  * verify + import of a 10,000-record bundle from another origin (goal >= 20,000/s).
Scratch databases are created next to the given URL and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from node.app import MIGRATIONS  # noqa: E402
from node.sync import peers as P  # noqa: E402
from node.sync.service import our_origin, run_export, run_import  # noqa: E402
from protocol.bundle import build_bundle  # noqa: E402
from protocol.records import make_record  # noqa: E402
from protocol.signature import key_id, public_key_from_seed  # noqa: E402
from service import db  # noqa: E402
from service.settings import Config  # noqa: E402
from tests.pg import TestServer  # noqa: E402

SEED_SQL = """
INSERT INTO users (id, username, display_name, bio, sync_scope)
  SELECT 'U' || g, 'member' || g, 'Member ' || g, 'Bio of member ' || g, 'public'
    FROM generate_series(1, 20000) g;
INSERT INTO requests (id, title, description, created_by, sync_scope)
  SELECT 'R' || g, 'Request ' || g, 'Please help with thing number ' || g,
         'U' || (1 + g % 20000), 'public' FROM generate_series(1, 50000) g;
INSERT INTO comments (id, request_id, created_by, body, sync_scope)
  SELECT 'C' || g, 'R' || (1 + g % 50000), 'U' || (1 + g % 20000), 'Comment ' || g, 'public'
    FROM generate_series(1, 30000) g;
UPDATE users SET published = true, published_revision = revision;
UPDATE requests SET published = true, published_revision = revision;
UPDATE comments SET published = true, published_revision = revision;
ANALYZE;
"""


def remote_bundle(n: int):
    seed = hashlib.sha256(b"bench remote").digest()
    origin = key_id(public_key_from_seed(seed))
    now = "2026-01-01T00:00:00Z"
    recs = [make_record("user", {"ID": "U1", "Origin": origin, "Instance": "http://r.test",
                                 "Revision": 1, "Updated-At": now, "Username": "remote"})]
    for i in range(n - 1):
        recs.append(make_record("request", {
            "ID": f"R{i}", "Origin": origin, "Instance": "http://r.test", "Revision": 1,
            "Updated-At": now, "Title": f"Remote request {i}", "Status": "open",
            "Created-By": f"{origin}/U1"}, f"Description {i}\n"))
    return origin, build_bundle(recs, seed=seed, origin=origin, instance="http://r.test",
                                sequence=1, previous=None, kind="snapshot", created_at=now,
                                signed_at=now)


async def main(url: str | None) -> None:
    srv = TestServer(url)
    tpl = await srv.template("node", MIGRATIONS)
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-sync-"))
    try:
        a_url, b_url = await srv.new_database(tpl), await srv.new_database(tpl)
        ca = Config({"WB_DATABASE_URL": a_url, "WB_DATA_DIR": str(tmp / "a"),
                     "WB_PUBLISH_DELAY": "0"}, environ={})
        cb = Config({"WB_DATABASE_URL": b_url, "WB_DATA_DIR": str(tmp / "b"),
                     "WB_PUBLISH_DELAY": "0"}, environ={})
        pa, pb = await db.create_pool(a_url), await db.create_pool(b_url)
        await our_origin(pa, ca)
        await our_origin(pb, cb)
        t = time.perf_counter()
        await pa.execute(SEED_SQL)
        print(f"seeded 100,000 public records in {time.perf_counter() - t:.1f} s ({srv.url})")

        for round_ in ("cold", "warm"):
            await pa.execute("UPDATE requests SET title = title || '!' WHERE id = ANY($1)",
                             [f"R{i}" for i in range(1, 11)])
            res = await run_export(pa, ca)
            print(f"delta export of {res.record_count} changed records ({round_}): "
                  f"{res.seconds * 1000:.1f} ms (goal < 50 ms)")

        res = await run_export(pa, ca, snapshot=True)
        print(f"snapshot export of {res.record_count} records: {res.seconds:.2f} s = "
              f"{res.record_count / res.seconds:,.0f} records/s (goal >= 30,000/s), "
              f"{len(res.envelope or b'') / 1e6:.1f} MB CBOR")

        origin, bundle = remote_bundle(10_000)
        await P.pin_key(pb, origin)
        t = time.perf_counter()
        [imp] = await run_import(pb, cb, [bundle])
        took = time.perf_counter() - t
        print(f"verify + import of a {imp.records_in}-record bundle: {took:.2f} s = "
              f"{imp.records_in / took:,.0f} records/s (goal >= 20,000/s), "
              f"applied {imp.applied_total}")
        await pa.close()
        await pb.close()
    finally:
        await srv.aclose()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url", nargs="?", default=None)
    asyncio.run(main(ap.parse_args().url))
