"""Transparency-log costs (docs/transparency.md, docs/benchmarks.md).

1. Ingest with the tree on against off: the real ``hub.ingest.store`` on PostgreSQL
   (bundles verified beforehand, not timed), 4 concurrent committers; "off" disables the
   trigger ``hub_tlog_append`` that appends the leaf. Rounds alternate on/off so a
   busy machine hurts both alike; the median of each is compared.
2. Proofs at 10 million leaves: a real tree of 10M leaves is streamed (leaf hashes and
   stored hashes computed, only the ones the proofs need kept); proof sizes, the time to
   build a proof from its stored hashes (what the hub does after one query) and to verify.
3. A node's checkpoint check: Ed25519 note verification plus a consistency proof.

    python bench/bench_tlog.py postgresql://postgres@127.0.0.1:5432/postgres
    python bench/bench_tlog.py URL --bundles 300 --records 10 --rounds 3 --leaves 10000000
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import time
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub import ingest as I  # noqa: E402
from hub import queries as Q  # noqa: E402
from hub import queries_tlog as TQ  # noqa: E402
from hub.app import MIGRATIONS  # noqa: E402
from protocol import tlog as L  # noqa: E402
from protocol.containers import CBOR_MEDIA_TYPE, to_cbor  # noqa: E402
from protocol.limits import DEFAULT_LIMITS  # noqa: E402
from protocol.records import make_record  # noqa: E402
from service import db  # noqa: E402
from tests.hub.helpers import Origin  # noqa: E402

TS = "2026-01-02T03:04:05Z"


def build(tag: str, n_bundles: int, n_records: int) -> tuple[Origin, list[I.Checked]]:
    o = Origin(hashlib.sha256(tag.encode()).digest(), instance="https://bench.example")
    out = []
    for b in range(n_bundles):
        recs = [make_record("request", {
            "ID": f"B{b:05d}R{i:05d}", "Origin": o.origin, "Instance": o.instance,
            "Revision": 1, "Updated-At": TS, "Title": f"Help with task {i}",
            "Status": "open", "Created-By": f"{o.origin}/U{i % 50}", "Created-At": TS},
            f"Request body {b}/{i}: groceries, a ladder and an afternoon of help.\n")
            for i in range(n_records)]
        data = to_cbor(o.bundle(recs))
        out.append(I.check(data, CBOR_MEDIA_TYPE, DEFAULT_LIMITS))
    return o, out


async def ingest_round(pool: asyncpg.Pool, tag: str, n_bundles: int, n_records: int,
                       tree: bool, committers: int = 4) -> float:
    """``n_bundles`` split over ``committers`` origins, each stored in chain order by its
    own task (4 concurrent ingest transactions, as with 4 pushing peers)."""
    chains = [build(f"{tag}-{k}", n_bundles // committers, n_records)
              for k in range(committers)]
    for o, _ in chains:
        await pool.execute("INSERT INTO hub_trusted_keys (origin, key_id, public_key) "
                           "VALUES ($1, $1, $2)", o.origin, o.public_key)
    if not tree:
        await pool.execute("ALTER TABLE hub_log DISABLE TRIGGER hub_tlog_append")
    try:
        started = time.perf_counter()

        async def worker(checked: list[I.Checked]) -> None:
            for c in checked:
                out = await I.store(pool, c, b"", peer=None, hops=0)
                assert out.result == "stored", out.body

        await asyncio.gather(*(worker(c) for _, c in chains))
        done = sum(len(c) for _, c in chains)
        rate = done / (time.perf_counter() - started)
    finally:
        await pool.execute("ALTER TABLE hub_log ENABLE TRIGGER hub_tlog_append")
    async with pool.acquire() as conn:  # not timed: the next "on" round starts level
        await TQ.catch_up(conn)
    return rate


async def bench_ingest(url: str, n_bundles: int, n_records: int, rounds: int) -> None:
    base = url.rsplit("/", 1)[0]
    name = f"wb_tlogbench_{int(time.time())}"
    admin = await asyncpg.connect(url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        target = f"{base}/{name}"
        await db.migrate_url(target, "hub", MIGRATIONS)
        pool = await db.create_pool(target, max_size=8)
        try:
            rates: dict[bool, list[float]] = {True: [], False: []}
            await ingest_round(pool, "warm", 30, n_records, True)
            for r in range(rounds):
                for tree in (True, False) if r % 2 == 0 else (False, True):
                    rate = await ingest_round(pool, f"r{r}-{tree}", n_bundles, n_records,
                                              tree)
                    rates[tree].append(rate)
                    print(f"  round {r} tree={'on ' if tree else 'off'}: {rate:,.0f} bundles/s "
                          f"({rate * n_records:,.0f} records/s)", flush=True)
            on, off = statistics.median(rates[True]), statistics.median(rates[False])
            head, _ = await Q.log_state(pool)
            size = await pool.fetchval("SELECT size FROM hub_tlog_state")
            print(f"ingest {n_records}-record bundles: tree on {on:,.0f}/s, off {off:,.0f}/s "
                  f"(median of {rounds}); on/off = {on / off:.3f}; log {head}, tree {size}")
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def bench_proofs(n: int) -> None:
    index, old = n // 3, n // 2 + min(12345, n // 4)
    want_incl = L.needed(lambda r: L.inclusion_proof(r, index, n))
    want_cons = L.needed(lambda r: L.consistency_proof(r, old, n))
    want = want_incl | want_cons
    kept: dict[tuple[int, int], bytes] = {}
    frontier: list[bytes] = []
    old_root = b""
    leaf = b""
    started = time.perf_counter()
    for i in range(n):
        entry = L.leaf_entry(i + 1, "bench.example", i, f"sha256:{i:064x}")
        h = L.leaf_hash(entry)
        if i == index:
            leaf = h
        rows, frontier = L.append_stored(i, frontier, h)
        for lv, ix, x in rows:
            if (lv, ix) in want:
                kept[(lv, ix)] = x
        if i + 1 == old:
            old_root = L.frontier_root(frontier)
    root = L.frontier_root(frontier)
    print(f"built a {n:,}-leaf tree in {time.perf_counter() - started:.1f} s "
          f"(stored hashes the proofs need: {len(want)})")
    read = L.reader_of(kept)
    reps = 2000
    t = time.perf_counter()
    for _ in range(reps):
        proof = L.inclusion_proof(read, index, n)
    build_incl = (time.perf_counter() - t) / reps
    t = time.perf_counter()
    for _ in range(reps):
        L.verify_inclusion(leaf, index, n, proof, root)
    verify_incl = (time.perf_counter() - t) / reps
    t = time.perf_counter()
    for _ in range(reps):
        cproof = L.consistency_proof(read, old, n)
    build_cons = (time.perf_counter() - t) / reps
    t = time.perf_counter()
    for _ in range(reps):
        L.verify_consistency(old, old_root, n, root, cproof)
    verify_cons = (time.perf_counter() - t) / reps
    print(f"inclusion proof at {n:,}: {len(proof)} hashes ({len(proof) * 32} bytes), "
          f"built in {build_incl * 1e6:.0f} µs, verified in {verify_incl * 1e6:.0f} µs")
    print(f"consistency proof {old:,} -> {n:,}: {len(cproof)} hashes ({len(cproof) * 32} "
          f"bytes), built in {build_cons * 1e6:.0f} µs, verified in {verify_cons * 1e6:.0f} µs")


def bench_checkpoint() -> None:
    seed = b"\x09" * 32
    from nacl.signing import SigningKey

    v = L.verifier_for("hub.example/log", bytes(SigningKey(seed).verify_key))
    body = L.Checkpoint("hub.example/log", 10_000_000, b"\x01" * 32).body()
    note = L.Note(body, (L.sign_note(body, v.name, seed),)).encode()
    reps = 2000
    t = time.perf_counter()
    for _ in range(reps):
        L.verify_checkpoint(note, v)
    per = (time.perf_counter() - t) / reps
    print(f"checkpoint note verification on a node: {per * 1e6:.0f} µs "
          f"({len(note)}-byte note)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("url", nargs="?", help="PostgreSQL URL (a scratch database is made)")
    ap.add_argument("--bundles", type=int, default=300)
    ap.add_argument("--records", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--leaves", type=int, default=10_000_000)
    args = ap.parse_args()
    bench_checkpoint()
    if args.url:
        asyncio.run(bench_ingest(args.url, args.bundles, args.records, args.rounds))
    if args.leaves:
        bench_proofs(args.leaves)


if __name__ == "__main__":
    main()
