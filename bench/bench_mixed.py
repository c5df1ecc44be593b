"""Hub under mixed load: writers push, a reader reads, stream subscribers follow live.

Starts ``wb hub serve`` in a subprocess (embedded PostgreSQL under a temporary directory
unless a URL is given; with a URL a scratch database is created next to it and dropped
after). Phase 1 (``--warm`` seconds): only the writers. Phase 2 (``--duration`` seconds):
the writers again, plus a records-API reader (``wrk`` when installed, else an aiohttp loop)
and ``--subscribers`` WebSocket stream subscribers in a separate process. Phase 3
(``--warm`` seconds, once the reader and the subscribers are gone): only the writers
again. The writers-only rate is the mean of phases 1 and 3, which bracket phase 2: the
first runs on an empty index, the last on one that holds everything phase 2 wrote, and a
20 s phase alone moved by 10-20% from run to run (the shared PostgreSQL's checkpoints).
It prints the write rate of every phase, the reader's p50/p99, the delay
from a push's acknowledgement to the arrival of its frame at every subscriber
(p50/p99/max), the cut-offs (``consumer_too_slow`` frames; a cut-off subscriber
reconnects with its cursor) and the hub's RSS at the start, middle and end of phase 2.

Writers: ``--peers`` peers with ``--connections`` connections each; every connection pushes
its own origin's hash chain (so pushes of one chain arrive in order) of ``--records``-record
bundles, built before the hub starts.

    python bench/bench_mixed.py                                        # 16x4, 32, 50, 60 s
    python bench/bench_mixed.py --peers 4 --connections 2 --subscribers 10 --duration 20
    python bench/bench_mixed.py postgresql://postgres@127.0.0.1:5432/postgres

Exit status 1 when a goal is missed (``--no-goals`` to only report). ``--profile PATH``
needs py-spy (``python3 -m pip install py-spy``; a profiling tool, not a dependency);
``--reader-delay-ms`` paces wrk with bench/wrk_pace.lua.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import ws_follow  # noqa: E402
from bench.bench_hub import postmaster_pid, running_hub, tree_cpu  # noqa: E402
from bench.bench_hub_stream import rss_mb  # noqa: E402
from bench.ws_follow import bundle_seq  # noqa: E402
from hub.app import MIGRATIONS  # noqa: E402
from protocol.containers import CBOR_MEDIA_TYPE, decode_frame, to_cbor  # noqa: E402
from service import db  # noqa: E402
from service.ids import token_hash  # noqa: E402
from service.serving import event_loop_factory  # noqa: E402
from tests.hub.helpers import Origin  # noqa: E402

GOALS = {"frame_p99": 1.0, "write_ratio": 0.8, "reader_p99": 0.25, "rss_drift": 0.10}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(len(values) * p / 100 + 0.5) - 1))]


class Chain:
    """One origin's bundles, built ahead; built on demand should the stock run out."""

    def __init__(self, o: Origin, stock: int, records: int) -> None:
        self.origin, self.records = o, records
        self.stock = [to_cbor(o.many(records)) for _ in range(stock)]
        self.extra = 0

    def next(self) -> bytes:
        if self.stock:
            return self.stock.pop(0)
        self.extra += 1
        return to_cbor(self.origin.many(self.records))


def build(peers: int, conns: int, per_chain: int, records: int) -> list[Chain]:
    return [Chain(Origin(f"mixed-{p}-{c}".encode().ljust(32, b"\0"),
                         instance=f"https://p{p}c{c}.example"), per_chain, records)
            for p in range(peers) for c in range(conns)]


async def prepare(url: str, peers: int, conns: int) -> None:
    await db.migrate_url(url, "hub", MIGRATIONS)
    conn = await asyncpg.connect(url)
    try:
        for p in range(peers):
            await conn.execute("INSERT INTO hub_peers (name, kind, token_hash) VALUES "
                               "($1, 'node', $2)", f"peer{p}", token_hash(f"mixed-token-{p}"))
            for c in range(conns):
                o = Origin(f"mixed-{p}-{c}".encode().ljust(32, b"\0"))
                await conn.execute("INSERT INTO hub_trusted_keys (origin, key_id, public_key)"
                                   " VALUES ($1, $1, $2)", o.origin, o.public_key)
    finally:
        await conn.close()


async def write(base: str, chains: list[Chain], conns: int, seconds: float,
                acks: dict[int, float]) -> tuple[int, int]:
    """Push every chain on its own connection for ``seconds``; (stored, failures)."""
    deadline = time.monotonic() + seconds
    stored = failures = 0

    async def one(i: int, chain: Chain) -> None:
        nonlocal stored, failures
        headers = {"Content-Type": CBOR_MEDIA_TYPE,
                   "Authorization": f"Bearer mixed-token-{i // conns}"}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as s:
            while time.monotonic() < deadline:
                body = chain.next()
                async with s.post(f"{base}/api/v2/bundles", data=body, headers=headers) as r:
                    answer = await r.json(content_type=None)
                    now = time.monotonic()
                if r.status == 201:
                    acks[answer["hub_seq"]] = now
                    stored += 1
                else:
                    failures += 1
                    print(f"  push answered {r.status}: {answer}", file=sys.stderr)
                    return

    await asyncio.gather(*[one(i, c) for i, c in enumerate(chains)])
    return stored, failures


def subscribe(base: str, n: int, seconds: float, out: Any, catchup: int = 0) -> None:
    """Child process: ``n`` prompt subscribers, and ``catchup`` others that replay the log
    from the start again and again (not measured: they load the hub); sends (arrivals,
    cut-offs, replays) back."""

    async def main() -> None:
        arrivals: dict[int, list[float]] = {}
        cutoffs = 0
        deadline = time.monotonic() + seconds

        async def one(ready: asyncio.Event) -> None:
            # one deadline for the whole run, not a timer per message received
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(asyncio.get_running_loop().time() + seconds):
                    await follow(ready)

        async def follow(ready: asyncio.Event) -> None:
            since: int | None = None
            first = True

            def on_bundle(seq: int, now: float) -> None:
                nonlocal since
                arrivals.setdefault(seq, []).append(now)
                since = seq

            def on_control(payload: bytes) -> bool:
                nonlocal since, first, cutoffs
                frame = decode_frame(payload)
                if frame.op == "bundle":  # not in the hub's own field order
                    on_bundle(frame.seq, time.monotonic())
                elif frame.op == "info":
                    since = frame.seq
                    if first:
                        first = False
                        ready.set()
                elif frame.op == "error":
                    cutoffs += 1
                    since = frame.seq
                    return False
                return True

            while True:  # a cut-off subscriber reconnects with its cursor
                query = f"?since={since}" if since is not None else ""
                await ws_follow.follow(base, "/api/v2/stream" + query, on_bundle, on_control)

        replays = 0

        async def replay(session: aiohttp.ClientSession) -> None:
            """Replay from the start to the head known at connection, then again."""
            nonlocal replays
            while time.monotonic() < deadline:
                async with session.get(f"{base}/api/v2/bundles?since=0&limit=1") as r:
                    head = (await r.json())["head"]
                async with session.ws_connect(f"{base}/api/v2/stream?since=0",
                                              max_msg_size=0) as ws:
                    while time.monotonic() < deadline:
                        msg = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                        if msg.type != aiohttp.WSMsgType.BINARY:
                            break
                        seq = bundle_seq(msg.data)
                        if seq is not None and seq >= head:
                            replays += 1
                            break

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            readies = [asyncio.Event() for _ in range(n)]
            tasks = [asyncio.create_task(one(e)) for e in readies]
            tasks += [asyncio.create_task(replay(session)) for _ in range(catchup)]
            await asyncio.gather(*[e.wait() for e in readies])
            out.send(("ready", None))
            for failure in {repr(r) for r in await asyncio.gather(*tasks, return_exceptions=True)
                            if isinstance(r, Exception)}:
                print(f"subscriber failed: {failure}", file=sys.stderr, flush=True)
        out.send(("done", (arrivals, cutoffs, replays)))

    # the measuring client should take as little of the machine as it can: uvloop when
    # installed (the hub's own loop too), and frames parsed where they arrive (ws_follow)
    with asyncio.Runner(loop_factory=event_loop_factory("auto")) as runner:
        runner.run(main())


async def read_loop(base: str, conns: int, seconds: float) -> list[float]:
    lat: list[float] = []
    deadline = time.monotonic() + seconds

    async def one(s: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            t = time.monotonic()
            async with s.get(f"{base}/api/v2/records") as r:
                await r.read()
            lat.append(time.monotonic() - t)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        await asyncio.gather(*[one(s) for _ in range(conns)])
    return lat


def wrk_reader(base: str, conns: int, seconds: float, delay_ms: int) -> subprocess.Popen[str]:
    pace = ["-s", str(ROOT / "bench" / "wrk_pace.lua")] if delay_ms else []
    return subprocess.Popen(["wrk", "-t2", f"-c{conns}", f"-d{int(seconds)}s", "--latency",
                             *pace, f"{base}/api/v2/records"], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, WRK_DELAY_MS=str(delay_ms)))


def wrk_result(text: str) -> tuple[float, float, float]:
    """(requests/s, p50 s, p99 s) from wrk --latency output."""
    units = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}

    def val(label: str) -> float:
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        return float(m.group(1)) * units[m.group(2)] if m else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    return (float(rps.group(1)) if rps else float("nan")), val("50%"), val("99%")


def serving_rss_mb(pid: int) -> float:
    """RSS of the hub process, plus its workers' with ``--hub-workers`` (children forked
    from it: the same command line; not its verification processes)."""
    def cmdline(p: int | str) -> bytes:
        try:
            return Path(f"/proc/{p}/cmdline").read_bytes()
        except OSError:
            return b""

    total, own = rss_mb(pid), cmdline(pid)
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if cmdline(child) == own:
                total += rss_mb(int(child))
    return total


async def sample_rss(pid: int, seconds: float, every: float) -> list[tuple[float, float]]:
    out = []
    start = time.monotonic()
    while True:
        t = time.monotonic() - start
        out.append((t, serving_rss_mb(pid)))
        if t >= seconds:
            return out
        await asyncio.sleep(min(every, seconds - t))


async def mixed(base: str, pid: int, chains: list[Chain], args: argparse.Namespace
                ) -> dict[str, Any]:
    result: dict[str, Any] = {}
    acks: dict[int, float] = {}
    print(f"phase 1: writers only, {args.warm:.0f} s", flush=True)
    roots = {"hub": pid, "writers (this process)": -os.getpid()}
    if args.postmaster:
        roots["postgres"] = args.postmaster
    cpu0 = tree_cpu(roots)
    t = time.monotonic()
    stored, fails = await write(base, chains, args.connections, args.warm, acks)
    result["warm_rate"] = stored / (time.monotonic() - t)
    result["cpu_warm"] = cores(cpu0, tree_cpu(roots), time.monotonic() - t)
    print(f"  {stored} bundles stored, {result['warm_rate']:.1f} bundles/s, "
          f"{fails} failures", flush=True)

    print(f"phase 2: writers + reader ({args.reader_connections} conns) + "
          f"{args.subscribers} subscribers, {args.duration:.0f} s", flush=True)
    parent, child = mp.Pipe()
    sub = mp.get_context("spawn").Process(
        target=subscribe, args=(base, args.subscribers, args.duration + 10, child,
                                args.catchup))
    sub.start()
    loop = asyncio.get_running_loop()
    kind, _ = await loop.run_in_executor(None, parent.recv)
    assert kind == "ready"
    acks.clear()
    use_wrk = shutil.which("wrk") is not None and not args.aiohttp_reader
    rss_task = asyncio.create_task(sample_rss(pid, args.duration, 5.0))
    spy = None
    if args.profile:  # where the hub's time goes during phase 2
        spy = await asyncio.create_subprocess_exec(
            "py-spy", "record", "--pid", str(pid), "--duration", str(int(args.duration)),
            "--format", "raw", "--output", args.profile,
            *(["--subprocesses"] if args.hub_workers > 1 else []), stdout=subprocess.DEVNULL)
    if use_wrk:
        wrk = wrk_reader(base, args.reader_connections, args.duration, args.reader_delay_ms)
        reader: Any = None
    else:
        reader = asyncio.create_task(read_loop(base, args.reader_connections, args.duration))
    roots["subscribers"] = sub.pid  # type: ignore[assignment]
    if use_wrk:
        roots["wrk"] = wrk.pid
    cpu0 = tree_cpu(roots)
    t = time.monotonic()
    stored, fails = await write(base, chains, args.connections, args.duration, acks)
    result["rate"] = stored / (time.monotonic() - t)
    result["cpu_mixed"] = cores(cpu0, tree_cpu(roots), time.monotonic() - t)
    if use_wrk:
        text = await loop.run_in_executor(None, wrk.communicate)
        result["reader_rps"], result["reader_p50"], result["reader_p99"] = wrk_result(text[0])
    else:
        lat = await reader
        result["reader_rps"] = len(lat) / args.duration
        result["reader_p50"], result["reader_p99"] = pct(lat, 50), pct(lat, 99)
    rss = await rss_task
    if spy is not None:
        await spy.wait()
    kind, (arrivals, cutoffs, replays) = await loop.run_in_executor(None, parent.recv)
    sub.join(10)
    delays = []
    missing = 0
    for seq, acked in acks.items():
        got = arrivals.get(seq, [])
        missing += args.subscribers - len(got)
        delays += [max(0.0, a - acked) for a in got]
    result.update(stored=stored, fails=fails, cutoffs=cutoffs, missing=missing, replays=replays,
                  frame_p50=pct(delays, 50), frame_p99=pct(delays, 99),
                  frame_max=max(delays, default=float("nan")), rss=rss, reader="wrk" if
                  use_wrk else "aiohttp")

    print(f"phase 3: writers only again, {args.warm:.0f} s", flush=True)
    del roots["subscribers"]
    roots.pop("wrk", None)
    cpu0 = tree_cpu(roots)
    t = time.monotonic()
    again, fails3 = await write(base, chains, args.connections, args.warm, {})
    result["after_rate"] = again / (time.monotonic() - t)
    result["cpu_after"] = cores(cpu0, tree_cpu(roots), time.monotonic() - t)
    result["fails"] += fails3
    print(f"  {again} bundles stored, {result['after_rate']:.1f} bundles/s, "
          f"{fails3} failures", flush=True)
    result["first_rate"] = result["warm_rate"]
    result["warm_rate"] = (result["first_rate"] + result["after_rate"]) / 2
    result["cpu_warm"] = {name: (result["cpu_warm"][name] + result["cpu_after"][name]) / 2
                          for name in result["cpu_after"]}
    result["built_late"] = sum(c.extra for c in chains)
    return result


def cores(before: dict[str, float], after: dict[str, float], seconds: float
          ) -> dict[str, float]:
    """CPU used per process tree over ``seconds``, in cores (1.0: one core all along)."""
    return {name: (after[name] - before[name]) / seconds for name in before}


def report(r: dict[str, Any], args: argparse.Namespace) -> bool:
    rss = r["rss"]
    mid = rss[len(rss) // 2][1]
    after20 = [m for t, m in rss if t >= 20] or [rss[-1][1]]
    drift = (max(after20) - min(after20)) / min(after20)
    ratio = r["rate"] / r["warm_rate"] if r["warm_rate"] else float("nan")
    print(f"write rate: {r['rate']:.1f} bundles/s mixed vs {r['warm_rate']:.1f} writers-only "
          f"(phases 1 and 3: {r['first_rate']:.1f}, {r['after_rate']:.1f}) ({ratio:.0%}); "
          f"{r['stored']} stored in phase 2, {r['fails']} failures"
          + (f" ({r['built_late']} built while pushing: raise --per-chain)"
             if r["built_late"] else ""))
    print(f"reader ({r['reader']}, {args.reader_connections} conns): "
          f"{r['reader_rps']:.0f} req/s, p50 {r['reader_p50'] * 1000:.1f} ms, "
          f"p99 {r['reader_p99'] * 1000:.1f} ms")
    print(f"frame delay after ack: p50 {r['frame_p50'] * 1000:.1f} ms, "
          f"p99 {r['frame_p99'] * 1000:.1f} ms, max {r['frame_max'] * 1000:.1f} ms; "
          f"frames missing {r['missing']}; cut-offs {r['cutoffs']}"
          + (f"; {r['replays']} catch-up replays by {args.catchup} subscribers"
             if args.catchup else ""))
    print(f"hub RSS: start {rss[0][1]:.1f} MB, middle {mid:.1f} MB, end {rss[-1][1]:.1f} MB; "
          f"after 20 s {min(after20):.1f}-{max(after20):.1f} MB ({drift:.1%})")
    print("  samples: " + ", ".join(f"{t:.0f}s {m:.0f}" for t, m in rss))
    for phase, key in (("writers only", "cpu_warm"), ("mixed", "cpu_mixed")):
        print(f"CPU in cores, {phase}: " + ", ".join(
            f"{name} {c:.2f}" for name, c in r[key].items()))
    if "postgres" in r["cpu_warm"] and r["warm_rate"] and r["rate"]:
        # all the machine's work per stored bundle: on a machine the run saturates in both
        # phases, the rates follow it, and unlike them it hardly moves with others' load
        warm = sum(r["cpu_warm"].values()) / r["warm_rate"] * 1000
        mix = sum(r["cpu_mixed"].values()) / r["rate"] * 1000
        print(f"CPU per stored bundle, every process of the run: writers only {warm:.2f} ms, "
              f"mixed {mix:.2f} ms (ratio {warm / mix:.0%})")
        print("  by process, ms writers only / mixed: " + ", ".join(
            f"{name} {r['cpu_warm'].get(name, 0) / r['warm_rate'] * 1000:.2f} / "
            f"{c / r['rate'] * 1000:.2f}" for name, c in r["cpu_mixed"].items()))
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ok = {"frame delay p99 < 1 s": r["frame_p99"] < GOALS["frame_p99"],
          "no cut-off, no missing frame": r["cutoffs"] == 0 and r["missing"] == 0,
          "write rate >= 80% of writers-only": ratio >= GOALS["write_ratio"],
          "reader p99 < 250 ms": r["reader_p99"] < GOALS["reader_p99"],
          "RSS flat after 20 s (10%)": drift <= GOALS["rss_drift"]}
    for goal, held in ok.items():
        print(f"  [{'ok' if held else 'MISSED'}] {goal}")
    return all(ok.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("database_url", nargs="?", default="")
    ap.add_argument("--peers", type=int, default=16)
    ap.add_argument("--connections", type=int, default=4, help="per peer")
    ap.add_argument("--records", type=int, default=10, help="per bundle")
    ap.add_argument("--reader-connections", type=int, default=32)
    ap.add_argument("--subscribers", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--warm", type=float, default=20.0, help="writers-only phase")
    ap.add_argument("--per-chain", type=int, default=0,
                    help="bundles built per chain (default: enough for 1,000/s)")
    ap.add_argument("--catchup", type=int, default=0,
                    help="extra subscribers replaying the log from since=0 over and over")
    ap.add_argument("--reader-delay-ms", type=int, default=0,
                    help="pause of each wrk connection between requests (default: none, "
                         "i.e. as fast as the hub answers)")
    ap.add_argument("--aiohttp-reader", action="store_true", help="even if wrk is installed")
    ap.add_argument("--no-goals", action="store_true")
    ap.add_argument("--profile", metavar="PATH",
                    help="record the hub with py-spy during phase 2 (collapsed stacks)")
    ap.add_argument("--hub-env", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--hub-workers", type=int, default=1,
                    help="serving processes of the hub (wb hub serve --workers)")
    args = ap.parse_args()
    rate = 1000 * args.hub_workers ** 0.5  # bundles/s to build for
    per_chain = args.per_chain or int(rate * (2 * args.warm + args.duration)
                                      / (args.peers * args.connections)) + 10
    print(f"building {args.peers * args.connections} chains x {per_chain} bundles of "
          f"{args.records} records...", flush=True)
    chains = build(args.peers, args.connections, per_chain, args.records)
    tmp = Path(tempfile.mkdtemp(prefix="wb-mixed-"))
    scratch = ""
    if args.database_url:
        scratch = f"wb_mixed_{os.getpid()}"
        url = args.database_url.rsplit("/", 1)[0] + "/" + scratch

        async def admin(sql: str) -> None:
            conn = await asyncpg.connect(args.database_url)
            await conn.execute(sql)
            await conn.close()

        asyncio.run(admin(f'CREATE DATABASE "{scratch}"'))
    else:
        url = db.start_embedded(tmp / "hub")
    # the embedded server's processes are ours to count; an external one serves others too
    args.postmaster = postmaster_pid(tmp / "hub")
    ok = False
    try:
        asyncio.run(prepare(url, args.peers, args.connections))
        env = {"WB_HUB_RATE_PER_MINUTE": "1000000", "WB_HUB_FOLLOW": "false"}
        env.update(kv.split("=", 1) for kv in args.hub_env)
        with running_hub(url, tmp / "hub", "--workers", str(args.hub_workers),
                         **env) as (base, pid):
            if args.hub_workers > 1:  # the first worker up answered; let the others start
                time.sleep(3)
            result = asyncio.run(mixed(base, pid, chains, args))
        ok = report(result, args)
    finally:
        if scratch:
            asyncio.run(admin(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
        shutil.rmtree(tmp, ignore_errors=True)
    if not ok and not args.no_goals:
        sys.exit(1)


if __name__ == "__main__":
    main()
