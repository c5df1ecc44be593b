"""Feed benchmark: the dashboard page and GET /api/requests under 64 concurrent clients.

Seeds 10,000 requests and 50,000 comments (plus 200 members) into a fresh database,
starts the node with ``wb serve`` in a subprocess (the embedded PostgreSQL under a
temporary directory unless a database URL is given), and drives it on loopback with an
aiohttp client load generator for a fixed duration, bounded in connections and time.

    python bench/bench_feed.py                      # embedded PostgreSQL, 60 s
    python bench/bench_feed.py postgresql://postgres@127.0.0.1:5432/postgres --duration 20

With a URL, a scratch database ``wb_bench_<pid>`` is created next to it and dropped after.
Prints requests/s, p50/p99 latency per target and the slowest one-second window.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from node.app import MIGRATIONS  # noqa: E402
from node.web import session_hash  # noqa: E402
from service import db  # noqa: E402
from service.ids import ulid  # noqa: E402

WORDS = ("ladder soup ride groceries garden move boxes dog walk tutoring bike repair "
         "childcare meal paint laptop fence firewood sewing tools rain jacket").split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def seed(url: str, n_requests: int, n_comments: int) -> str:
    """Fill the database; return the cookie of an active member session."""
    rnd = random.Random(42)
    conn = await asyncpg.connect(url)
    try:
        users = [ulid() for _ in range(200)]
        await conn.copy_records_to_table(
            "users", columns=["id", "username", "display_name"],
            records=[(u, f"member{i}", f"Member {i}") for i, u in enumerate(users)])
        start = dt.datetime.now(dt.UTC) - dt.timedelta(days=365)
        req_rows, req_ids = [], []
        for i in range(n_requests):
            created = start + dt.timedelta(minutes=50 * i + rnd.randint(0, 40))
            rid = ulid(int(created.timestamp() * 1000))
            req_ids.append((rid, created))
            status = "completed" if rnd.random() < 0.3 else "open"
            words = " ".join(rnd.choice(WORDS) for _ in range(40))
            req_rows.append((rid, f"Help with {rnd.choice(WORDS)} #{i}", words, status,
                             rnd.choice(users), created,
                             created + dt.timedelta(days=2) if status == "completed" else None,
                             "public" if rnd.random() < 0.5 else "private"))
        await conn.copy_records_to_table(
            "requests", columns=["id", "title", "description", "status", "created_by",
                                 "created_at", "completed_at", "sync_scope"],
            records=req_rows)
        com_rows = []
        for _ in range(n_comments):
            rid, created = rnd.choice(req_ids)
            when = created + dt.timedelta(minutes=rnd.randint(1, 5000))
            com_rows.append((ulid(int(when.timestamp() * 1000)), rid, rnd.choice(users),
                             " ".join(rnd.choice(WORDS) for _ in range(15)), when))
        await conn.copy_records_to_table(
            "comments", columns=["id", "request_id", "created_by", "body", "created_at"],
            records=com_rows)
        cookie = secrets.token_urlsafe(32)
        await conn.execute(
            "INSERT INTO sessions (id_hash, user_id, status, expires_at) "
            "VALUES ($1, $2, 'active', now() + interval '1 day')", session_hash(cookie), users[0])
        await conn.execute("VACUUM ANALYZE")
        return cookie
    finally:
        await conn.close()


async def wait_ready(base: str, proc: subprocess.Popen, within: float = 60) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"wb serve exited with {proc.returncode}")
            try:
                async with s.get(base + "/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the node did not become ready in time")


async def load(base: str, cookie: str, paths: list[str], clients: int, duration: float,
               warmup: float) -> dict[str, list[tuple[float, float]]]:
    """``clients`` workers loop over ``paths`` until the deadline; returns (t, latency)."""
    results: dict[str, list[tuple[float, float]]] = {p: [] for p in paths}
    errors: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout,
                                     cookies={"wb_session_id": cookie}) as s:
        t0 = time.monotonic()
        measure_from = t0 + warmup
        deadline = measure_from + duration

        async def worker(k: int) -> None:
            i = k
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return
                path = paths[i % len(paths)]
                i += 1
                try:
                    async with s.get(path) as r:
                        await r.read()
                        ok = r.status == 200
                except (TimeoutError, aiohttp.ClientError):
                    ok = False
                end = time.monotonic()
                if not ok:
                    errors[path] = errors.get(path, 0) + 1
                elif now >= measure_from:
                    results[path].append((end - measure_from, end - now))

        await asyncio.wait_for(asyncio.gather(*(worker(k) for k in range(clients))),
                               timeout=warmup + duration + 30)
    if errors:
        print(f"errors: {errors}")
    return results


def run_wrk(url: str, cookie: str, clients: int, duration: float, warmup: float,
            rate: float = 0.0, label: str = "wrk") -> str:
    """One wrk thread (the server needs the other core), ``clients`` connections;
    with ``rate``, each connection pauses so that about ``rate`` requests/s are offered."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    header = f"Cookie: wb_session_id={cookie}"
    pace: list[str] = []
    if rate > 0:
        os.environ["WRK_DELAY_MS"] = str(max(0, int(1000 * clients / rate)))
        pace = ["-s", str(ROOT / "bench" / "wrk_pace.lua")]
    if warmup:
        subprocess.run([wrk, "-t1", f"-c{clients}", f"-d{max(1, int(warmup))}s", "-H", header,
                        url], check=True, capture_output=True)
    out = subprocess.run([wrk, "-t1", f"-c{clients}", f"-d{int(duration)}s", "--latency",
                          "-H", header, *pace, url], check=True, capture_output=True, text=True)
    print(f"== {label} {url}\n{out.stdout}")
    return out.stdout


async def wait_bare(port: int, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            _r, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit("the bare handler did not start")


def bare_run(port: int, duration: float, label: str, path: str) -> None:
    """bench/limits.py's bare JSON handler, as limits.py drives it (wrk -t2 -c64), just
    before or after a node run: the baseline of the same minute ('== bare-before /')."""
    out = subprocess.run(["wrk", "-t2", "-c64", f"-d{max(1, round(duration))}s", "--latency",
                          f"http://127.0.0.1:{port}/"], check=True, capture_output=True,
                         text=True)
    print(f"== {label} {path}\n{out.stdout}")


def report(results: dict[str, list[tuple[float, float]]], duration: float) -> None:
    total = 0
    for path, samples in results.items():
        lat = sorted(x[1] for x in samples)
        total += len(lat)
        if not lat:
            print(f"{path:<16} no successful responses")
            continue
        per_sec = [0] * (int(duration) + 1)
        for t, _ in samples:
            per_sec[min(int(t), len(per_sec) - 1)] += 1
        worst = min(per_sec[:-1] or per_sec)
        p50 = lat[len(lat) // 2] * 1000
        print(f"{path:<16} {len(lat) / duration:8.0f} req/s   p50 {p50:6.1f} ms"
              f"   p99 {lat[int(len(lat) * 0.99)] * 1000:6.1f} ms   max "
              f"{lat[-1] * 1000:6.1f} ms   slowest 1 s window {worst} req   "
              f"mean {statistics.fmean(lat) * 1000:.1f} ms")
    print(f"{'total':<16} {total / duration:8.0f} req/s")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("database_url", nargs="?", default="",
                    help="PostgreSQL server URL (default: embedded pgserver in a temp dir)")
    ap.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--requests", type=int, default=10_000)
    ap.add_argument("--comments", type=int, default=50_000)
    ap.add_argument("--only", choices=["feed", "api", "both"], default="both")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="with --wrk: pace the connections to offer about this many "
                         "requests/s (latency at a target rate, not at saturation)")
    ap.add_argument("--half", action="store_true",
                    help="with --wrk: after each saturation run, offer half its rate and "
                         "report that run too ('== wrk-half'; issue 24: p99 at 50%% of "
                         "saturation)")
    ap.add_argument("--bare", action="store_true",
                    help="with --wrk: run bench/limits.py's bare JSON handler too, and "
                         "measure it just before and after each path ('== bare-before' / "
                         "'== bare-after'), for a ratio to the same minute's baseline")
    ap.add_argument("--wrk", action="store_true",
                    help="drive the load with wrk (Debian package) instead of the Python "
                         "client, which itself needs most of a core")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    admin_url = args.database_url
    proc = None
    bare = None
    bench_url = ""
    try:
        if admin_url:
            name = f"wb_bench_{os.getpid()}"
            conn = await asyncpg.connect(admin_url)
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
            await conn.close()
            p = urlsplit(admin_url)
            bench_url = urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))
        else:
            bench_url = await asyncio.to_thread(db.start_embedded, tmp / "data")
        await db.migrate_url(bench_url, "node", MIGRATIONS)
        t = time.monotonic()
        cookie = await seed(bench_url, args.requests, args.comments)
        print(f"seeded {args.requests} requests, {args.comments} comments "
              f"in {time.monotonic() - t:.1f} s")

        port = free_port()
        env = dict(os.environ, WB_DATABASE_URL=bench_url, WB_DATA_DIR=str(tmp / "data"),
                   WB_PORT=str(port), WB_HOST="127.0.0.1", SESSION_SECRET="bench",
                   WB_LOG_LEVEL="WARNING", SITE_URL=f"http://127.0.0.1:{port}")
        cmd = [sys.executable, "-c", "from ops.cli import main; main()", "serve"]
        # started once, before the load: a blocking spawn is fine here
        proc = subprocess.Popen(cmd, env=env, cwd=str(ROOT))  # noqa: ASYNC220
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base, proc)
        paths = {"feed": ["/"], "api": ["/api/requests"],
                 "both": ["/", "/api/requests"]}[args.only]
        print(f"{args.clients} clients for {args.duration:.0f} s against {', '.join(paths)}")
        bare = None
        if args.wrk and args.bare:  # the bare handler of limits.py, measured around each run
            bare_port = free_port()
            # started once, before the load: a blocking spawn is fine here
            bare = subprocess.Popen([sys.executable,  # noqa: ASYNC220
                                     str(ROOT / "bench" / "limits.py"),
                                     "--serve-json", str(bare_port)])
            await wait_bare(bare_port)
        if args.wrk:
            for path in paths:
                if bare is not None:
                    bare_run(bare_port, args.duration / 2, "bare-before", path)
                out = run_wrk(base + path, cookie, args.clients, args.duration, args.warmup,
                              args.rate)
                if bare is not None:
                    bare_run(bare_port, args.duration / 2, "bare-after", path)
                if args.half:  # the same path again, offered half the rate just measured
                    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
                    run_wrk(base + path, cookie, args.clients, args.duration, 0,
                            rps / 2, label="wrk-half")
        else:
            results = await load(base, cookie, paths, args.clients, args.duration,
                                 args.warmup)
            report(results, args.duration)
    finally:
        if bare is not None:
            bare.terminate()
            bare.wait(10)
        if proc is not None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if admin_url and bench_url:
            conn = await asyncpg.connect(admin_url)
            await conn.execute(
                f'DROP DATABASE IF EXISTS "{urlsplit(bench_url).path.lstrip("/")}" WITH (FORCE)')
            await conn.close()
        if not admin_url:  # stop the embedded server before its data dir goes
            from service import pgwatch

            await asyncio.to_thread(pgwatch.stop_server, (tmp / "data" / "pgdata").resolve())
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
