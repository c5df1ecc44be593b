"""The stream's view of a subscriber's connection (prompt, or backed up) on both event
loops the hub serves on. On uvloop an isinstance test against asyncio.WriteTransport
was always false, so every subscriber looked prompt and the lag rule never cut one off."""

from __future__ import annotations

import asyncio
import socket

import pytest
import uvloop

from hub.api import _backed_up, _writable


def _stuffed(loop_factory) -> tuple[list[bool], list[bool]]:
    """(writable, backed up) of a fresh server-side transport, then of one whose client
    reads nothing while the server writes until the kernel's buffers are full."""

    async def main() -> tuple[list[bool], list[bool]]:
        got: asyncio.Future[asyncio.Transport] = asyncio.get_running_loop().create_future()

        async def serve(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            got.set_result(w.transport)  # type: ignore[arg-type]

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            t = await asyncio.wait_for(got, 30)
            fresh = [_writable(t), _backed_up(t)]
            chunk = b"x" * 65536
            while t.get_write_buffer_size() == 0:  # until the kernel takes no more
                t.write(chunk)
                await asyncio.sleep(0)
            stuffed = [_writable(t), _backed_up(t)]
            t.abort()
            return fresh, stuffed
        finally:
            client.close()
            server.close()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(main())


@pytest.mark.parametrize("loop_factory", [None, uvloop.new_event_loop],
                         ids=["asyncio", "uvloop"])
def test_prompt_and_backed_up_on_both_loops(loop_factory) -> None:
    fresh, stuffed = _stuffed(loop_factory)
    assert fresh == [True, False]
    assert stuffed == [False, True]


def test_a_closed_or_missing_transport_is_never_written_to() -> None:
    assert _writable(None) is False and _backed_up(None) is True
