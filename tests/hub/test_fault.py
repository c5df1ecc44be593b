"""A real `wb hub serve` process killed with SIGKILL during concurrent uploads loses no
acknowledged bundle and exposes no partial one."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from hub import queries as Q
from service.ids import token_hash
from tests.hub.helpers import Origin, cbor_headers, envelope, seed
from tests.pg import own_tmp, scratch_mkdtemp

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def hub_dir():
    """The hubs' files, under a short path: their TMPDIR is below it (own_tmp), where a
    forkserver makes its Unix socket, whose path may not pass 107 bytes (under xdist,
    pytest's tmp_path made it 111: the hub could not start)."""
    path = Path(scratch_mkdtemp("fault"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start(db_url: str, data_dir: Path, port: int) -> subprocess.Popen:
    env = dict(os.environ, WB_HUB_DATABASE_URL=db_url, WB_HUB_DATA_DIR=str(data_dir),
               WB_LOG_LEVEL="WARNING", **own_tmp(data_dir))  # (it is SIGKILLed)
    return subprocess.Popen([sys.executable, "-m", "ops.cli", "hub", "serve", "--host",
                             "127.0.0.1", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_ready(base: str, proc: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(300):
            assert proc.poll() is None, "hub exited"
            try:
                async with s.get(f"{base}/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("hub not ready")


async def test_sigkill_during_uploads_loses_nothing_acknowledged(hub_db_url, hub_dir):
    conn = await asyncpg.connect(hub_db_url)
    origins = [Origin(seed(200 + i)) for i in range(4)]
    try:
        await Q.add_peer(conn, "alpha", "node", token_hash("k" * 20))
        for o in origins:
            await Q.trust_key(conn, o.origin, o.origin, o.public_key, "alpha")
    finally:
        await conn.close()
    bundles = {o.origin: [o.bundle([o.request(f"S{n:03d}R{i:03d}") for i in range(200)])
                          for n in range(40)] for o in origins}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start(hub_db_url, hub_dir, port)
    acked: list[str] = []
    enough = asyncio.Event()
    try:
        await wait_ready(base, proc)

        async def uploader(session: aiohttp.ClientSession, items) -> None:
            for b in items:
                try:
                    async with session.post(f"{base}/api/v2/bundles", data=envelope(b),
                                            headers=cbor_headers("k" * 20)) as r:
                        if r.status in (200, 201):
                            acked.append(b.digest)
                            if len(acked) >= 12:
                                enough.set()
                except (aiohttp.ClientError, ConnectionError):
                    return

        async def killer() -> None:
            await enough.wait()
            proc.send_signal(signal.SIGKILL)

        async with aiohttp.ClientSession() as session:
            await asyncio.gather(killer(), *[uploader(session, items)
                                             for items in bundles.values()])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    total = sum(len(v) for v in bundles.values())
    assert 12 <= len(acked) < total  # killed mid-way

    # restart: everything acknowledged is there, nothing partial is visible
    proc = start(hub_db_url, hub_dir, port)
    try:
        await wait_ready(base, proc)
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{base}/api/v2/bundles?since=0&limit=500") as r:
                listing = await r.json()
    finally:
        proc.terminate()
        proc.wait(10)
    logged = [e["digest"] for e in listing["entries"]]
    assert set(acked) <= set(logged)
    assert [e["seq"] for e in listing["entries"]] == list(range(1, len(logged) + 1))
    conn = await asyncpg.connect(hub_db_url)
    try:
        rows = await conn.fetch(
            """SELECT b.digest, b.record_count,
                      (SELECT count(*) FROM hub_records r
                        WHERE r.digest = b.digest OR r.bundle = b.id) AS indexed,
                      (SELECT count(*) FROM hub_log l WHERE l.digest = b.digest) AS logged
                 FROM hub_bundles b""")
    finally:
        await conn.close()
    assert len(rows) == len(logged)
    for row in rows:
        assert row["logged"] == 1 and row["indexed"] == row["record_count"] == 200


async def test_two_real_hub_processes_wake_each_others_streams(hub_db_url, hub_dir):
    from protocol.containers import decode_frame

    o = Origin(seed(250))
    conn = await asyncpg.connect(hub_db_url)
    try:
        await Q.add_peer(conn, "alpha", "node", token_hash("m" * 20))
        await Q.trust_key(conn, o.origin, o.origin, o.public_key, "alpha")
    finally:
        await conn.close()
    ports = [free_port(), free_port()]
    procs = [start(hub_db_url, hub_dir / f"p{i}", port) for i, port in enumerate(ports)]
    a, b = (f"http://127.0.0.1:{p}" for p in ports)
    try:
        for base, proc in zip((a, b), procs, strict=True):
            await wait_ready(base, proc)
        async with aiohttp.ClientSession() as s:
            ws = await s.ws_connect(f"{b}/api/v2/stream?since=0")
            assert decode_frame((await asyncio.wait_for(ws.receive(), 10)).data).op == "info"
            sent = [o.many(3) for _ in range(3)]
            for bundle in sent:
                async with s.post(f"{a}/api/v2/bundles", data=envelope(bundle),
                                  headers=cbor_headers("m" * 20)) as r:
                    assert r.status == 201
            # well under the 5 s head poll: only NOTIFY can wake process B this fast
            frames = [decode_frame((await asyncio.wait_for(ws.receive(), 3)).data)
                      for _ in sent]
            assert [f.digest for f in frames] == [x.digest for x in sent]
            assert [f.seq for f in frames] == [1, 2, 3]
            await ws.close()
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
