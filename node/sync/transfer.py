"""One push or pull in progress: its counters and errors, and importing one fetched bundle.

Shared by the transport (``node.sync.transport``) and the gap filler
(``node.sync.gap_fill``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from node.sync.errors import SyncError
from node.sync.importer import ImportResult, import_bundle
from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits


@dataclass
class TransferResult:
    peer: str
    direction: str
    bundles: int = 0
    bytes: int = 0
    imported: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    #: called after every bundle moved, for progress displays
    on_progress: Callable[[TransferResult], None] | None = field(default=None, repr=False,
                                                                compare=False)
    #: what every imported bundle is checked against (the node's one limits object)
    limits: Limits = field(default=DEFAULT_LIMITS, repr=False, compare=False)

    def tick(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self)

    def as_json(self) -> dict[str, Any]:
        return {"peer": self.peer, "direction": self.direction, "bundles": self.bundles,
                "bytes": self.bytes, "imported": self.imported, "errors": self.errors}

    def refused(self, source: str, exc: ProtocolError | SyncError) -> None:
        self.errors.append({"source": source, "code": exc.code, "message": exc.message})


async def import_one(pool: asyncpg.Pool, origin: str, peer: Any, bundle: Any,
                     out: TransferResult, label: str) -> ImportResult | None:
    """Count and import one bundle from ``peer``; a refusal is recorded in ``out.errors``
    (under ``label``) and gives None."""
    out.bundles += 1
    out.bytes += bundle.total_bytes
    out.tick()
    try:
        res = await import_bundle(pool, bundle, our_origin=origin, peer=peer["name"],
                                  limits=out.limits)
    except (ProtocolError, SyncError) as exc:
        out.refused(label, exc)
        return None
    out.imported.append(res.as_json())
    return res
