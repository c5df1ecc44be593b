"""A database outage answers 503, never 500: a dedicated embedded PostgreSQL is stopped
under a running node and a running hub (real HTTP on loopback), every kind of route is
hit while it is down, and it is started again.

Acceptance: 503 ``database_unavailable`` with Retry-After (JSON for API clients, a small
page for browsers), also for a request carrying a session cookie (the session lookup runs
before routing); ``/healthz`` 200, ``/readyz`` 503; exactly one log line for the outage
and one for the recovery, and no traceback at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import time
from pathlib import Path

import pytest

from hub.app import create_app as create_hub
from service import outage, pgwatch
from service.settings import Config
from tests.conftest import make_node_config
from tests.pg import scratch_mkdtemp

DEADLINE = 30.0


class StoppableServer:
    """An embedded PostgreSQL of its own that the test can stop and start."""

    def __init__(self) -> None:
        import pgserver

        # outside pytest's temporary root: concurrent pytest runs reset it to 0700, which
        # locks out the server's own system user
        self.base = Path(scratch_mkdtemp("outage"))
        self.pgdata = (self.base / "pgdata").resolve()
        self.server = pgserver.get_server(self.pgdata, cleanup_mode="delete")
        pgwatch.guard(self.pgdata)
        self.url = self.server.get_uri()

    def stop(self) -> None:
        assert pgwatch.stop_server(self.pgdata)
        assert pgwatch.postmaster_pid(self.pgdata) is None

    def start(self) -> None:
        from pgserver.postgres_server import PostgresServer

        with PostgresServer._lock:
            self.server.ensure_postgres_running()
        assert self.server.get_uri() == self.url

    def close(self) -> None:
        self.server.cleanup()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def stoppable():
    server = StoppableServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def wb_logs(caplog):
    caplog.set_level(logging.INFO)
    return caplog


def outage_lines(caplog) -> tuple[int, int, list[str]]:
    down = sum(r.getMessage().startswith("database unreachable") for r in caplog.records)
    back = sum(r.getMessage() == "database reachable again" for r in caplog.records)
    tracebacks = [f"{r.name}: {r.getMessage()}" for r in caplog.records
                  if r.exc_info or r.levelno >= logging.ERROR and "Traceback" in r.getMessage()]
    return down, back, tracebacks


async def until(predicate, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def assert_unavailable(status: int, headers, body: str, *, json_body: dict | None) -> None:
    assert status == 503, body[:300]
    assert headers["Retry-After"] == "7"
    if json_body is not None:
        assert json_body["error"]["code"] == "database_unavailable"
    else:
        assert headers["Content-Type"].startswith("text/html")
        assert "database_unavailable" in body and "Traceback" not in body


@pytest.mark.parametrize("scheduler", ["true", "false"])
async def test_node_answers_503_while_its_database_is_stopped_and_recovers(
        aiohttp_client, stoppable, wb_logs, tmp_path, scheduler):
    from node.app import create_app

    # with the scheduler and the change watcher running, background loops must not flood
    # the log either (and notice the outage first); without, the first request to
    # notice it is /healthz with a session cookie, looked up before routing
    config = make_node_config(stoppable.url, tmp_path / "node", WB_DB_RETRY_AFTER="7",
                              WB_SCHEDULER=scheduler)
    client = await aiohttp_client(create_app(config))
    cookie = {"wb_session_id": "x" * 43}  # looked up before routing
    html = {"Accept": "text/html"}
    for path, expected in (("/", 200), ("/api/requests", 401), ("/readyz", 200)):
        async with client.get(path, headers=html, cookies=cookie) as r:
            assert r.status == expected, path

    await asyncio.to_thread(stoppable.stop)
    gate = client.server.app[outage.gate_key]

    async def noticed() -> bool:  # by the change watcher, before any request
        return gate.down

    if scheduler == "true":
        await until(noticed, "the background watcher to notice the outage")
    else:
        assert not gate.down

    async def hit(method: str, path: str, **kw):
        async with client.request(method, path, **kw) as r:
            return r.status, r.headers, await r.text()

    for _ in range(3):  # many requests, one log line
        status, _, body = await hit("GET", "/healthz", cookies=cookie)
        assert (status, json.loads(body)["status"]) == (200, "ok")
        status, headers, body = await hit("GET", "/", headers=html, cookies=cookie)
        assert_unavailable(status, headers, body, json_body=None)
        status, headers, body = await hit("GET", "/api/requests")
        assert_unavailable(status, headers, body, json_body=json.loads(body))
        status, headers, body = await hit("GET", "/requests/01ABC", headers=html)
        assert_unavailable(status, headers, body, json_body=None)
        # an anonymous form post without any CSRF token: still 503, not 403 or 500
        status, headers, body = await hit("POST", "/login", data={"username": "eve"},
                                          headers=html)
        assert_unavailable(status, headers, body, json_body=None)
        status, headers, body = await hit("GET", "/readyz", cookies=cookie)
        assert (status, json.loads(body)["database"]) == (503, "down")
        assert headers["Retry-After"] == "7"
        status, _, body = await hit("GET", "/healthz", cookies=cookie)
        assert (status, json.loads(body)["status"]) == (200, "ok")
        status, _, _ = await hit("GET", "/static/style.css")
        assert status == 200
    assert outage_lines(wb_logs) == (1, 0, [])

    await asyncio.to_thread(stoppable.start)

    async def ready() -> bool:
        async with client.get("/readyz") as r:
            return r.status == 200

    await until(ready, "the node to see its database again")
    async with client.get("/", headers=html, cookies=cookie) as r:
        assert r.status == 200
    assert outage_lines(wb_logs) == (1, 1, [])
    assert gate.outages == 1


async def test_a_cached_member_page_is_not_served_while_the_database_is_away(
        aiohttp_client, stoppable, tmp_path):
    """The node's caches (#24) stop with their listening connection: a member whose
    session and start page were cached gets the 503 like everyone else, then the page."""
    from node import typedefs as T
    from node.app import create_app
    from tests.factories import create_user, sign_in

    config = make_node_config(stoppable.url, tmp_path / "node", WB_DB_RETRY_AFTER="7")
    client = await aiohttp_client(create_app(config))
    app = client.server.app
    await sign_in(client, await create_user(app[T.pool_key], "mel"))
    html = {"Accept": "text/html"}
    for _ in range(2):  # the second one from the caches
        async with client.get("/", headers=html) as r:
            assert r.status == 200 and "Mel" in await r.text()
    watch = app[T.table_watch_key]
    assert watch.live

    await asyncio.to_thread(stoppable.stop)

    async def listener_gone() -> bool:
        return not watch.live

    await until(listener_gone, "the cache listener to see its connection close")
    async with client.get("/", headers=html) as r:
        assert_unavailable(r.status, r.headers, await r.text(), json_body=None)
    async with client.get("/api/requests") as r:
        assert_unavailable(r.status, r.headers, await r.text(), json_body=await r.json())

    await asyncio.to_thread(stoppable.start)

    async def page_back() -> bool:
        async with client.get("/", headers=html) as r:
            return r.status == 200 and "Mel" in await r.text()

    await until(page_back, "the member's page to come back")
    await until(lambda: asyncio.sleep(0, watch.live), "the cache listener to reconnect")


async def test_hub_answers_503_while_its_database_is_stopped_and_recovers(
        aiohttp_client, stoppable, wb_logs, tmp_path):
    from hub.typedefs import HubOptions

    config = Config({"WB_HUB_DATABASE_URL": stoppable.url,
                     "WB_HUB_DATA_DIR": str(tmp_path / "hub"), "WB_HUB_URL": "http://hub.test",
                     "WB_DB_POOL_MAX": "8", "WB_DB_RETRY_AFTER": "7"},
                    environ={}, dotenv=tmp_path / "no.env")
    client = await aiohttp_client(create_hub(config, HubOptions.from_config(config)))
    html = {"Accept": "text/html"}
    admin = {"wb_hub_admin": "y" * 43}
    for path in ("/", "/api/v2/records", "/readyz"):
        async with client.get(path, headers=html) as r:
            assert r.status == 200, path

    await asyncio.to_thread(stoppable.stop)
    gate = client.server.app[outage.gate_key]

    async def noticed() -> bool:  # by the background workers, before any request
        return gate.down

    await until(noticed, "the hub's workers to notice the outage")

    async def hit(method: str, path: str, **kw):
        async with client.request(method, path, **kw) as r:
            return r.status, r.headers, await r.text()

    for _ in range(3):
        status, headers, body = await hit("GET", "/", headers=html)
        assert_unavailable(status, headers, body, json_body=None)
        status, headers, body = await hit("GET", "/api/v2/records")
        assert_unavailable(status, headers, body, json_body=json.loads(body))
        # a peer's push: 503 tells it to retry later
        status, headers, body = await hit(
            "POST", "/api/v2/bundles", data=b"\xa0",
            headers={"Authorization": "Bearer " + "t" * 30,
                     "Content-Type": "application/vnd.whiteballoon.bundle+cbor"})
        assert_unavailable(status, headers, body, json_body=json.loads(body))
        status, headers, body = await hit("GET", "/admin", headers=html, cookies=admin)
        assert_unavailable(status, headers, body, json_body=None)
        status, _, body = await hit("GET", "/readyz")
        assert (status, json.loads(body)["database"]) == (503, "down")
        status, _, body = await hit("GET", "/healthz")
        assert (status, json.loads(body)["status"]) == (200, "ok")
    assert outage_lines(wb_logs)[0] == 1
    assert outage_lines(wb_logs)[2] == []

    # the delivery worker retries every second and used to log each failure: quiet now
    def worker_lines() -> int:
        return sum("cannot reach the database" in r.getMessage() for r in wb_logs.records)

    before, quieted = worker_lines(), gate.quieted

    async def worker_retried_twice() -> bool:
        return gate.quieted >= quieted + 2

    await until(worker_retried_twice, "the delivery worker to retry during the outage")
    assert worker_lines() == before

    await asyncio.to_thread(stoppable.start)

    async def ready() -> bool:
        async with client.get("/readyz") as r:
            return r.status == 200

    await until(ready, "the hub to see its database again")
    async with client.get("/api/v2/records") as r:
        assert r.status == 200
    assert outage_lines(wb_logs) == (1, 1, [])

