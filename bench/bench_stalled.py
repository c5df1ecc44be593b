"""Stalled connections against a real server: are they shed, and does service go on?

Starts ``wb hub serve`` (or ``wb serve`` with ``--node``) on its embedded PostgreSQL in a
temporary directory (or on ``--database-url``), opens N connections that each send half a
request line and stall, and meanwhile times ``/healthz`` requests. Prints the server's
open file descriptors before, at the peak and after; how many stalled connections were
answered 503 (over ``WB_MAX_CONNECTIONS`` with every connection busy) and how many were
closed without an answer (making room at the cap, or by the header deadline
``WB_HEADER_TIMEOUT``), and the seconds until the last one was closed.

    python bench/bench_stalled.py                       # hub, 2000 connections, defaults
    python bench/bench_stalled.py --node --connections 2000
    python bench/bench_stalled.py --header-timeout 5 --max-connections 500
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.demo import Proc, free_port  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-stalled-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"WB_HEADER_TIMEOUT": str(args.header_timeout),
           "WB_MAX_CONNECTIONS": str(args.max_connections), "WB_LOG_LEVEL": "WARNING"}
    if args.node:
        env.update(WB_DATABASE_URL=args.database_url, WB_DATA_DIR=str(tmp / "node"),
                   WB_SCHEDULER="false", SESSION_SECRET="bench-stalled")
        cmd = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    else:
        env.update(WB_HUB_DATABASE_URL=args.database_url, WB_HUB_DATA_DIR=str(tmp / "hub"),
                   WB_HUB_URL=base)
        cmd = ["hub", "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = Proc("node" if args.node else "hub", cmd, env, port, tmp / "server.log")
    server.start()
    writers: list[asyncio.StreamWriter] = []
    try:
        await server.wait_ready(120)
        assert server.proc is not None
        ps = psutil.Process(server.proc.pid)
        fds_before = ps.num_fds()
        peak = fds_before
        started = time.monotonic()
        readers = []
        for _ in range(args.connections):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHo")
            readers.append(reader)
            writers.append(writer)
        opened = time.monotonic() - started

        latencies: list[float] = []
        stop = asyncio.Event()

        async def probe() -> None:
            async with aiohttp.ClientSession() as s:
                while not stop.is_set():
                    t = time.monotonic()
                    try:
                        async with s.get(f"{base}/healthz") as r:
                            await r.read()
                            if r.status == 200:
                                latencies.append(time.monotonic() - t)
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.2)

        async def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, ps.num_fds())
                await asyncio.sleep(0.2)

        tasks = [asyncio.create_task(probe()), asyncio.create_task(sample())]
        closed_at: list[float] = []

        async def drained(reader: asyncio.StreamReader) -> bytes:
            data = await reader.read()
            closed_at.append(time.monotonic() - started)
            return data

        answers = await asyncio.wait_for(
            asyncio.gather(*(drained(r) for r in readers), return_exceptions=True),
            args.header_timeout * 3 + 60)
        stop.set()
        await asyncio.gather(*tasks)
        for w in writers:
            w.close()
        writers.clear()
        for _ in range(300):  # up to 30 s for the refused ones to linger out
            if ps.num_fds() <= fds_before + 2:
                break
            await asyncio.sleep(0.1)
        refused = sum(isinstance(a, bytes) and a.startswith(b"HTTP/1.1 503") for a in answers)
        cut = sum(a == b"" for a in answers)
        errors = sum(isinstance(a, BaseException) for a in answers)
        print(f"server: {'wb serve' if args.node else 'wb hub serve'}; connections "
              f"{args.connections} (opened in {opened:.1f} s); WB_HEADER_TIMEOUT "
              f"{args.header_timeout}, WB_MAX_CONNECTIONS {args.max_connections}")
        print(f"answered 503 (over the cap, all busy): {refused}; closed without an answer "
              f"(made room at the cap, or header deadline): {cut}; client errors: {errors}")
        print(f"last stalled connection closed after {max(closed_at):.1f} s")
        print(f"server fds: before {fds_before}, peak {peak}, after {ps.num_fds()}")
        if latencies:
            ms = sorted(x * 1000 for x in latencies)
            print(f"/healthz during the stall: {len(ms)} answers 200, p50 "
                  f"{statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms")
        else:
            print("/healthz during the stall: no 200 answer")
    finally:
        for w in writers:
            w.close()
        await asyncio.to_thread(server.stop)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", action="store_true", help="wb serve instead of the hub")
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--header-timeout", type=float, default=10.0)
    parser.add_argument("--max-connections", type=int, default=1000)
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL URL (default: the embedded server)")
    asyncio.run(main(parser.parse_args()))
