"""Every benchmark next to the machine's limit for its path, measured in one run.

    python bench/report.py [--quick] [--database-url URL] [--out FILE]

Runs bench/limits.py (the stripped baselines), then the benchmarks, on this machine, one
after the other, and prints a Markdown table for docs/benchmarks.md: each figure, its
baseline from the same run and the ratio against the goal of issue 24. ``--quick`` takes
about 5 minutes (shorter wrk runs, fewer bundles, 3 fan-out rounds); without it about 11.
Hub ingest and its baseline take three turns each, and their medians are compared.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def _run(args: list[str], timeout: float) -> str:
    print(f"report: {' '.join(args)}", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, *args], cwd=BENCH.parent, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _wrk_blocks(out: str, label: str = "wrk") -> dict[str, dict[str, float]]:
    """bench_feed.py --wrk output: requests/s and p99 per path (``wrk-half``: the runs at
    half the saturation rate)."""
    res: dict[str, dict[str, float]] = {}
    for block in out.split(f"== {label} ")[1:]:
        url, _, body = block.partition("\n")
        path = "/" + url.split("/", 3)[3] if url.count("/") >= 3 else "/"
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", body).group(1))
        m = re.search(r"^\s+99(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", body, re.M)
        p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else 0
        res[path] = {"requests_per_s": round(rps), "p99_ms": round(p99, 1)}
    return res


def _bare_blocks(out: str, label: str) -> dict[str, float]:
    """bench_feed.py --bare output: the bare handler's requests/s next to each path."""
    res: dict[str, float] = {}
    for block in out.split(f"== {label} ")[1:]:
        path, _, body = block.partition("\n")
        res[path.strip()] = float(re.search(r"Requests/sec:\s+([\d.]+)", body).group(1))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--database-url", default="",
                    help="PostgreSQL for the benchmarks (default: embedded, one per bench)")
    ap.add_argument("--out", type=Path, help="also write the table here")
    args = ap.parse_args()
    q = args.quick
    load0 = os.getloadavg()
    started = datetime.datetime.now(datetime.UTC)
    db = [args.database_url] if args.database_url else []

    limits = json.loads(_run(["bench/limits.py", "--json", *(["--quick"] if q else []),
                              "--only", "crypto", "essentials", "json"], 900))
    proto = json.loads(_run(["bench/bench_protocol.py", "--json",
                             "--rounds", "15"], 300))
    # hub ingest and its baseline take turns, three times each: on a shared machine the
    # rate of either moves by a tenth from one minute to the next, so each side's median
    # is compared, and each turn's ratio is printed too
    turns: list[tuple[dict[str, float], float]] = []
    for _ in range(3):
        base = json.loads(_run(["bench/limits.py", "--json", *(["--quick"] if q else []),
                                "--only", "ingest",
                                *(["--database-url", args.database_url] if db else [])],
                               900))["ingest"]
        hub_out = _run(["bench/bench_hub.py", *db, "--bundles", "60" if q else "200"], 900)
        turns.append((base, float(re.search(r"([\d,]+) records/s", hub_out).group(1)
                                  .replace(",", ""))))
    hub_rps = statistics.median(hub for _, hub in turns)
    limits["ingest"] = {key: statistics.median(base[key] for base, _ in turns)
                        for key in turns[0][0]}
    feed_out = _run(["bench/bench_feed.py", *db, "--wrk", "--duration", "8" if q else "20",
                     "--warmup", "2", "--half", "--bare",
                     "--requests", "2000" if q else "10000",
                     "--comments", "10000" if q else "50000"], 900)
    # the fan-out: the hub against a bare broadcast of the same frame, same clients (issue 24)
    stream = json.loads(_run(["bench/bench_hub_stream.py", *db, "--json", "--subscribers",
                              "1000", "--rounds", "3" if q else "6", "--client", "count"],
                             600))
    feed = _wrk_blocks(feed_out)
    half = _wrk_blocks(feed_out, "wrk-half")
    # the bare handler measured just before and after each path (same minute)
    before, after = _bare_blocks(feed_out, "bare-before"), _bare_blocks(feed_out, "bare-after")
    near = {p: (before[p] + after[p]) / 2 for p in feed}

    bare = limits["json"]["requests_per_s"]
    rows: list[tuple] = [
        ("hub ingest, 1,000-record bundles, 4 connections (records/s)", hub_rps,
         "ingest essentials, upsert", limits["ingest"]["upsert_records_per_s"], ">= 1.0"),
        ("hub ingest (records/s)", hub_rps, "ingest essentials, COPY",
         limits["ingest"]["copy_records_per_s"], "(for reference)"),
        ("feed page `/`, signed in, 64 connections (req/s)", feed["/"]["requests_per_s"],
         "bare aiohttp JSON handler", bare, ">= 0.15"),
        ("`GET /api/requests`, 64 connections (req/s)",
         feed["/api/requests"]["requests_per_s"], "bare aiohttp JSON handler", bare, ">= 0.15"),
        ("feed page `/` (req/s)", feed["/"]["requests_per_s"],
         "bare JSON handler, the same minute", near["/"], ">= 0.15"),
        ("`GET /api/requests` (req/s)", feed["/api/requests"]["requests_per_s"],
         "bare JSON handler, the same minute", near["/api/requests"], ">= 0.15"),
        ("`GET /api/requests` (req/s)", feed["/api/requests"]["requests_per_s"],
         "bare handler, same-size page (20 items)", limits["json"]["page_requests_per_s"],
         "(payload-matched)"),
        ("protocol `verify_bundle` (records/s, one core)", proto["records_per_s"]["verify"],
         "split + Ed25519 + SHA-256 + parse, same process, alternate rounds",
         proto["records_per_s"]["essentials"], ">= 0.8"),
        ("1,000-record bundle to 1,000 stream subscribers, p99 (s)", stream["hub"]["p99_s"],
         "bare broadcast of the same frame, same clients, p99", stream["bare"]["p99_s"],
         "<= 1.5, and p99 < 1 s", ".2f"),
    ]
    load1 = os.getloadavg()
    mode = "quick" if q else "full"
    lines = [
        f"`python bench/report.py{' --quick' if q else ''}` — {started:%Y-%m-%d %H:%M} UTC, "
        f"{mode} mode, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {load0[0]:.1f} before / {load1[0]:.1f} after",
        "",
        "| path | figure | baseline (same run) | baseline figure | ratio | goal |",
        "|---|---:|---|---:|---:|---|",
    ]
    for name, fig, base_name, base, goal, *fmt in rows:
        f = fmt[0] if fmt else ",.0f"
        lines.append(f"| {name} | {fig:{f}} | {base_name} | {base:{f}} | "
                     f"{fig / base:.2f} | {goal} |")
    lines += [
        "",
        "Hub ingest and its baseline, turn by turn (records/s, hub / upsert baseline): "
        + "; ".join(f"{hub:,.0f} / {base['upsert_records_per_s']:,} = "
                    f"{hub / base['upsert_records_per_s']:.2f}" for base, hub in turns)
        + "; the table compares the medians.",
        "",
        f"Baselines: Ed25519 {limits['crypto']['ed25519_verify_per_s']:,} verifies/s, "
        f"SHA-256 {limits['crypto']['sha256_650B_per_s']:,} 650-byte records/s (one core); "
        f"bare JSON handler p99 {limits['json'].get('p99_ms', 0)} ms; "
        f"event loop of the bare handlers, the node and the hub: "
        f"{limits['machine'].get('event_loop', 'asyncio')}; "
        f"feed p99 {feed['/']['p99_ms']} ms, API p99 {feed['/api/requests']['p99_ms']} ms "
        f"(at saturation); offered half that rate: feed {half['/']['requests_per_s']:,} "
        f"req/s with p99 {half['/']['p99_ms']} ms (goal < 100 ms), API "
        f"{half['/api/requests']['requests_per_s']:,} req/s with p99 "
        f"{half['/api/requests']['p99_ms']} ms.",
        "",
        f"Fan-out ({stream['subscribers']:,} subscribers in one client process that only "
        f"takes each frame's bytes, {stream['rounds']} rounds each, interleaved; frame "
        f"{stream['frame_bytes']:,} bytes on both sides): hub p50 {stream['hub']['p50_s']} s, "
        f"bare p50 {stream['bare']['p50_s']} s; the push answered after "
        f"{stream['push_answered_s']['hub'] * 1000:.0f} ms (hub) and "
        f"{stream['push_answered_s']['bare'] * 1000:.0f} ms (bare); CPU per round: hub "
        f"{stream['server_cpu_s_per_round']['hub']} s (with its verify processes), bare "
        f"server {stream['server_cpu_s_per_round']['bare']} s, client "
        f"{stream['client_cpu_s_per_round']['hub']} / "
        f"{stream['client_cpu_s_per_round']['bare']} s.",
    ]
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
