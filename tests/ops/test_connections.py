"""Stalled and idle connections are bounded on node and hub (the server runner of `wb serve`
and `wb hub serve`, on real loopback sockets): a partial request line, a slowloris that
keeps dribbling, an idle kept-alive connection and connections beyond the cap are all
closed, while normal requests and a slow body upload still succeed."""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
import pytest

from ops.demo import free_port
from service import serving

DEADLINE = 30.0


@pytest.fixture
def hub_config(hub_db_url, tmp_path):
    from tests.hub.conftest import make_hub_config

    return make_hub_config(hub_db_url, tmp_path / "hub")


@pytest.fixture(params=["node", "hub"])
async def served(request, node_config, hub_config):
    """(base URL, port, limits, "node" or "hub") of the real app behind the guarded
    runner."""
    if request.param == "node":
        from node.app import create_app

        app = create_app(node_config)
    else:
        from hub.app import create_app

        app = create_app(hub_config)
    limits = serving.ConnectionLimits(header_timeout=0.5, keepalive_timeout=1.0,
                                      max_connections=12)
    port = free_port()
    runner = await serving.start(app, "127.0.0.1", port, limits)
    try:
        yield f"http://127.0.0.1:{port}", port, limits, request.param
    finally:
        await runner.cleanup()


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Read until the server closes the connection (within the deadline). A reset is that
    close too: a server closing a socket with bytes of ours still unread in its buffer
    sends RST (Linux), which a client still dribbling headers can hit by timing alone
    (seen under parallel workers on a loaded machine)."""
    async with asyncio.timeout(DEADLINE):
        try:
            return await reader.read()
        except ConnectionResetError:
            return b""


async def healthy(base: str) -> None:
    async with aiohttp.ClientSession() as s, s.get(f"{base}/healthz") as r:
        assert r.status == 200


async def test_partial_requests_are_closed_while_normal_ones_succeed(served):
    base, port, limits, component = served
    stalled = []
    for i in range(8):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write([b"GE", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Par"][i % 2])
        await writer.drain()
        stalled.append((reader, writer))
    await healthy(base)  # served while eight connections stall
    for reader, writer in stalled:
        assert await closed_by_server(reader) == b""  # closed without an answer
        writer.close()
    assert limits.header_timeouts >= 8
    await healthy(base)


async def test_a_slowloris_that_keeps_sending_is_closed_anyway(served):
    _, port, limits, _ = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 500
    async with asyncio.timeout(DEADLINE):
        for byte in request:  # one byte at a time, never finishing the headers
            if reader.at_eof():
                break
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("a dribbling client kept its connection past the header deadline")
    assert limits.header_timeouts == 1
    assert await closed_by_server(reader) == b""
    writer.close()


async def test_idle_keep_alive_is_closed_and_a_slow_body_is_not_cut(served):
    _, port, _, _ = served
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    await reader.readexactly(length)
    assert await closed_by_server(reader) == b""  # idle after the answer: closed
    writer.close()

    # headers in time, then a body that trickles in for several header deadlines
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b'{"x": "' + b"y" * 20 + b'"}'
    writer.write(b"POST /api/nothing-here HTTP/1.1\r\nHost: x\r\nContent-Type: "
                 b"application/json\r\nContent-Length: " + str(len(body)).encode()
                 + b"\r\n\r\n")
    await writer.drain()
    started = time.monotonic()
    for i in range(0, len(body), 4):
        writer.write(body[i:i + 4])
        await writer.drain()
        await asyncio.sleep(0.2)
    assert time.monotonic() - started > 1.0  # longer than two header deadlines
    async with asyncio.timeout(DEADLINE):
        status = await reader.readline()
    assert status.startswith(b"HTTP/1.1 4"), status  # answered, not cut off
    writer.close()


async def test_at_the_cap_stalled_connections_make_room_and_busy_ones_get_503(
        served, caplog):
    base, port, limits, component = served
    caplog.set_level(logging.INFO, logger="wb.http")

    async def wait_open(n: int) -> None:
        deadline = time.monotonic() + DEADLINE
        for _ in iter(int, 1):
            if limits.open == n:
                return
            assert time.monotonic() < deadline, f"{limits.open} connections open, not {n}"
            await asyncio.sleep(0.01)

    # a slowloris fills every slot: a real client still gets in, the oldest stalled
    # connection makes room
    stalled = []
    for _ in range(limits.max_connections):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHo")
        await writer.drain()
        stalled.append((reader, writer))
    await wait_open(limits.max_connections)
    await healthy(base)
    assert limits.evicted >= 1 and limits.refused == 0
    assert await closed_by_server(stalled[0][0]) == b""
    for reader, writer in stalled:
        assert await closed_by_server(reader) == b""
        writer.close()
    await wait_open(0)

    # every slot busy with a request in progress (a form body still arriving): refused
    login = {"node": "/login", "hub": "/admin/login"}[component]  # both read the form
    busy = []
    for _ in range(limits.max_connections):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST " + login.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 1000\r\n\r\nusername=")
        await writer.drain()
        busy.append((reader, writer))
    await wait_open(limits.max_connections)
    answers = []
    for _ in range(3):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        answers.append(await closed_by_server(reader))
        writer.close()
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"Retry-After: 5" in answer and b"too_many_connections" in answer
    assert limits.refused == 3
    reached = [r for r in caplog.records if r.getMessage().startswith("connection limit")]
    assert len(reached) == 2  # once per episode: the slowloris one and this one
    for _, writer in busy:  # the clients give up: service resumes
        writer.close()
    await wait_open(0)
    await healthy(base)
    assert sum(r.getMessage() == "below the connection limit again"
               for r in caplog.records) == 2


@pytest.mark.parametrize("component", ["node", "hub"])
async def test_real_server_process_sheds_stalled_connections(component, node_db_url,
                                                             hub_db_url, tmp_path):
    """`wb serve` / `wb hub serve` as real processes: 120 half-sent requests against a cap
    of 100. The oldest stalled ones make room for the newer (no 503: none of them is
    busy), a real request still gets in, all are closed without an answer, the process's
    file descriptors come back down, and one log line says the cap was reached."""
    import psutil

    from ops.demo import Proc

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(WB_HEADER_TIMEOUT="1", WB_MAX_CONNECTIONS="100", WB_LOG_LEVEL="INFO")
    if component == "node":
        env.update(WB_DATABASE_URL=node_db_url, WB_DATA_DIR=str(tmp_path / "node"),
                   SESSION_SECRET="connections-test", WB_SCHEDULER="false")
        args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    else:
        env.update(WB_HUB_DATABASE_URL=hub_db_url, WB_HUB_DATA_DIR=str(tmp_path / "hub"),
                   WB_HUB_URL=base)
        args = ["hub", "serve", "--host", "127.0.0.1", "--port", str(port),
                "--verify-processes", "0"]
    log_path = tmp_path / "server.log"
    server_proc = Proc(component, args, env, port, log_path)
    server_proc.start()
    writers = []
    try:
        await server_proc.wait_ready()
        assert server_proc.proc is not None
        server = psutil.Process(server_proc.proc.pid)
        fds_before = server.num_fds()
        readers = []
        for _ in range(120):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHo")
            readers.append(reader)
            writers.append(writer)
        for reader in readers[:20]:  # made room for the last 20
            assert await closed_by_server(reader) == b""
        await healthy(base)  # during the flood
        assert [await closed_by_server(r) for r in readers] == [b""] * 120
        await healthy(base)
        deadline = time.monotonic() + DEADLINE
        while server.num_fds() > fds_before + 2:  # back to where it was
            assert time.monotonic() < deadline, (fds_before, server.num_fds())
            await asyncio.sleep(0.05)
    finally:
        for w in writers:
            w.close()
        await asyncio.to_thread(server_proc.stop)
    text = log_path.read_bytes().decode()
    assert text.count("connection limit reached") == 1, text
    assert "Traceback" not in text, text
