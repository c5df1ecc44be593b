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
import os
import statistics
import sys
import time
from pathlib import Path

import asyncpg
from nacl.signing import SigningKey

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_hub  # noqa: E402

from hub import ingest as I  # noqa: E402
from hub import queries as Q  # noqa: E402
from hub import queries_tlog as TQ  # noqa: E402
from hub import tlog as HT  # noqa: E402
from hub.app import MIGRATIONS  # noqa: E402
from protocol import tlog as L  # noqa: E402
from protocol.containers import CBOR_MEDIA_TYPE  # noqa: E402
from protocol.limits import DEFAULT_LIMITS  # noqa: E402
from service import db  # noqa: E402
from tests.hub.helpers import Origin  # noqa: E402

TS = "2026-01-02T03:04:05Z"
SEED = b"\x09" * 32


def build(tag: str, n_bundles: int, n_records: int) -> tuple[Origin, list[I.Checked]]:
    """bench_hub's bundles of one origin per tag, checked as the ingest checks them."""
    o, bodies = bench_hub.build(n_bundles, n_records, tag)
    return o, [I.check(data, CBOR_MEDIA_TYPE, DEFAULT_LIMITS) for data in bodies]


_TICK = os.sysconf("SC_CLK_TCK")


async def backend_pids(pool: asyncpg.Pool) -> list[int]:
    """The PostgreSQL backends of every pool connection (opened now)."""
    conns = [await pool.acquire() for _ in range(pool.get_max_size())]
    try:
        return [await c.fetchval("SELECT pg_backend_pid()") for c in conns]
    finally:
        for c in conns:
            await pool.release(c)


def cpu_seconds(pids: list[int]) -> float | None:
    """CPU time (user + system) of these PostgreSQL backends plus this process; None when
    the server's /proc is not visible (PostgreSQL on another machine)."""
    total = time.process_time()
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        total += (int(fields[11]) + int(fields[12])) / _TICK
    return total


async def ingest_round(pool: asyncpg.Pool, tag: str, n_bundles: int, n_records: int,
                       tree: bool, committers: int = 4, interval: float = 2.0,
                       pids: list[int] | None = None) -> tuple[float, float | None]:
    """``n_bundles`` split over ``committers`` origins, each stored in chain order by its
    own task (4 concurrent ingest transactions, as with 4 pushing peers).

    "on": the leaf trigger appends, the hub's checkpoint job runs alongside (every
    ``interval`` s, as in ``wb hub serve``) and the round ends with one more checkpoint
    that covers every bundle: all of the tree's work is timed, wherever it runs. "off":
    the trigger is disabled and no checkpoint is signed (the tree is caught up afterwards,
    untimed, so the next "on" round starts level). Returns bundles per second of wall
    time and CPU seconds per bundle (pool backends + this process), the second steadier
    on a shared machine."""
    chains = [build(f"{tag}-{k}", n_bundles // committers, n_records)
              for k in range(committers)]
    for o, _ in chains:
        await pool.execute("INSERT INTO hub_trusted_keys (origin, key_id, public_key) "
                           "VALUES ($1, $1, $2)", o.origin, o.public_key)
    if not tree:
        await pool.execute("ALTER TABLE hub_log DISABLE TRIGGER hub_tlog_append")
    signer = HT.LogSigner("bench.example/log", SEED, bytes(SigningKey(SEED).verify_key))
    job = HT.Checkpointer(pool, signer, interval)
    try:
        cpu0 = cpu_seconds(pids or [])
        started = time.perf_counter()
        if tree:
            job._task = asyncio.create_task(job._run())  # noqa: SLF001 - the serve loop

        async def worker(checked: list[I.Checked]) -> None:
            for c in checked:
                out = await I.store(pool, c, b"", peer=None, hops=0)
                assert out.result == "stored", out.body

        await asyncio.gather(*(worker(c) for _, c in chains))
        if tree:
            await job.stop()
            await job.tick()
            head, _ = await Q.log_state(pool)
            assert job.latest is not None and job.latest[0] == head
        done = sum(len(c) for _, c in chains)
        rate = done / (time.perf_counter() - started)
        cpu1 = cpu_seconds(pids or [])
        cpu = None if cpu0 is None or cpu1 is None or not pids else (cpu1 - cpu0) / done
    finally:
        await job.stop()
        await pool.execute("ALTER TABLE hub_log ENABLE TRIGGER hub_tlog_append")
    async with pool.acquire() as conn:  # not timed: the next "on" round starts level
        await TQ.catch_up(conn)
    await HT.checkpoint_now(pool, signer)
    return rate, cpu


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
            ratios: list[float] = []
            cpu_ratios: list[float] = []
            pids = await backend_pids(pool)
            await ingest_round(pool, "warm", 40, n_records, True)
            await ingest_round(pool, "warm2", 40, n_records, False)
            for r in range(rounds):
                pair: dict[bool, tuple[float, float | None]] = {}
                for tree in (True, False) if r % 2 == 0 else (False, True):
                    pair[tree] = await ingest_round(pool, f"r{r}-{tree}", n_bundles,
                                                    n_records, tree, pids=pids)
                    rates[tree].append(pair[tree][0])
                ratios.append(pair[True][0] / pair[False][0])
                on_cpu, off_cpu = pair[True][1], pair[False][1]
                cpu_text = ""
                if on_cpu and off_cpu:
                    cpu_ratios.append(off_cpu / on_cpu)
                    cpu_text = (f"; CPU per bundle on {on_cpu * 1e3:.2f} ms, off "
                                f"{off_cpu * 1e3:.2f} ms, off/on {cpu_ratios[-1]:.3f}")
                print(f"  pair {r}: on {pair[True][0]:,.0f}/s, off {pair[False][0]:,.0f}/s, "
                      f"on/off {ratios[-1]:.3f}{cpu_text}", flush=True)
            on, off = statistics.median(rates[True]), statistics.median(rates[False])
            head, _ = await Q.log_state(pool)
            size = await pool.fetchval("SELECT size FROM hub_tlog_state")
            print(f"ingest {n_records}-record bundles: tree on {on:,.0f}/s, off {off:,.0f}/s "
                  f"(medians of {rounds}); on/off of the medians {on / off:.3f}; median of "
                  f"the {rounds} adjacent-pair ratios {statistics.median(ratios):.3f}; "
                  f"log {head}, tree {size}")
            if cpu_ratios:
                print(f"CPU cost per bundle (PostgreSQL backends + bench process), off/on: "
                      f"median of {len(cpu_ratios)} pairs {statistics.median(cpu_ratios):.3f}")
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
    seed = SEED
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
