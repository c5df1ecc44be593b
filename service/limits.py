"""The one limits object of a process, built from its settings.

Every path a bundle can take into a node or a hub (hub push, node inbox, pulls, hub
follow, pending-key replays, ``wb sync import``) checks the same
:class:`protocol.limits.Limits`, so a bundle one part accepts is never refused by
another part of the same process for its size.
"""

from __future__ import annotations

from dataclasses import replace

from aiohttp import web

from protocol.limits import Limits
from service.settings import Config


def limits_from_config(config: Config) -> Limits:
    """The process's limits: ``WB_MAX_BUNDLE_BYTES``, the rest at their defaults."""
    size = config.get_int("WB_MAX_BUNDLE_BYTES")
    if size <= 0:
        raise ValueError(f"setting WB_MAX_BUNDLE_BYTES must be positive, got {size}")
    return replace(Limits(), max_bundle_bytes=size)


class BodyTooLarge(Exception):
    """A request body over the limit (raised before the rest of it is read)."""

    def __init__(self, limit: int, size: int | None) -> None:
        super().__init__(f"{size} bytes > limit {limit}" if size is not None
                         else f"body exceeds limit {limit}")
        self.limit = limit
        self.size = size


async def read_capped(request: web.Request, max_bytes: int) -> bytes:
    """The request body, read from its stream (so the app-wide ``client_max_size`` does
    not apply), refused as soon as it exceeds ``max_bytes``: by its Content-Length
    before any byte is read, else at the first chunk past the limit."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyTooLarge(max_bytes, request.content_length)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(max_bytes, None)
        chunks.append(chunk)
    return b"".join(chunks)
