"""Hub stream fan-out benchmark: time for one 1,000-record bundle to reach every one of N
WebSocket stream subscribers, next to a bare broadcast of the same bytes (issue 24).

Starts ``wb hub serve`` in a subprocess (embedded PostgreSQL in a temporary directory
unless a URL is given: then a scratch database next to it), opens N streams at the head,
pushes a bundle, and measures from the moment the push is sent until each subscriber has
received and decoded its frame.

The baseline is a bare aiohttp WebSocket server in a subprocess of its own (the hub has
one too), on the same event loop the hub picks: it sends each connection an ``info``
frame, and on ``POST /api/v2/bundles`` splices the posted body into a ``bundle`` frame
exactly as the hub does (``encode_bundle_frame``: the same size, checked) and writes it
to every connection, one send per connection as the hub's stream writers do. Nothing
else: no ingest, no database, no cursor. The SAME client code (N aiohttp WebSockets in
this one process, each receiving and decoding its frame) measures both, with rounds
interleaved (hub, bare, bare, hub, ...), so the client's own cost, which on two cores is
a large part of both figures, is the same on each side of the ratio.

    python bench/bench_hub_stream.py --subscribers 100 --rounds 5
    python bench/bench_hub_stream.py --subscribers 1000 --rounds 3 --json
    python bench/bench_hub_stream.py --subscribers 1000 --rounds 3 --profile /tmp/hub.txt

``--profile PATH`` records the hub with py-spy during the measured rounds (collapsed
stacks; py-spy is a profiling tool, not a dependency: ``python3 -m pip install py-spy``).
Goal (issue 24): hub p99 <= 1.5 x the bare p99, and hub p99 < 1 s, at 1,000 subscribers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_hub import (  # noqa: E402
    TOKEN,
    build,
    hub_database,
    prepare,
    running_hub,
    serving,
)
from protocol.containers import (  # noqa: E402
    CBOR_MEDIA_TYPE,
    Frame,
    decode_frame,
    encode_bundle_frame,
    encode_frame,
)
from service.serving import event_loop_factory  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a process and its live children (the hub's verify
    processes); PostgreSQL's backends are not counted."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _loop_factory():  # noqa: ANN202
    """The event loop of the bare server and the clients: WB_EVENT_LOOP as `wb serve`
    reads it (uvloop when installed)."""
    return event_loop_factory(os.environ.get("WB_EVENT_LOOP", "auto").strip().lower())


# -- the bare baseline server ----------------------------------------------------------------

def serve_bare(port: int) -> None:
    """A WebSocket server that only broadcasts what is posted, framed as the hub frames it."""
    from aiohttp import web

    sockets: set[web.WebSocketResponse] = set()
    sends: set[asyncio.Task[None]] = set()
    seq = 0

    async def stream(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=4096)
        await ws.prepare(request)
        await ws.send_bytes(encode_frame(Frame(op="info", seq=seq)))
        sockets.add(ws)
        try:
            async for _ in ws:
                pass
        finally:
            sockets.discard(ws)
        return ws

    async def push(request: web.Request) -> web.Response:
        nonlocal seq
        body = await request.read()
        seq += 1
        frame = encode_bundle_frame(seq, hashlib.sha256(body).hexdigest(),
                                    request.query["origin"], body)
        for ws in sockets:  # one send per connection, each in its own task (as the hub)
            task = asyncio.create_task(ws.send_bytes(frame))
            sends.add(task)
            task.add_done_callback(sends.discard)
        return web.Response(status=201)

    async def ready(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/api/v2/stream", stream)
    app.router.add_post("/api/v2/bundles", push)
    app.router.add_get("/readyz", ready)
    factory = _loop_factory()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None,
                loop=factory() if factory else None)


def running_bare() -> contextlib.AbstractContextManager[tuple[str, int]]:
    return serving([sys.executable, __file__, "--serve-bare"])


# -- the clients (the same for both servers) ---------------------------------------------------

async def subscribe(session: aiohttp.ClientSession, base: str,
                    n: int) -> list[aiohttp.ClientWebSocketResponse]:
    sockets: list[aiohttp.ClientWebSocketResponse] = []
    for i in range(0, n, 100):
        sockets += await asyncio.gather(*[
            session.ws_connect(f"{base}/api/v2/stream", max_msg_size=0)
            for _ in range(min(100, n - i))])
    for ws in sockets:
        decode_frame((await ws.receive()).data)  # info frame
    return sockets


async def fan_round(session: aiohttp.ClientSession, base: str,
                    sockets: list[aiohttp.ClientWebSocketResponse], body: bytes,
                    origin: str, decode: bool = True) -> tuple[list[float], int, float]:
    """Push ``body``; seconds from the push until each subscriber received (and with
    ``decode``, decoded) its frame, sorted, the frame's size, and seconds until the push
    was answered."""
    lat: list[float] = []
    sizes: set[int] = set()

    async def one(ws: aiohttp.ClientWebSocketResponse, t0: float) -> None:
        msg = await ws.receive()
        if msg.type != aiohttp.WSMsgType.BINARY:
            raise SystemExit(f"{base}: stream ended ({msg.type.name}, {ws.close_code})")
        if decode:
            frame = decode_frame(msg.data)
            assert frame.op == "bundle" and frame.bundle is not None
        lat.append(time.perf_counter() - t0)
        sizes.add(len(msg.data))

    headers = {"Content-Type": CBOR_MEDIA_TYPE, "Authorization": f"Bearer {TOKEN}"}
    t0 = time.perf_counter()
    waiters = [asyncio.create_task(one(ws, t0)) for ws in sockets]
    async with session.post(f"{base}/api/v2/bundles", params={"origin": origin},
                            data=body, headers=headers) as r:
        assert r.status == 201, await r.text()
    acked = time.perf_counter() - t0
    await asyncio.gather(*waiters)
    assert len(sizes) == 1, sizes
    lat.sort()
    return lat, sizes.pop(), acked


def pct(values: list[float], p: float) -> float:
    return values[max(0, int(len(values) * p / 100) - 1)]


def summary(lat: list[float]) -> dict[str, float]:
    lat = sorted(lat)
    return {"first_s": round(lat[0], 3), "p50_s": round(pct(lat, 50), 3),
            "p99_s": round(pct(lat, 99), 3), "max_s": round(lat[-1], 3)}


async def run(hub: str, bare: str, bodies: list[bytes], origin: str, n: int, hub_pid: int,
              bare_pid: int,
              profile: str, say: Callable[[str], None], decode: bool = True) -> dict:
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn) as session:
        subs = {"hub": await subscribe(session, hub, n), "bare": await subscribe(session, bare, n)}
        base = {"hub": hub, "bare": bare}
        say(f"{n} subscribers on each server; hub RSS {rss_mb(hub_pid):.0f} MB")
        warm, *measured = bodies
        for name in ("hub", "bare"):  # warm-up (the hub's first push starts its verifiers)
            await fan_round(session, base[name], subs[name], warm, origin, decode)
        spy = None
        if profile:
            spy = await asyncio.create_subprocess_exec(
                "py-spy", "record", "--pid", str(hub_pid), "--rate", "200", "--format",
                "raw", "--output", profile, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            await asyncio.sleep(1.0)  # py-spy attaches
        pooled: dict[str, list[float]] = {"hub": [], "bare": []}
        rounds: dict[str, list[dict[str, float]]] = {"hub": [], "bare": []}
        size = {}
        pids = {"hub": hub_pid, "bare": bare_pid}
        cpu = {"hub": 0.0, "bare": 0.0}  # server CPU seconds over the measured rounds
        client = {"hub": 0.0, "bare": 0.0}  # this process's CPU seconds, same rounds
        answered: dict[str, list[float]] = {"hub": [], "bare": []}  # the push's answer
        for i, body in enumerate(measured):
            for name in ("hub", "bare") if i % 2 == 0 else ("bare", "hub"):
                c0, me0 = cpu_s(pids[name]), time.process_time()
                lat, size[name], acked = await fan_round(session, base[name], subs[name], body,
                                                         origin, decode)
                answered[name].append(acked)
                cpu[name] += cpu_s(pids[name]) - c0
                client[name] += time.process_time() - me0
                pooled[name] += lat
                rounds[name].append(summary(lat))
                s = rounds[name][-1]
                say(f"  round {i + 1} {name:<4} {n} subscribers: answered {acked * 1000:.0f} ms, "
                    f"first "
                    f"{s['first_s'] * 1000:.0f} ms, p50 {s['p50_s'] * 1000:.0f} ms, "
                    f"p99 {s['p99_s'] * 1000:.0f} ms, max {s['max_s'] * 1000:.0f} ms; CPU "
                    f"server {cpu_s(pids[name]) - c0:.2f} s, client "
                    f"{time.process_time() - me0:.2f} s"
                    + (f"; hub RSS {rss_mb(hub_pid):.0f} MB" if name == "hub" else ""))
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            await spy.wait()
        if size["hub"] != size["bare"]:
            raise SystemExit(f"frames differ in size: hub {size['hub']}, bare {size['bare']}")
        for ws in subs["hub"] + subs["bare"]:
            await ws.close()
    res = {"subscribers": n, "rounds": len(measured), "client": "decode" if decode else "count",
           "frame_bytes": size["hub"],
           "hub": summary(pooled["hub"]), "bare": summary(pooled["bare"]),
           "rounds_p99_s": {k: [r["p99_s"] for r in v] for k, v in rounds.items()},
           "hub_rss_mb": round(rss_mb(hub_pid)),
           "push_answered_s": {k: round(sorted(v)[len(v) // 2], 3) for k, v in answered.items()},
           "server_cpu_s_per_round": {k: round(v / len(measured), 3) for k, v in cpu.items()},
           "client_cpu_s_per_round": {k: round(v / len(measured), 3) for k, v in client.items()}}
    res["ratio_p99"] = round(res["hub"]["p99_s"] / res["bare"]["p99_s"], 2)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("database_url", nargs="?", default="")
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5, help="measured rounds (after a warm-up)")
    ap.add_argument("--client", choices=("decode", "count"), default="decode",
                    help="each subscriber decodes its frame (default) or only takes its bytes")
    ap.add_argument("--json", action="store_true", help="print the result as JSON only")
    ap.add_argument("--profile", metavar="PATH",
                    help="record the hub with py-spy during the measured rounds")
    ap.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return

    def say(text: str) -> None:
        print(text, file=sys.stderr if args.json else sys.stdout, flush=True)

    o, bodies = build(args.rounds + 1, 1000)
    with hub_database(args.database_url, "wb-hubstream-") as (url, tmp):
        asyncio.run(prepare(url, o))
        # every subscriber is an open connection: leave room above them for the pushes
        with running_hub(url, tmp / "hub", WB_MAX_CONNECTIONS=str(args.subscribers + 100)
                         ) as (hub, pid), running_bare() as (bare, bare_pid):
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                res = runner.run(run(hub, bare, bodies, o.origin, args.subscribers, pid, bare_pid,
                                     args.profile or "", say, args.client == "decode"))
    if args.json:
        print(json.dumps(res))
        return
    h, b = res["hub"], res["bare"]
    print(f"{res['subscribers']} subscribers ({res['client']}), {res['rounds']} rounds, frame "
          f"{res['frame_bytes']:,} bytes (pooled over rounds)")
    print(f"  hub : p50 {h['p50_s']:.3f} s, p99 {h['p99_s']:.3f} s, max {h['max_s']:.3f} s")
    print(f"  bare: p50 {b['p50_s']:.3f} s, p99 {b['p99_s']:.3f} s, max {b['max_s']:.3f} s")
    hc, bc = res["server_cpu_s_per_round"], res["client_cpu_s_per_round"]
    print(f"  CPU per round: hub {hc['hub']:.2f} s (with its verify processes), bare server "
          f"{hc['bare']:.2f} s; client {bc['hub']:.2f} s (hub rounds), {bc['bare']:.2f} s "
          f"(bare rounds)")
    print(f"  hub p99 / bare p99 = {res['ratio_p99']:.2f} (goal <= 1.5); hub p99 "
          f"{h['p99_s']:.3f} s (goal < 1 s)")


if __name__ == "__main__":
    main()
