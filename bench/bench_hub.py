"""Hub ingest benchmark: public records/s pushed as 1,000-record bundles over HTTP.

Builds the bundles first (not timed), starts ``wb hub serve`` in a subprocess (embedded
PostgreSQL under a temporary directory unless a URL is given), registers a peer and its
key, then POSTs the CBOR envelopes on loopback with a few concurrent connections. Every
answer must be 201 (stored); the script prints records/s, bundles/s and latency, and the
CPU per bundle of the hub (with its verify processes) and of the embedded PostgreSQL,
which unlike the rate does not move with what else the machine runs.

    python bench/bench_hub.py                                   # 60 bundles, 4 connections
    python bench/bench_hub.py --bundles 120 --concurrency 4 --records 1000
    python bench/bench_hub.py postgresql://postgres@127.0.0.1:5432/postgres

With a URL, a scratch database ``wb_hubbench_<pid>`` is created next to it and dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.app import MIGRATIONS  # noqa: E402
from protocol.containers import CBOR_MEDIA_TYPE, to_cbor  # noqa: E402
from protocol.records import make_record  # noqa: E402
from service import db  # noqa: E402
from service.ids import token_hash  # noqa: E402
from tests.hub.helpers import Origin  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"  # noqa: S105
TS = "2026-01-02T03:04:05Z"


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, CPU ticks used by it and its reaped children) of every
    process."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # own user + system time, and that of its children that exited (reaped): a
        # PostgreSQL backend's time moves to the postmaster when its connection closes
        out[int(stat.parent.name)] = (int(fields[1]), sum(map(int, fields[11:15])))
    return out


def tree_cpu(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process and all its descendants (the hub
    with its verify processes; the PostgreSQL postmaster with its backends); a negative
    pid: that process alone."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, root in roots.items():
        if root < 0:  # that process alone
            out[name] = table.get(-root, (0, 0))[1] / tick
            continue
        total, todo = 0, [root]
        while todo:
            pid = todo.pop()
            total += table.get(pid, (0, 0))[1]
            todo += children.get(pid, [])
        out[name] = total / tick
    return out


def machine_ticks() -> tuple[int, int]:
    """(busy, all) CPU ticks of the whole machine so far (/proc/stat)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def postmaster_pid(data_dir: Path) -> int | None:
    """The embedded PostgreSQL's postmaster (None for an external server)."""
    pidfile = data_dir / "pgdata" / "postmaster.pid"
    return int(pidfile.read_text().split()[0]) if pidfile.exists() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(n_bundles: int, n_records: int, tag: str = "bench-hub"
          ) -> tuple[Origin, list[bytes]]:
    """``n_bundles`` CBOR bundles of ``n_records`` request records each, one origin per tag."""
    o = Origin(hashlib.sha256(tag.encode()).digest(), instance="https://bench.example")
    out = []
    for b in range(n_bundles):
        recs = [make_record("request", {
            "ID": f"B{b:05d}R{i:05d}", "Origin": o.origin, "Instance": o.instance,
            "Revision": 1, "Updated-At": TS, "Title": f"Help with task {i}",
            "Status": "open", "Created-By": f"{o.origin}/U{i % 50}", "Created-At": TS},
            f"Request body {b}/{i}: groceries, a ladder and an afternoon of help.\n")
            for i in range(n_records)]
        out.append(to_cbor(o.bundle(recs)))
    return o, out


async def prepare(url: str, o: Origin) -> None:
    await db.migrate_url(url, "hub", MIGRATIONS)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO hub_peers (name, kind, token_hash) VALUES "
                           "('bench', 'node', $1)", token_hash(TOKEN))
        await conn.execute("INSERT INTO hub_trusted_keys (origin, key_id, public_key) "
                           "VALUES ($1, $1, $2)", o.origin, o.public_key)
    finally:
        await conn.close()


async def drive(base: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    latencies: list[float] = []
    headers = {"Content-Type": CBOR_MEDIA_TYPE, "Authorization": f"Bearer {TOKEN}"}

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            t = time.perf_counter()
            async with session.post(f"{base}/api/v2/bundles", data=body,
                                    headers=headers) as r:
                text = await r.text()
                if r.status != 201:
                    raise SystemExit(f"unexpected {r.status}: {text[:300]}")
            latencies.append(time.perf_counter() - t)

    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        await asyncio.gather(*[worker(session) for _ in range(concurrency)])
        return time.perf_counter() - started, latencies


async def wait_ready(base: str, proc: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit("wb hub serve exited early")
            try:
                async with session.get(f"{base}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("hub did not become ready")


@contextlib.contextmanager
def serving(argv: list[str], env: dict[str, str] | None = None) -> Iterator[tuple[str, int]]:
    """Start ``argv`` + ``--port N`` (a free loopback port), wait until its /readyz
    answers, yield its base URL and process id, and stop it on exit."""
    port = free_port()
    proc = subprocess.Popen([*argv, str(port)], env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_ready(base, proc))
        yield base, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def running_hub(url: str, data_dir: Path, *args: str,
                **env: str) -> Iterator[tuple[str, int]]:
    """A real ``wb hub serve`` on a free loopback port, ready; yields its base URL and
    process id, and stops it on exit."""
    full_env = dict(os.environ, WB_HUB_DATABASE_URL=url, WB_HUB_DATA_DIR=str(data_dir),
                    WB_LOG_LEVEL="WARNING", **env)
    with serving([sys.executable, "-m", "ops.cli", "hub", "serve", "--host", "127.0.0.1",
                  *args, "--port"], full_env) as running:
        yield running


@contextlib.contextmanager
def hub_database(admin_url: str, prefix: str) -> Iterator[tuple[str, Path]]:
    """A database for a benchmark's hub and a temporary directory: with ``admin_url``, a
    scratch database ``wb_hubbench_<pid>`` next to it (dropped after; never the tables of
    the given database itself), else an embedded PostgreSQL under the directory."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    scratch = ""
    if admin_url:
        parts = urlsplit(admin_url)
        scratch = f"wb_hubbench_{os.getpid()}"
        url = urlunsplit((parts.scheme, parts.netloc, "/" + scratch, parts.query, ""))

        async def create() -> None:
            conn = await asyncpg.connect(admin_url)
            await conn.execute(f'CREATE DATABASE "{scratch}"')
            await conn.close()

        asyncio.run(create())
    else:
        url = db.start_embedded(tmp / "hub")
    try:
        yield url, tmp
    finally:
        if scratch:
            async def drop() -> None:
                conn = await asyncpg.connect(admin_url)
                await conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
                await conn.close()

            asyncio.run(drop())
        else:  # stop the embedded server before its data dir goes
            from service import pgwatch

            pgwatch.stop_server((tmp / "hub" / "pgdata").resolve())
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("database_url", nargs="?", default="")
    ap.add_argument("--bundles", type=int, default=60)
    ap.add_argument("--records", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--verify-processes", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=16,
                    help="bundles pushed before the clock starts, at the same concurrency")
    args = ap.parse_args()

    print(f"building {args.bundles} bundles of {args.records} records...", flush=True)
    o, bodies = build(args.bundles + args.warmup, args.records)
    warm, bodies = bodies[:args.warmup], bodies[args.warmup:]
    with hub_database(args.database_url, "wb-hubbench-") as (url, tmp):
        asyncio.run(prepare(url, o))
        with running_hub(url, tmp / "hub", "--verify-processes",
                         str(args.verify_processes), WB_DB_POOL_MAX="10",
                         WB_HUB_RATE_PER_MINUTE="1000000") as (base, pid):
            asyncio.run(drive(base, warm, args.concurrency))
            roots = {"hub": pid, "hub main": -pid}
            if (pm := postmaster_pid(tmp / "hub")) is not None:
                roots["postgres"] = pm
            cpu0, busy0, own0 = tree_cpu(roots), machine_ticks(), os.times()
            elapsed, lat = asyncio.run(drive(base, bodies, args.concurrency))
            cpu1, busy1, own1 = tree_cpu(roots), machine_ticks(), os.times()
    n = len(bodies) * args.records
    lat.sort()
    print(f"ingest: {len(bodies)} bundles x {args.records} records, "
          f"concurrency {args.concurrency}, verify processes {args.verify_processes}")
    print(f"  {n / elapsed:,.0f} records/s, {len(bodies) / elapsed:.1f} bundles/s, "
          f"{elapsed:.2f} s")
    print(f"  latency p50 {statistics.median(lat) * 1000:.0f} ms, "
          f"p99 {lat[int(len(lat) * 0.99) - 1] * 1000:.0f} ms")
    # CPU per bundle does not move with what else the machine runs (wall clock does)
    print("  CPU per bundle: " + ", ".join(
        f"{name} {(cpu1[name] - cpu0[name]) / len(bodies) * 1000:.1f} ms"
        for name in cpu0) + " (hub: main process and its verify processes)")
    own = own1.user + own1.system - own0.user - own0.system
    busy, total = busy1[0] - busy0[0], busy1[1] - busy0[1]
    print(f"  this client {own / len(bodies) * 1000:.1f} ms per bundle; the machine "
          f"{100 * busy / max(total, 1):.0f} % busy ({busy / os.sysconf('SC_CLK_TCK'):.1f} "
          f"CPU-s in {elapsed:.1f} s)")


if __name__ == "__main__":
    main()
