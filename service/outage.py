"""Database outages answer 503, not 500: one middleware for node and hub.

When a request fails because PostgreSQL cannot be reached (refused, reset, shut down,
timed out), the client gets ``503 database_unavailable`` with ``Retry-After`` (JSON, or a
small page for a browser) instead of a 500 and a traceback. An error of that kind is
confirmed with a quick ``SELECT 1`` first, so a refused outbound HTTP call or a client
that hung up (also ``OSError``) is not mistaken for an outage.

A confirmed outage *trips* the gate: one error line is logged, every later request gets
the 503 at once (no connection attempt, no log line), ``/healthz`` keeps answering 200
(the process is alive) and ``/readyz`` 503, and a background probe runs ``SELECT 1``
every second. When it succeeds the gate closes again with one line naming how long the
database was away. Static files are served throughout.

Place the middleware inside the error middleware and outside everything that touches the
database before routing (the node's session lookup, the hub's admin session).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web

from service.tasks import cancel_and_wait

log = logging.getLogger("wb.db")

CODE = "database_unavailable"
MESSAGE = "The database cannot be reached right now; try again shortly."
PROBE_INTERVAL = 1.0
PROBE_TIMEOUT = 3.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Errors a lost or unreachable database raises (OSError also covers refused and reset
# sockets; TimeoutError a connect that hangs). They are confirmed by a probe.
SUSPECT = (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
           asyncpg.exceptions.OperatorInterventionError,
           asyncpg.exceptions.InsufficientResourcesError)
# Errors that can only mean the server went away under this request: 503 even when the
# probe finds it back already (a restart), because retrying will work.
LOST = (asyncpg.PostgresConnectionError, asyncpg.exceptions.OperatorInterventionError)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Temporarily unavailable</title></head>
<body><main>
<h1>Temporarily unavailable</h1>
<p>This site cannot reach its database right now. What you just did may not have been
saved. Please try again in a minute.</p>
<p><small>Error code: database_unavailable</small></p>
</main></body></html>
"""


@dataclass
class DatabaseGate:
    """The outage state of one app: when it started, and the probe that ends it."""

    pool_key: web.AppKey[Any]
    wants_json: Callable[[web.Request], bool]
    retry_after: int = 5
    down_since: float | None = None
    outages: int = 0
    quieted: int = 0
    _probe: asyncio.Task[None] | None = field(default=None, repr=False)
    _check: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def trip(self, app: web.Application, exc: BaseException) -> None:
        if self.down:
            return
        self.down_since = time.monotonic()
        self.outages += 1
        log.error("database unreachable: answering 503 until it is back",
                  extra={"error": f"{type(exc).__name__}: {exc}"[:300]})
        self._probe = asyncio.get_running_loop().create_task(self._wait_for_recovery(app))

    async def _wait_for_recovery(self, app: web.Application) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            if await reachable(app.get(self.pool_key)):
                assert self.down_since is not None
                log.warning("database reachable again",
                            extra={"down_seconds": round(time.monotonic() - self.down_since,
                                                         1)})
                self.down_since = None
                self._probe = None
                return

    def check_soon(self, app: web.Application) -> None:
        """A background worker met a database error: confirm it and trip the gate."""
        if self.down or (self._check is not None and not self._check.done()):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return

        async def check() -> None:
            if not await reachable(app.get(self.pool_key)):
                self.trip(app, ConnectionError("a background worker lost the database"))

        self._check = loop.create_task(check())

    async def close(self) -> None:
        await cancel_and_wait(self._check, self._probe)
        self._check = self._probe = None

    def unavailable(self, request: web.Request) -> web.Response:
        headers = {"Retry-After": str(self.retry_after), "Cache-Control": "no-store"}
        if self.wants_json(request):
            return web.json_response(
                {"error": {"code": CODE, "message": MESSAGE,
                           "retry_after": self.retry_after}},
                status=503, headers=headers)
        return web.Response(status=503, text=PAGE, content_type="text/html",
                            charset="utf-8", headers=headers)


gate_key = web.AppKey("wb_database_gate", DatabaseGate)


async def reachable(pool: asyncpg.Pool | None) -> bool:
    if pool is None:
        return False
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await pool.fetchval("SELECT 1")
    except (Exception, TimeoutError):  # noqa: BLE001 - any failure means: not reachable
        return False
    return True


def is_down(app: web.Application) -> bool:
    gate = app.get(gate_key)
    return gate is not None and gate.down


async def noticed(app: web.Application, exc: BaseException) -> bool:
    """For background loops: True when ``exc`` is (part of) a database outage, which is
    then logged once by the gate; the caller stays quiet and retries later."""
    gate = app.get(gate_key)
    if gate is None or not isinstance(exc, SUSPECT):
        return False
    if gate.down:
        return True
    if await reachable(app.get(gate.pool_key)):
        return isinstance(exc, LOST)
    gate.trip(app, exc)
    return True


class _QuietWhileDown(logging.Filter):
    """On the loggers of background workers that say for themselves when they cannot reach
    the database (and retry): the first such line makes the gate check; while the gate is
    down they are dropped, so an outage stays one line however long it lasts."""

    def __init__(self, app: web.Application, gate: DatabaseGate) -> None:
        super().__init__()
        self.app = app
        self.gate = gate

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.WARNING or "database" not in record.getMessage():
            return True
        if self.gate.down:
            self.gate.quieted += 1
            return False
        self.gate.check_soon(self.app)
        return True


def setup(app: web.Application, pool_key: web.AppKey[Any],
          wants_json: Callable[[web.Request], bool], *, retry_after: int = 5,
          quiet: tuple[str, ...] = ()) -> None:
    """Give ``app`` its gate; add ``middleware`` to its middleware list yourself.

    ``quiet`` names the loggers of the app's background workers whose "cannot reach the
    database" warnings the gate takes over during an outage."""
    gate = DatabaseGate(pool_key, wants_json, retry_after=max(1, retry_after))
    app[gate_key] = gate
    quieting = _QuietWhileDown(app, gate)
    loggers = [logging.getLogger(name) for name in quiet]

    async def start(_app: web.Application) -> None:
        for logger in loggers:
            logger.addFilter(quieting)

    async def close(_app: web.Application) -> None:
        for logger in loggers:
            logger.removeFilter(quieting)
        await gate.close()

    app.on_startup.append(start)
    app.on_cleanup.append(close)


def _health(request: web.Request, gate: DatabaseGate) -> web.Response | None:
    """What ``/healthz`` (alive: 200) and ``/readyz`` (not ready: 503) answer during an
    outage, in the JSON shape of their normal answers; None for any other path."""
    if request.path == "/healthz":
        return web.json_response({"status": "ok", "database": "down"},
                                 headers={"Cache-Control": "no-store"})
    if request.path == "/readyz":
        return web.json_response({"status": "unavailable", "database": "down"}, status=503,
                                 headers={"Cache-Control": "no-store",
                                          "Retry-After": str(gate.retry_after)})
    return None


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    gate = request.app.get(gate_key)
    if gate is None:
        return await handler(request)
    if gate.down:
        if request.path.startswith("/static/"):
            return await handler(request)
        return _health(request, gate) or gate.unavailable(request)
    try:
        return await handler(request)
    except SUSPECT as exc:
        if not await reachable(request.app.get(gate.pool_key)):
            gate.trip(request.app, exc)
        elif not isinstance(exc, LOST):
            raise
        return _health(request, gate) or gate.unavailable(request)
