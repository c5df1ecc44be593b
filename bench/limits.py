"""The best this stack does on this machine, for each hot path, stripped to its essentials.

    python bench/limits.py [--quick] [--json] [--only NAME ...] [--database-url URL]

A benchmark figure only means something next to what the same machine can do at best,
measured in the same run (issue 24). Each baseline here keeps only the work a path cannot
avoid:

* crypto      Ed25519 verifications/s and SHA-256 of ~650-byte records/s, one core
* essentials  what verify_bundle() cannot skip for the 10,000-record bench bundle: split
              the manifest, one Ed25519 verify, SHA-256 per file, parse_record per file
              (records/s, one core)
* json        a bare aiohttp handler answering a small dynamic JSON document, wrk with
              64 connections (requests/s, p99); and the same handler answering a page
              of 20 request-shaped items (~14 kB, what /api/requests sends per page)
* broadcast   a bare aiohttp WebSocket server sending one pre-encoded 1,000-record frame
              (the hub's frame for bench_hub's bundle, same size) to N local clients that
              only count bytes, server and clients in this one process (seconds until the
              last has it); bench/report.py takes the fan-out's baseline from
              bench_hub_stream.py instead (a server process of its own, the same clients
              as the hub's, rounds interleaved)
* ingest      split + Ed25519 + SHA-256 + parse of 1,000-record bundles, then a batched
              upsert of the rows (and a COPY variant) into the embedded PostgreSQL
              (records/s, 4 bundles in flight, 16 unclocked first and then as many as
              bench_hub.py pushes in report.py's turns: 60, or 200 without --quick)

bench/report.py runs this and the benchmarks and prints each figure with its ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_protocol import best_of, build, essentials_of  # noqa: E402
from nacl.signing import SigningKey  # noqa: E402

from protocol.records import parse_record  # noqa: E402
from protocol.signature import parse_signature  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- crypto -------------------------------------------------------------------------------

def crypto(quick: bool) -> dict[str, float]:
    key = SigningKey(hashlib.sha256(b"limits").digest())
    msg = b"x" * 1024
    signed = key.sign(msg)
    vk = key.verify_key
    n = 2_000 if quick else 10_000
    t = best_of(3, lambda: [vk.verify(signed) for _ in range(n)])
    record = b"r" * 650
    m = 100_000 if quick else 400_000
    sha = hashlib.sha256
    s = best_of(3, lambda: [sha(record).digest() for _ in range(m)])
    return {"ed25519_verify_per_s": round(n / t), "sha256_650B_per_s": round(m / s)}


# -- verify essentials --------------------------------------------------------------------

def essentials(quick: bool) -> dict[str, float]:
    from bench_protocol import SEED

    from protocol.signature import public_key_from_seed

    bundle = build(10_000)
    vk = public_key_from_seed(SEED)
    rounds = 3 if quick else 5
    t = best_of(rounds, lambda: essentials_of(bundle, vk))
    return {"records_per_s": round(len(bundle.files) / t), "records": len(bundle.files)}


# -- bare JSON handler under wrk ------------------------------------------------------------

# One request as /api/requests lists it (~650 bytes of JSON): the "page" variant answers
# 20 of them, about the 13-14 kB the real API sends per page.
_ITEM = {"id": "01HBENCH00000000", "title": "Help moving a sofa on Saturday",
         "description": "We are looking for someone who can help on Saturday morning. " * 4,
         "status": "open", "created_at": "2026-03-01T12:00:00Z",
         "created_by": {"id": "01HUSER000000000", "username": "someone",
                        "display_name": "Some One"},
         "comment_count": 5, "public": True, "url": "/requests/01HBENCH00000000"}


def _serve_json(port: int) -> None:
    from aiohttp import web

    counter = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal counter
        counter += 1
        return web.json_response({"ok": True, "n": counter, "path": request.path,
                                  "items": [{"id": i, "title": f"item {i}"} for i in range(5)]})

    async def page(request: web.Request) -> web.Response:
        nonlocal counter
        counter += 1
        items = [dict(_ITEM, comment_count=counter % 7 + i) for i in range(20)]
        return web.json_response({"items": items, "next": None, "n": counter})

    app = web.Application()
    app.router.add_get("/", handler)
    app.router.add_get("/page", page)
    factory = _loop_factory()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None,
                loop=factory() if factory else None)


def _loop_factory():  # noqa: ANN202
    """The bare handler runs on the event loop ``wb serve`` would pick (WB_EVENT_LOOP,
    uvloop when installed): a baseline on a slower loop would flatter the node's ratio."""
    from service.serving import event_loop_factory

    return event_loop_factory(os.environ.get("WB_EVENT_LOOP", "auto").strip().lower())


def _wait_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def wrk(url: str, duration: float, connections: int = 64) -> dict[str, float]:
    """requests/s and latency percentiles of `wrk --latency` against url."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", url],
        capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    res = {"requests_per_s": round(rps)}
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
            res[f"p{pct}_ms"] = round(float(m.group(1)) * scale, 2)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["errors"] = int(errors.group(1)) if errors else 0
    return res


def json_handler(quick: bool) -> dict[str, float]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--serve-json", str(port)])
    try:
        _wait_port(port, time.monotonic() + 30)
        wrk(f"http://127.0.0.1:{port}/", 2)  # warm-up
        res = wrk(f"http://127.0.0.1:{port}/", 5 if quick else 15)
        page = wrk(f"http://127.0.0.1:{port}/page", 5 if quick else 15)
        res["page_requests_per_s"] = page["requests_per_s"]
        res["page_p99_ms"] = page.get("p99_ms", 0)
        return res
    finally:
        proc.terminate()
        proc.wait(10)


# -- bare WebSocket broadcast ---------------------------------------------------------------

async def _broadcast(clients: int, frame: bytes, rounds: int) -> list[float]:
    import aiohttp
    from aiohttp import web

    sockets: list[web.WebSocketResponse] = []
    ready = asyncio.Event()

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        sockets.append(sock)
        if len(sockets) == clients:
            ready.set()
        async for _ in sock:
            pass
        return sock

    app = web.Application()
    app.router.add_get("/ws", ws)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    got: list[asyncio.Queue[float]] = []
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def client(q: asyncio.Queue[float]) -> None:
        async with session.ws_connect(f"http://127.0.0.1:{port}/ws", max_msg_size=0) as c:
            async for msg in c:
                if len(msg.data) == len(frame):
                    q.put_nowait(time.perf_counter())

    tasks = []
    for _ in range(clients):
        q: asyncio.Queue[float] = asyncio.Queue()
        got.append(q)
        tasks.append(asyncio.create_task(client(q)))
    await asyncio.wait_for(ready.wait(), 60)
    times = []
    try:
        for _ in range(rounds):
            start = time.perf_counter()
            for s in sockets:
                await s.send_bytes(frame)
            last = max([await asyncio.wait_for(q.get(), 60) for q in got])
            times.append(last - start)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
        await runner.cleanup()
    return times


def broadcast(quick: bool, clients: int = 1000) -> dict[str, float]:
    import bench_hub

    from protocol.containers import encode_bundle_frame

    # the frame the hub sends for bench_hub's 1,000-record bundle (the records alone, joined,
    # were 648 kB against the hub's 476 kB frame: the envelope stores them compressed)
    origin, (body,) = bench_hub.build(1, 1000)
    frame = encode_bundle_frame(1, hashlib.sha256(body).hexdigest(), origin.origin, body)
    times = sorted(asyncio.run(_broadcast(clients, frame, 3 if quick else 7)))
    return {"clients": clients, "frame_bytes": len(frame),
            "best_s": round(times[0], 3), "median_s": round(times[len(times) // 2], 3)}


# -- ingest essentials into PostgreSQL -----------------------------------------------------

INGEST_TABLE = """
CREATE TABLE IF NOT EXISTS limits_records (
    origin text NOT NULL, id text NOT NULL, type text NOT NULL, revision int NOT NULL,
    sha256 bytea NOT NULL, body bytea NOT NULL, PRIMARY KEY (origin, id))
"""
UPSERT = """
INSERT INTO limits_records (origin, id, type, revision, sha256, body)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bytea[], $6::bytea[])
ON CONFLICT (origin, id) DO UPDATE SET revision = EXCLUDED.revision, type = EXCLUDED.type,
    sha256 = EXCLUDED.sha256, body = EXCLUDED.body
WHERE limits_records.revision < EXCLUDED.revision
"""


def _rows(bundle, vk_bytes: bytes) -> list[tuple]:  # noqa: ANN001
    from nacl.signing import VerifyKey

    bundle.manifest.split(b"\n")
    VerifyKey(vk_bytes).verify(bundle.manifest, parse_signature(bundle.sig).signature)
    sha = hashlib.sha256
    out = []
    for data in bundle.files.values():
        digest = sha(data).digest()
        rec = parse_record(data)
        out.append((rec.get("Origin"), rec.get("ID"), rec.entity, int(rec.get("Revision")),
                    digest, data))
    return out


async def _ingest(url: str, bundles: list, vk: bytes, copy: bool,  # noqa: ANN001
                  warmup: int = 0) -> float:
    """Seconds to store ``bundles[warmup:]``, after ``bundles[:warmup]`` went into the same
    fresh table unclocked, 4 in flight (as ``bench_hub.py`` pushes)."""
    import asyncpg

    pool = await asyncpg.create_pool(url, min_size=4, max_size=4)
    try:
        async with pool.acquire() as c:
            await c.execute("DROP TABLE IF EXISTS limits_records")
            await c.execute(INGEST_TABLE)
        sem = asyncio.Semaphore(4)

        async def one(b) -> None:  # noqa: ANN001
            async with sem:
                rows = _rows(b, vk)
                async with pool.acquire() as c, c.transaction():
                    if copy:
                        await c.copy_records_to_table("limits_records", records=rows)
                    else:
                        await c.execute(UPSERT, *map(list, zip(*rows, strict=True)))

        await asyncio.gather(*(one(b) for b in bundles[:warmup]))
        start = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bundles[warmup:]))
        elapsed = time.perf_counter() - start
        async with pool.acquire() as c:
            stored = await c.fetchval("SELECT count(*) FROM limits_records")
        if stored != sum(len(b.files) for b in bundles):
            raise RuntimeError(f"ingest baseline stored {stored} rows")
        return elapsed
    finally:
        async with pool.acquire() as c:
            await c.execute("DROP TABLE IF EXISTS limits_records")
        await pool.close()


def _with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


async def _admin(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def ingest(quick: bool, database_url: str = "", bundles: int | None = None,
           warmup: int = 16) -> dict[str, float]:
    """Records/s of the essentials storing ``bundles`` 1,000-record bundles (default: as
    many as ``bench_hub.py`` pushes in ``report.py``'s turns, 60 quick and 200 full) into
    a table that took ``warmup`` bundles first, unclocked: the same volume and the same
    warm start as the hub's turn. (Until session 8 it was the best of two runs of 10 or
    30 bundles into an empty table: such a burst of 0.15 s measured 53,000-67,000
    records/s where the warmed run measured 63,000-73,000, alternately on one box.)"""
    import bench_protocol as bp
    from bench_protocol import SEED

    from protocol.signature import public_key_from_seed

    n_bundles = warmup + (bundles or (60 if quick else 200))
    built = []
    records = bp.make_records(1000 * n_bundles)
    from protocol.bundle import build_bundle

    for i in range(n_bundles):  # distinct records per bundle, as bench_hub.py sends
        built.append(build_bundle(records[i * 1000:(i + 1) * 1000], seed=SEED,
                                  origin=bp.ORIGIN, instance="https://bench.example",
                                  sequence=1, previous=None, kind="snapshot",
                                  created_at=bp.T0, signed_at=bp.T0))
    vk = public_key_from_seed(SEED)
    timed = n_bundles - warmup
    tmp = None
    server = None
    if not database_url:
        import pgserver

        tmp = tempfile.TemporaryDirectory(prefix="wb-limits-")
        server = pgserver.get_server(Path(tmp.name) / "pgdata", cleanup_mode="delete")
        database_url = server.get_uri()
    # a scratch database next to the given one (never a table in someone's database)
    scratch = f"wb_limits_{os.getpid()}"
    url = _with_database(database_url, scratch)
    asyncio.run(_admin(database_url, f'CREATE DATABASE "{scratch}"'))
    try:
        res = {}
        for name, copy in (("upsert", False), ("copy", True)):
            elapsed = asyncio.run(_ingest(url, built, vk, copy, warmup))
            res[f"{name}_records_per_s"] = round(1000 * timed / elapsed)
        return res
    finally:
        asyncio.run(_admin(database_url, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        if server is not None:
            server.cleanup()
            tmp.cleanup()


ALL = {"crypto": crypto, "essentials": essentials, "json": json_handler,
       "broadcast": broadcast, "ingest": ingest}


def run(names: list[str], quick: bool, database_url: str = "") -> dict[str, dict]:
    out: dict[str, dict] = {}
    for name in names:
        fn = ALL[name]
        print(f"limits: {name}...", file=sys.stderr, flush=True)
        out[name] = fn(quick, database_url) if name == "ingest" else fn(quick)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs (report.py --quick)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", nargs="*", choices=sorted(ALL), default=list(ALL))
    ap.add_argument("--database-url", default="", help="default: a fresh embedded PostgreSQL")
    ap.add_argument("--serve-json", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_json:
        _serve_json(args.serve_json)
        return
    res = run(args.only, args.quick, args.database_url)
    res["machine"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                      "load": [round(x, 2) for x in os.getloadavg()],
                      "event_loop": "uvloop" if _loop_factory() else "asyncio"}
    if args.json:
        print(json.dumps(res))
        return
    for name, figures in res.items():
        print(f"{name:<11} " + ", ".join(f"{k} {v:,}" if isinstance(v, int | float) else
                                         f"{k} {v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
