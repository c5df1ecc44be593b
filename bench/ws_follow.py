"""A stream subscriber for benchmarks that costs its machine as little as it can.

``bench_mixed.py`` runs 50 subscribers in one process on the machine it measures. With
aiohttp's WebSocket client each frame became a message object, a queue entry and a task
wake-up (26,000 frames a second at 520 pushes a second): that process took 0.12-0.15 of a
core, CPU the hub then did not have. Here one ``asyncio.Protocol`` per connection parses
the frames where they arrive (``data_received``), reads the sequence number of a
``bundle`` frame from its first bytes (the hub's frames are deterministic CBOR: op, seq
come first) and never wakes a task. It speaks just enough RFC 6455 for a server's
frames: unmasked, unfragmented data frames; it answers pings (masked, as a client must)
and stops at a close frame. The server is ours, so a frame it does not expect is an
error, not something to skip.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
from collections.abc import Callable

BUNDLE_PREFIX = b"\xa5bopfbundlecseq"  # {"op": "bundle", "seq": ...
_WIDTH = {24: 1, 25: 2, 26: 4, 27: 8}


def bundle_seq(data: bytes | bytearray, start: int = 0) -> int | None:
    """The seq of the ``bundle`` frame at ``data[start:]`` from its first bytes (the hub's
    frames are deterministic CBOR: op, seq come first), without decoding the bundle; None
    for any other frame."""
    if not data.startswith(BUNDLE_PREFIX, start):
        return None
    i = start + len(BUNDLE_PREFIX)
    info = data[i] & 0x1F
    return info if info < 24 else int.from_bytes(data[i + 1:i + 1 + _WIDTH[info]], "big")


class StreamFollower(asyncio.Protocol):
    """One subscription: ``on_bundle(seq, arrived_at)`` for each bundle frame,
    ``on_control(payload)`` for any other frame (return False to close). ``done`` is
    set when the connection ends."""

    def __init__(self, host: str, path: str, on_bundle: Callable[[int, float], None],
                 on_control: Callable[[bytes], bool]) -> None:
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
                        f"\r\n").encode()
        self.on_bundle = on_bundle
        self.on_control = on_control
        self.buf = bytearray()
        self.upgraded = False
        self.done = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)  # type: ignore[union-attr]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        try:
            self._frames(data)
        except Exception as exc:  # noqa: BLE001 - handed to whoever awaits ``done``
            if not self.done.done():
                self.done.set_exception(exc)
            self.close()

    def _frames(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(f"no upgrade: {bytes(buf[:200])!r}")
            self.upgraded = True
            del buf[:end + 4]
        now = time.monotonic()
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, head = b1 & 0x7F, 2
            if n == 126:
                if size - pos < 4:
                    break
                n, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif n == 127:
                if size - pos < 10:
                    break
                n, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            if b1 & 0x80 or not b0 & 0x80:
                raise ConnectionError("masked or fragmented frame from the server")
            start = pos + head
            if size - start < n:
                break
            pos = start + n
            opcode = b0 & 0x0F
            if opcode == 2:
                seq = bundle_seq(buf, start)
                if seq is not None:
                    self.on_bundle(seq, now)
                elif not self.on_control(bytes(buf[start:pos])):
                    self.close()
                    return
            elif opcode == 9:  # ping: a masked pong with the same payload
                self._pong(bytes(buf[start:pos]))
            elif opcode == 8:
                self.close()
                return
            elif opcode != 10:
                raise ConnectionError(f"unexpected frame opcode {opcode}")
        del buf[:pos]

    def _pong(self, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert self.transport is not None and len(payload) < 126
        self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)


async def follow(base: str, path: str, on_bundle: Callable[[int, float], None],
                 on_control: Callable[[bytes], bool]) -> None:
    """Subscribe to ``base`` + ``path`` until the connection ends."""
    hostport = base.split("://", 1)[1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(
        lambda: StreamFollower(hostport, path, on_bundle, on_control), host, int(port))
    try:
        await proto.done
    finally:
        proto.close()
