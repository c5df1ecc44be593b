"""Hub public feed API benchmark: requests/s of ``GET /api/v2/records`` at 64 connections.

Seeds the hub with public records through real ingest (1,000-record bundles POSTed to
``wb hub serve`` over HTTP), then drives the records API with ``wrk -t1 -c64 --latency``
(the Debian package; without it an aiohttp load generator with the same connection count
is used) and prints requests/s with p50 and p99 latency. A second run pages through the
index with the ``after`` cursor to exercise keyset pagination, a third uses a search.

    python bench/bench_hub_feed.py                          # 10,000 records, 30 s per URL
    python bench/bench_hub_feed.py --records 10000 --duration 10
    python bench/bench_hub_feed.py postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_hub import build, drive, prepare, running_hub  # noqa: E402
from service import db  # noqa: E402


def wrk(url: str, connections: int, seconds: int) -> tuple[float, float, float]:
    """(requests/s, p50 ms, p99 ms) measured by wrk."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw error answers:\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        assert m is not None, out
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    return rps, pct("50"), pct("99")


async def aiohttp_load(url: str, connections: int, seconds: int) -> tuple[float, float, float]:
    """The fallback load generator: ``connections`` clients in a closed loop."""
    lat: list[float] = []
    stop = time.perf_counter() + seconds
    conn = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=conn) as session:
        async def client() -> None:
            while time.perf_counter() < stop:
                t = time.perf_counter()
                async with session.get(url) as r:
                    await r.read()
                    if r.status != 200:
                        raise SystemExit(f"unexpected {r.status}")
                lat.append(time.perf_counter() - t)

        started = time.perf_counter()
        await asyncio.gather(*[client() for _ in range(connections)])
        elapsed = time.perf_counter() - started
    lat.sort()
    return len(lat) / elapsed, statistics.median(lat) * 1000, lat[int(len(lat) * 0.99)] * 1000


async def second_page(base: str) -> str:
    async with aiohttp.ClientSession() as session, \
            session.get(f"{base}/api/v2/records?limit=50") as r:
        body = await r.json()
    assert len(body["records"]) == 50 and body["after"], body
    return f"{base}/api/v2/records?limit=50&after={body['after']}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("database_url", nargs="?", default="")
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--duration", type=int, default=30)
    args = ap.parse_args()
    n_bundles = max(1, args.records // 1000)
    o, bodies = build(n_bundles, 1000)
    tmp = Path(tempfile.mkdtemp(prefix="wb-hubfeed-"))
    url = args.database_url or db.start_embedded(tmp / "hub")
    asyncio.run(prepare(url, o))
    load = "wrk" if shutil.which("wrk") else "aiohttp"
    try:
        with running_hub(url, tmp / "hub") as (base, _pid):
            run_feed(base, bodies, n_bundles, load, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_feed(base: str, bodies: list[bytes], n_bundles: int, load: str,
             args: argparse.Namespace) -> None:
    asyncio.run(drive(base, bodies, 2))
    print(f"seeded {n_bundles * 1000:,} public records; load generator {load}, "
          f"{args.connections} connections, {args.duration} s per URL")
    urls = [("first page (limit 50)", f"{base}/api/v2/records?limit=50"),
            ("second page (after=)", asyncio.run(second_page(base))),
            ("search q=ladder&entity=request",
             f"{base}/api/v2/records?q=ladder&entity=request&limit=20")]
    for label, target in urls:
        if load == "wrk":
            rps, p50, p99 = wrk(target, args.connections, args.duration)
        else:
            rps, p50, p99 = asyncio.run(aiohttp_load(target, args.connections,
                                                     args.duration))
        print(f"  {label}: {rps:,.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
