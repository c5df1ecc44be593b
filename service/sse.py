"""The one server-sent-events writer: the copilot's chat stream and the MCP transport.

Kept home-made (see CONTRIBUTING.md): ``aiohttp-sse`` targets long-lived GET streams
with a keep-alive ping task; both uses here answer a POST with a few events and close.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web


class EventStream:
    """Server-sent events on a response, opened on the first event.

    Until something is sent the handler may still raise (answered as a normal error with
    its status). A client that went away does not stop the work: ``gone`` is set and
    later events are dropped.
    """

    def __init__(self, request: web.Request, *, dumps: Callable[[Any], str] = json.dumps,
                 cache_control: str = "no-store") -> None:
        self.request = request
        self.response: web.StreamResponse | None = None
        self.gone = False
        self._dumps = dumps
        self._cache_control = cache_control

    async def send(self, event: str, data: Any) -> None:
        if self.gone:
            return
        try:
            if self.response is None:
                self.response = web.StreamResponse(headers={
                    "Content-Type": "text/event-stream; charset=utf-8",
                    "Cache-Control": self._cache_control, "X-Accel-Buffering": "no"})
                await self.response.prepare(self.request)
            await self.response.write(f"event: {event}\ndata: {self._dumps(data)}\n\n".encode())
        except (ConnectionResetError, ConnectionError, RuntimeError):
            self.gone = True

    async def finish(self) -> web.StreamResponse:
        assert self.response is not None
        if not self.gone:
            try:
                await self.response.write_eof()
            except (ConnectionResetError, ConnectionError, RuntimeError):
                pass
        return self.response


async def single_event(request: web.Request, event: str, data: Any, *,
                       dumps: Callable[[Any], str] = json.dumps,
                       cache_control: str = "no-store") -> web.StreamResponse:
    """A whole answer as one event (MCP's streamable HTTP for a client that accepts only
    ``text/event-stream``)."""
    stream = EventStream(request, dumps=dumps, cache_control=cache_control)
    await stream.send(event, data)
    return await stream.finish()
