"""Hub stream fan-out benchmark: time for one 1,000-record bundle to reach every one of N
WebSocket stream subscribers, and the hub's RSS with them connected.

Starts ``wb hub serve`` in a subprocess (embedded PostgreSQL in a temporary directory
unless a URL is given), opens N streams at the head, pushes a bundle, and measures from
the moment the push is sent until each subscriber has decoded its frame. Repeats for
several rounds.

    python bench/bench_hub_stream.py --subscribers 100 --rounds 5
    python bench/bench_hub_stream.py --subscribers 1000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_hub import TOKEN, build, prepare, running_hub  # noqa: E402
from protocol.containers import CBOR_MEDIA_TYPE, decode_frame  # noqa: E402
from service import db  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def run(base: str, bodies: list[bytes], n: int, pid: int) -> None:
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        sockets = []
        for i in range(0, n, 100):
            sockets += await asyncio.gather(*[
                session.ws_connect(f"{base}/api/v2/stream", max_msg_size=0)
                for _ in range(min(100, n - i))])
        for ws in sockets:
            decode_frame((await ws.receive()).data)  # info frame
        print(f"{n} subscribers connected; hub RSS {rss_mb(pid):.0f} MB")
        headers = {"Content-Type": CBOR_MEDIA_TYPE, "Authorization": f"Bearer {TOKEN}"}
        for body in bodies:
            lat: list[float] = []

            async def one(ws: aiohttp.ClientWebSocketResponse, t0: float,
                          out: list[float]) -> None:
                frame = decode_frame((await ws.receive()).data)
                assert frame.op == "bundle"
                out.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            waiters = [asyncio.create_task(one(ws, t0, lat)) for ws in sockets]
            async with session.post(f"{base}/api/v2/bundles", data=body, headers=headers) as r:
                assert r.status == 201, await r.text()
            await asyncio.gather(*waiters)
            lat.sort()
            print(f"  bundle reached {n} subscribers: p50 {lat[len(lat) // 2] * 1000:.0f} ms, "
                  f"p99 {lat[max(0, int(len(lat) * 0.99) - 1)] * 1000:.0f} ms, "
                  f"max {lat[-1] * 1000:.0f} ms; hub RSS {rss_mb(pid):.0f} MB")
        for ws in sockets:
            await ws.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("database_url", nargs="?", default="")
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    o, bodies = build(args.rounds, 1000)
    tmp = Path(tempfile.mkdtemp(prefix="wb-hubstream-"))
    url = args.database_url or db.start_embedded(tmp / "hub")
    asyncio.run(prepare(url, o))
    try:
        with running_hub(url, tmp / "hub") as (base, pid):
            asyncio.run(run(base, bodies, args.subscribers, pid))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
