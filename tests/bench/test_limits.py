"""bench/limits.py and bench/report.py run from the checkout and say what they measured.

No wall-clock figure is asserted (docs/benchmarks.md records those); what is checked is
that every baseline produces its figures and that the report reads wrk's real output,
including wrk's unit changes (us / ms / s) that a careless parser would misread.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location(f"wb_bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


WRK = """== wrk http://127.0.0.1:40001/api/requests
Running 8s test @ http://127.0.0.1:40001/api/requests
  1 threads and 64 connections
  Latency Distribution
     50%   35.12ms
     75%   40.00ms
     90%   51.00ms
     99%    1.20s
  14000 requests in 8.00s, 30.00MB read
Requests/sec:   1750.12
Transfer/sec:      3.75MB

== wrk http://127.0.0.1:40001/
Running 8s test @ http://127.0.0.1:40001/
  Latency Distribution
     50%  900.00us
     99%   12.50ms
Requests/sec:   1331.00
"""


def test_report_reads_each_path_and_wrk_units():
    report = _load("report")
    got = report._wrk_blocks(WRK)
    assert got == {"/api/requests": {"requests_per_s": 1750, "p99_ms": 1200.0},
                   "/": {"requests_per_s": 1331, "p99_ms": 12.5}}


def test_cpu_baselines_run_from_the_checkout_and_print_json():
    done = subprocess.run(
        [sys.executable, "bench/limits.py", "--quick", "--json", "--only", "crypto",
         "essentials"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    res = json.loads(done.stdout)
    assert res["crypto"]["ed25519_verify_per_s"] > 0
    assert res["crypto"]["sha256_650B_per_s"] > 0
    assert res["essentials"]["records"] == 10_000
    assert res["essentials"]["records_per_s"] > 0
    assert res["machine"]["cpus"] >= 1


def test_ingest_essentials_store_every_row_both_ways(pg):
    limits = _load("limits")
    res = limits.ingest(True, pg.url, bundles=3, warmup=2)
    assert set(res) == {"upsert_records_per_s", "copy_records_per_s"}
    assert all(v > 0 for v in res.values())


def test_bare_broadcast_reaches_every_client():
    limits = _load("limits")
    res = limits.broadcast(True, clients=20)
    assert res["clients"] == 20 and res["frame_bytes"] > 100_000
    assert 0 < res["best_s"] <= res["median_s"]
