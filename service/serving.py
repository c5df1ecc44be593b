"""Serve an aiohttp app with bounded connections: `wb serve` and `wb hub serve`.

aiohttp alone lets a connection that sends half a request line and stalls stay open until
the keep-alive timer (75 s by default) and puts no cap on how many there are, so a few
thousand stalled sockets cost as many file descriptors. Here, per process:

- **Header deadline** (``WB_HEADER_TIMEOUT``): from the moment a connection opens, or the
  first byte of a new request arrives on a kept-alive one, its request line and headers
  must be complete within this many seconds, or the connection is closed. A slow body
  upload is not affected (the deadline ends with the headers).
- **Keep-alive timeout** (``WB_KEEPALIVE_TIMEOUT``): an idle kept-alive connection is
  closed after this many seconds.
- **Connection cap** (``WB_MAX_CONNECTIONS``): at the cap, a new connection first takes
  the place of the connection that has waited longest without a request in progress
  (idle keep-alive or still sending headers: what a slowloris holds), so a flood of
  stalled sockets does not lock real clients out; only when every connection is busy is
  the new one answered ``503 too_many_connections`` with ``Retry-After``. One warning
  line when the cap is reached, one info line when the process is below it again.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from service.settings import Config

log = logging.getLogger("wb.http")

_BUSY = (b'{"error": {"code": "too_many_connections", '
         b'"message": "Too many open connections; try again soon."}}\n')
OVER_CAP = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Retry-After: 5\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(_BUSY)).encode() + b"\r\n\r\n" + _BUSY)
REFUSED_LINGER = 2.0


@dataclass
class ConnectionLimits:
    header_timeout: float = 10.0
    keepalive_timeout: float = 15.0
    max_connections: int = 1000
    open: int = 0
    at_cap: bool = False
    refused: int = 0
    evicted: int = 0
    header_timeouts: int = 0
    handlers: set[GuardedHandler] = field(default_factory=set, repr=False)

    @classmethod
    def from_config(cls, config: Config) -> ConnectionLimits:
        def number(name: str) -> float:
            try:
                value = float(config[name])
            except ValueError:
                raise ValueError(f"setting {name} must be a number, got {config[name]!r}") \
                    from None
            if value <= 0:
                raise ValueError(f"setting {name} must be greater than 0")
            return value

        return cls(header_timeout=number("WB_HEADER_TIMEOUT"),
                   keepalive_timeout=number("WB_KEEPALIVE_TIMEOUT"),
                   max_connections=int(number("WB_MAX_CONNECTIONS")))

    def opened(self, handler: GuardedHandler) -> bool:
        """Count a new connection; False when it is over the cap.

        At the cap, the connection that has waited longest without a request in progress
        (idle keep-alive, or still sending its headers) is closed to make room; only when
        every connection has a request in progress is the new one refused.
        """
        if self.open >= self.max_connections:
            if not self.at_cap:
                self.at_cap = True
                log.warning("connection limit reached: idle and half-sent connections are "
                            "closed first, then new ones get 503 (WB_MAX_CONNECTIONS)",
                            extra={"max_connections": self.max_connections})
            victim = min((h for h in self.handlers if h.wb_evictable()),
                         key=lambda h: h.wb_since, default=None)
            if victim is None:
                self.refused += 1
                return False
            self.evicted += 1
            victim.wb_evict()
        self.open += 1
        self.handlers.add(handler)
        return True

    def closed(self, handler: GuardedHandler, *, evicted: bool = False) -> None:
        self.handlers.discard(handler)
        self.open -= 1
        if evicted:  # its place goes to the new connection at once: still at the cap
            return
        if self.at_cap and self.open < self.max_connections:
            self.at_cap = False
            log.info("below the connection limit again",
                     extra={"open": self.open, "refused": self.refused})


class GuardedHandler(RequestHandler):
    """aiohttp's protocol with a header deadline and a place in the connection count."""

    def __init__(self, manager: Any, *, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._wb_limits = limits
        self._wb_counted = False
        self._wb_refused = False
        self._wb_deadline: asyncio.TimerHandle | None = None
        self.wb_since = 0.0

    def wb_evictable(self) -> bool:
        """No request in progress: waiting for (the rest of) the next request's headers.
        A connection accepted in the same burst whose handler task has not run yet has no
        waiter, but it has not completed a request either (``_request_count`` 0): it is
        as evictable as one that is waiting (under load the accept loop runs ahead)."""
        if self.transport is None or self._messages:
            return False
        waiter = self._waiter
        if waiter is not None:
            return not waiter.done()
        return self._request_count == 0

    def wb_evict(self) -> None:
        """Close to make room for a new connection (its slot is released now)."""
        if self._wb_counted:
            self._wb_counted = False
            self._wb_limits.closed(self, evicted=True)
        self._wb_disarm()
        self.force_close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.wb_since = self._loop.time()
        if not self._wb_limits.opened(self):
            # Answer, then half-close: closing at once with the client's request unread
            # would reset the connection and lose the answer. What the client still sends
            # is discarded (data_received ignores it); the socket closes when the client
            # closes its side, or after REFUSED_LINGER seconds.
            self._wb_refused = True
            self._force_close = True
            with suppress(Exception):
                transport.write(OVER_CAP)  # type: ignore[attr-defined]
                transport.write_eof()  # type: ignore[attr-defined]
            self._wb_deadline = self._loop.call_later(REFUSED_LINGER, transport.close)
            return
        self._wb_counted = True
        super().connection_made(transport)
        self._wb_arm()

    def _wb_arm(self) -> None:
        if self._wb_deadline is None:
            self._wb_deadline = self._loop.call_later(self._wb_limits.header_timeout,
                                                      self._wb_expired)

    def _wb_disarm(self) -> None:
        if self._wb_deadline is not None:
            self._wb_deadline.cancel()
            self._wb_deadline = None

    def _wb_expired(self) -> None:
        self._wb_deadline = None
        self._wb_limits.header_timeouts += 1
        log.debug("request headers not complete in time; connection closed",
                  extra={"peer": str(self.peername)})
        self.force_close()

    def data_received(self, data: bytes) -> None:
        idle = self._waiter is not None and not self._messages
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:
            self._wb_disarm()  # a complete request line and headers arrived
        elif idle and data:
            self._wb_arm()  # the first bytes of a new request on an idle connection

    def connection_lost(self, exc: BaseException | None) -> None:
        self._wb_disarm()
        if self._wb_refused:
            return  # never made it into aiohttp's bookkeeping
        if self._wb_counted:
            self._wb_counted = False
            self._wb_limits.closed(self)
        super().connection_lost(exc)


class GuardedServer(web.Server):
    def __init__(self, *args: Any, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, loop=self._loop, limits=self.limits, **self._kwargs)


class GuardedRunner(web.AppRunner):
    def __init__(self, app: web.Application, limits: ConnectionLimits, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=limits.keepalive_timeout, **kwargs)
        self.limits = limits

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts the app
        return GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation,
                             loop=plain._loop, limits=self.limits, **plain._kwargs)


async def start(app: web.Application, host: str, port: int, limits: ConnectionLimits,
                *, handle_signals: bool = False, sock: socket.socket | None = None
                ) -> GuardedRunner:
    """Start serving ``app`` (on ``sock`` when given: a worker of ``service.workers``);
    the caller stops it with ``await runner.cleanup()``."""
    runner = GuardedRunner(app, limits, access_log=None, handle_signals=handle_signals)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port) if sock is None else web.SockSite(runner, sock)
        await site.start()
    except OSError as exc:  # the address is taken, or not ours to bind
        await runner.cleanup()
        raise ListenError.of(host, port, exc) from None
    except BaseException:
        await runner.cleanup()
        raise
    return runner


class ListenError(Exception):
    """The server could not bind its address (one line for the command to print)."""

    @classmethod
    def of(cls, host: str, port: int, exc: OSError) -> ListenError:
        return cls(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


EVENT_LOOPS = ("auto", "asyncio", "uvloop")


def event_loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop to serve on: uvloop's when ``choice`` is ``uvloop``, or ``auto``
    and uvloop is installed (the optional ``fast`` extra); None: asyncio's own."""
    if choice not in EVENT_LOOPS:
        raise ValueError(f"event loop must be one of {', '.join(EVENT_LOOPS)}, not {choice!r}")
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise ValueError("uvloop is not installed (pip install uvloop)") from None
        return None
    return uvloop.new_event_loop


def run(app: web.Application, host: str, port: int, limits: ConnectionLimits, *,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
        sock: socket.socket | None = None, parent_fd: int | None = None) -> None:
    """``web.run_app`` with the bounds above; SIGINT, SIGTERM and SIGHUP stop it cleanly.
    What the process loaded at start is frozen out of the garbage collector's reach.
    ``loop_factory``: see ``event_loop_factory`` (None: asyncio's loop). A worker of
    ``service.workers`` passes the shared ``sock`` and ``parent_fd``, a pipe that
    becomes readable when its supervisor is gone: that stops it too."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)
        if parent_fd is not None:
            loop.add_reader(parent_fd, stop.set)
        runner = await start(app, host, port, limits, sock=sock)
        # everything loaded by now (modules, templates, the app) lives as long as the
        # process: out of the collector's generations, so that full collections stay
        # short and do not show up as latency spikes under load
        gc.collect()
        gc.freeze()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())
