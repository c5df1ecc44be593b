"""Fuzz our hub and node against their own OpenAPI documents with schemathesis.

    python -m conformance_tests.schemathesis_run [--max-examples N] [--seed S]

Starts a throw-away PostgreSQL (tests/pg.py), a hub and a node on loopback ports, with a
registered peer token on each, and runs ``schemathesis run URL/openapi.json`` against
both with the checks ``not_a_server_error`` and ``response_schema_conformance`` (plus
status codes and content types). Exits non-zero when either run finds a problem. The
result of the last run is recorded in docs/conformance.md. Needs ``pip install
schemathesis`` (not a test dependency: a fuzzing run takes minutes, not seconds).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")
PEER_TOKEN = "schemathesis-peer-token-0123456789"  # noqa: S105


def _serve(ready: threading.Event, out: dict, stop: threading.Event, workdir: Path) -> None:
    async def main() -> None:
        from aiohttp import web

        from hub import queries as HQ
        from hub.app import MIGRATIONS as HUB_MIGRATIONS
        from hub.app import create_app as create_hub
        from node.app import MIGRATIONS as NODE_MIGRATIONS
        from node.app import create_app as create_node
        from node.sync import peers as P
        from service import db
        from service.ids import token_hash
        from tests.conftest import make_node_config
        from tests.hub.conftest import make_hub_config
        from tests.pg import TestServer

        pg = TestServer()
        hub_url = await pg.new_database(await pg.template("hub", HUB_MIGRATIONS))
        node_url = await pg.new_database(await pg.template("node", NODE_MIGRATIONS))
        pool = await db.create_pool(hub_url, max_size=2)
        await HQ.add_peer(pool, "fuzz", "node", token_hash(PEER_TOKEN))
        await pool.close()
        pool = await db.create_pool(node_url, max_size=2)
        await P.add_peer(pool, "hub", "hub", "http://hub.test", inbox_token=PEER_TOKEN)
        await pool.close()
        runners = []
        for name, app in (("hub", create_hub(make_hub_config(hub_url, workdir / "hub"))),
                          ("node", create_node(make_node_config(node_url, workdir / "node")))):
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            out[name] = f"http://127.0.0.1:{port}"
            runners.append(runner)
        ready.set()
        await asyncio.to_thread(stop.wait)
        for runner in runners:
            await runner.cleanup()
        await pg.aclose()  # (close() would asyncio.run inside this loop: it raised, and
        # the external server kept the databases)

    asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    exe = shutil.which("schemathesis") or shutil.which("st")
    if exe is None:
        print("schemathesis is not installed: pip install schemathesis", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="wb-fuzz-"))
    ready, stop, urls = threading.Event(), threading.Event(), {}
    thread = threading.Thread(target=_serve, args=(ready, urls, stop, workdir), daemon=True)
    thread.start()
    if not ready.wait(120):
        print("servers did not start", file=sys.stderr)
        return 2
    status = 0
    started: list[tuple[str, list[str], BinaryIO, subprocess.Popen[bytes]]] = []
    try:
        # both apps at once (their fuzzers are independent processes; the servers share
        # this process's event loop): the run takes the longer of the two, not the sum
        for name in ("hub", "node"):
            cmd = [exe, "run", f"{urls[name]}/openapi.json", "--checks", CHECKS,
                   "--max-examples", str(args.max_examples), "--seed", str(args.seed),
                   "--header", f"Authorization: Bearer {PEER_TOKEN}",
                   "--exclude-path", "/api/v2/stream", "--workers", "1",
                   # binary bundle bodies are mostly filtered out by design
                   "--suppress-health-check=filter_too_much"]
            log = open(workdir / f"{name}.log", "w+b")  # noqa: SIM115 (closed in finally)
            started.append((name, cmd, log, subprocess.Popen(cmd, stdout=log,
                                                             stderr=subprocess.STDOUT)))
        for name, cmd, log, proc in started:
            rc = proc.wait()
            log.seek(0)
            print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
            sys.stdout.buffer.write(log.read())
            print(f"== {name}: exit {rc}", flush=True)
            status = status or rc
    finally:
        for _name, _cmd, log, proc in started:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
        stop.set()
        thread.join(30)
        with contextlib.suppress(OSError):
            shutil.rmtree(workdir)
    return status


if __name__ == "__main__":
    sys.exit(main())
