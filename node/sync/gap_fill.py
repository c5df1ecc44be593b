"""Fetching the sequences recorded in ``sync_gaps`` from a peer, after a pull.

A v2 hub is asked for the origin's log (``?origin=<origin>&since=...``), a directory for
the files ``<origin>-<sequence>.*``. ``node.sync.gaps`` keeps the gaps and their back-off.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from node.sync import gaps as G
from node.sync import peer_http as H
from node.sync.errors import SyncError
from node.sync.transfer import TransferResult, import_one
from protocol.containers import from_cbor
from protocol.errors import ProtocolError
from service.bundle_io import read_bundle

log = logging.getLogger("wb.node.sync")

GAP_PAGE = 100
GAP_MAX_PAGES = 50


async def fill_gaps_hub(pool: asyncpg.Pool, origin: str, session: aiohttp.ClientSession,
                        peer: Any, out: TransferResult, *, force: bool = False) -> None:
    """Ask the hub for the origin's log entries carrying the missing sequences.

    The log's ``since`` is the hub's own sequence, not the origin's, so the origin's
    entries are read from the oldest retained one on (filtered by ``origin=``) until
    every missing sequence was found or the head is reached (at most GAP_MAX_PAGES)."""
    base = peer["location"]
    for gap_origin, sequences in (await G.due_gaps(pool, force=force)).items():
        if gap_origin == origin:
            continue
        wanted = set(sequences)
        since, pages = 0, 0
        try:
            while wanted and pages < GAP_MAX_PAGES:
                pages += 1
                status, body, _ = await H.request(
                    session, "GET", f"{base}/api/v2/bundles",
                    params={"origin": gap_origin, "since": str(since),
                            "limit": str(GAP_PAGE)},
                    headers=H.json_headers(peer))
                if status == 410 and since == 0:  # pruned: start at the oldest entry
                    since = max(0, int(H.error_of(body).get("oldest", 1)) - 1)
                    continue
                H.check(status, body)
                page = json.loads(body)
                for entry in page.get("entries", []):
                    seq = entry.get("sequence")
                    if entry.get("origin") == gap_origin and seq in wanted:
                        bundle = from_cbor(base64.b64decode(entry["bundle"]), out.limits)
                        res = await import_one(pool, origin, peer, bundle, out,
                                               f"gap {gap_origin} #{seq}")
                        if res is not None and res.result != "pending":
                            wanted.discard(seq)
                nxt = int(page.get("next", since))
                if nxt <= since or nxt >= int(page.get("head", nxt)):
                    break
                since = nxt
        except (SyncError, H.TransientError, TimeoutError, aiohttp.ClientError) as exc:
            out.errors.append({"source": f"gaps {gap_origin}",
                               "code": getattr(exc, "code", "peer_unreachable"),
                               "message": str(exc)[:300]})
        await _after_gap_look(pool, gap_origin, sequences)


def _gap_files(source: Path, gap_origin: str, sequences: list[int]) -> list[tuple[int, Path]]:
    if not source.is_dir():
        return []
    wanted = set(sequences)
    found = []
    for path in source.iterdir():
        head, _, tail = path.name.split(".")[0].rpartition("-")
        if head == gap_origin and tail.isdigit() and int(tail) in wanted:
            found.append((int(tail), path))
    return sorted(found)


async def fill_gaps_dir(pool: asyncpg.Pool, origin: str, peer: Any, out: TransferResult,
                        *, force: bool = False) -> None:
    """Look for ``<origin>-<sequence>.*`` files of the missing sequences (even files
    consumed before, e.g. one refused while the gap was recorded)."""
    source = Path(peer["location"])
    for gap_origin, sequences in (await G.due_gaps(pool, force=force)).items():
        if gap_origin == origin:
            continue
        for _seq, path in await asyncio.to_thread(_gap_files, source, gap_origin, sequences):
            try:
                bundle = await asyncio.to_thread(read_bundle, path, out.limits)
            except ProtocolError as exc:
                out.refused(path.name, exc)
                continue
            await import_one(pool, origin, peer, bundle, out, f"gap {path.name}")
        await _after_gap_look(pool, gap_origin, sequences)


async def _after_gap_look(pool: asyncpg.Pool, gap_origin: str, sequences: list[int]) -> None:
    left = await G.remaining(pool, gap_origin, sequences)
    if left:
        await G.mark_attempt(pool, gap_origin, sorted(left))
    filled = len(sequences) - len(left)
    if filled:
        log.info("gaps filled", extra={"origin": gap_origin, "filled": filled,
                                       "left": len(left)})
