"""Push and pull: directory peers and hubs (v2 API, and the original v1 tar.gz API).

Directory peer: push writes each chain link not yet pushed as
``<origin>-<sequence>.cbor``; pull imports every bundle file or directory there it has
not consumed yet. Hub peer: push POSTs CBOR envelopes to ``/api/v2/bundles``; pull
pages through ``GET /api/v2/bundles?since=<cursor>``. With ``api=v1`` (the original hub)
push sends the newest link as its client does (multipart field ``bundle`` with the
tar.gz, ``X-WB-Public-Key``) and pull reads ``/status``, then downloads the bundle with
the original-hub reader (directory entries, duplicates, ``hub_metadata.json``).
After that, a pull looks for the sequences recorded in ``sync_gaps``
(``node.sync.gap_fill``). HTTP with timeouts and retries: ``node.sync.peer_http``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from node.sync import audit as A
from node.sync import peer_http as H
from node.sync import peers as P
from node.sync import queries as Q
from node.sync import queries_peers as QP
from node.sync.errors import SyncError
from node.sync.gap_fill import fill_gaps_dir, fill_gaps_hub
from node.sync.identity import load_or_create_key
from node.sync.outbox_scrub import scrub_outbox_now
from node.sync.replay import replay_trusted_pending
from node.sync.service import job, our_origin
from node.sync.transfer import TransferResult, import_one
from protocol.containers import CBOR_MEDIA_TYPE, from_cbor, from_targz, to_targz
from protocol.errors import ProtocolError
from protocol.signature import parse_signature
from service.bundle_io import read_bundle
from service.limits import limits_from_config
from service.settings import Config

__all__ = ["TransferResult", "pull", "push"]  # TransferResult: re-exported for the CLI


# --------------------------------------------------------------------------- push

async def push(pool: asyncpg.Pool, config: Config, name: str, *, actor: str = "cli",
               request_timeout: float = 60, metrics: Any = None,
               session: aiohttp.ClientSession | None = None,
               progress: Callable[[TransferResult], None] | None = None) -> TransferResult:
    peer = await P.get_peer(pool, name)
    out = TransferResult(name, "push", on_progress=progress)
    origin = await our_origin(pool, config)
    async with job(pool, "push", actor, name, metrics=metrics) as j:
        try:
            await scrub_outbox_now(pool)  # withdrawals made anywhere never leave again
            pending = await Q.outbox_after(pool, peer["push_sequence"])
            if peer["kind"] == "dir":
                target = Path(peer["location"])
                for row in pending:
                    name_ = f"{origin}-{row['sequence']:010d}.cbor"
                    await asyncio.to_thread(_write_file, target, name_, bytes(row["envelope"]))
                    _count(out, row)
                    await P.record_outcome(pool, name, None, push_sequence=row["sequence"])
            else:
                own = session or H.client(request_timeout)
                try:
                    await _push_hub(pool, own, peer, pending, out)
                finally:
                    if session is None:
                        await own.close()
            await P.record_outcome(pool, name, None)
        except Exception as exc:
            await P.record_outcome(pool, name, str(exc)[:500])
            raise
        j.bundles, j.bundle_bytes = out.bundles, out.bytes
        j.result = "ok" if out.bundles else "noop"
    return out


def _write_file(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    tmp = directory / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _list_dir(source: Path) -> list[Path]:
    if not source.is_dir():
        raise SyncError("peer_unreachable", f"{source} is not a directory")
    return sorted((p for p in source.iterdir() if not p.name.startswith(".")),
                  key=_sequence_key)


def _count(out: TransferResult, row: Any) -> None:
    out.bundles += 1
    out.bytes += len(row["envelope"])
    out.tick()


async def _push_v1(pool: asyncpg.Pool, session: aiohttp.ClientSession, peer: Any,
                   pending: list[Any], out: TransferResult) -> None:
    """The original hub keeps one bundle per peer: send the newest link, as its client
    does (multipart ``bundle`` + ``X-WB-Public-Key``)."""
    if not pending:
        return
    row = pending[-1]
    bundle = from_cbor(bytes(row["envelope"]))
    data, ctype = H.multipart(to_targz(bundle))
    signer = parse_signature(bundle.sig).public_key
    status, body, _ = await H.request(session, "POST", H.v1_url(peer, "bundle"), data=data,
                                      headers=H.v1_headers(peer, signer, ctype))
    H.check(status, body, peer)
    out.bundles, out.bytes = 1, len(data)
    out.tick()
    await P.record_outcome(pool, peer["name"], None, push_sequence=row["sequence"])


async def _push_hub(pool: asyncpg.Pool, session: aiohttp.ClientSession, peer: Any,
                    pending: list[Any], out: TransferResult) -> None:
    base = peer["location"]
    if peer["api"] == "v1":
        await _push_v1(pool, session, peer, pending, out)
        return
    for row in pending:
        status, body, _ = await H.request(session, "POST", f"{base}/api/v2/bundles",
                                          data=bytes(row["envelope"]),
                                          headers=H.headers(peer, CBOR_MEDIA_TYPE))
        H.check(status, body)
        await A.record_ack(pool, peer["name"], H.answer(body))
        _count(out, row)
        await P.record_outcome(pool, peer["name"], None, push_sequence=row["sequence"])


# --------------------------------------------------------------------------- pull

async def pull(pool: asyncpg.Pool, config: Config, name: str, *, actor: str = "cli",
               request_timeout: float = 60, metrics: Any = None,
               session: aiohttp.ClientSession | None = None,
               fetch_all_gaps: bool = False,
               progress: Callable[[TransferResult], None] | None = None) -> TransferResult:
    """Import what the peer has past its cursor, then look for this node's recorded gaps
    there (those due after back-off, or all with ``fetch_all_gaps``), then replay queued
    bundles whose key became trusted (e.g. by a rotation)."""
    peer = await P.get_peer(pool, name)
    out = TransferResult(name, "pull", on_progress=progress,
                         limits=limits_from_config(config))
    origin = await our_origin(pool, config)
    async with job(pool, "pull", actor, name, metrics=metrics) as j:
        try:
            if peer["kind"] == "dir":
                await _pull_dir(pool, origin, peer, out)
                await fill_gaps_dir(pool, origin, peer, out, force=fetch_all_gaps)
            else:
                own = session or H.client(request_timeout)
                try:
                    key = load_or_create_key(config).public_key \
                        if peer["api"] == "v1" else None
                    await _pull_hub(pool, origin, own, peer, out, key)
                    if peer["api"] == "v2":
                        await fill_gaps_hub(pool, origin, own, peer, out,
                                            force=fetch_all_gaps)
                        await A.audit_after_pull(pool, config, peer, own)
                finally:
                    if session is None:
                        await own.close()
            for res in await replay_trusted_pending(pool, origin):
                out.imported.append(res.as_json())
            await P.record_outcome(pool, name, out.errors[0]["message"] if out.errors else None)
        except Exception as exc:
            await P.record_outcome(pool, name, str(exc)[:500])
            raise
        j.bundles, j.bundle_bytes = out.bundles, out.bytes
        j.records_in = sum(i["records"] for i in out.imported)
        j.records_applied = sum(sum(i["applied"].values()) for i in out.imported)
        j.result = "error" if out.errors else ("ok" if out.bundles else "noop")
        j.details = {"errors": out.errors[:20]}
    return out


def _sequence_key(path: Path) -> tuple[str, int, str]:
    stem = path.name.split(".")[0]
    head, _, tail = stem.rpartition("-")
    return (head, int(tail), path.name) if tail.isdigit() else (stem, 0, path.name)


async def _pull_dir(pool: asyncpg.Pool, origin: str, peer: Any, out: TransferResult) -> None:
    seen = set(peer["seen"])
    entries = await asyncio.to_thread(_list_dir, Path(peer["location"]))
    for path in entries:
        if path.name in seen or path.name.startswith(f"{origin}-"):
            continue
        try:
            bundle = await asyncio.to_thread(read_bundle, path, out.limits)
        except ProtocolError as exc:
            out.refused(path.name, exc)
            continue
        res = await import_one(pool, origin, peer, bundle, out, path.name)
        if res is not None and res.result != "pending":
            await QP.update_sync_peers_set_seen_by_name(pool, peer["name"], path.name)


async def _pull_v1(pool: asyncpg.Pool, origin: str, session: aiohttp.ClientSession,
                   peer: Any, out: TransferResult, public_key: bytes) -> None:
    """Read the original hub's ``/status``, then download the peer's bundle when it is
    one not imported yet. Its archive holds directory entries, every file twice and
    ``hub_metadata.json``: read with the original-hub reader."""
    headers = H.v1_headers(peer, public_key)
    status, body, _ = await H.request(session, "GET", H.v1_url(peer, "status"),
                                      headers=headers)
    H.check(status, body, peer)
    info = json.loads(body) if body else {}
    if not isinstance(info, dict) or not info.get("has_bundle"):
        return
    meta = info.get("metadata") if isinstance(info.get("metadata"), dict) else {}
    digest = meta.get("manifest_digest") or info.get("digest")
    if digest and digest in peer["seen"]:
        return
    status, body, _ = await H.request(session, "GET", H.v1_url(peer, "bundle"),
                                      headers=headers)
    if status == 404:
        return  # gone since the status answer
    H.check(status, body, peer)
    try:
        bundle = from_targz(body, out.limits, original_hub=True)
    except ProtocolError as exc:
        out.refused("v1", exc)
        return
    res = await import_one(pool, origin, peer, bundle, out, "v1")
    if res is not None and res.result != "pending":
        await QP.update_sync_peers_set_seen_by_name(pool, peer["name"], bundle.digest)


async def _pull_hub(pool: asyncpg.Pool, origin: str, session: aiohttp.ClientSession,
                    peer: Any, out: TransferResult, public_key: bytes | None = None) -> None:
    base = peer["location"]
    if peer["api"] == "v1":
        assert public_key is not None
        await _pull_v1(pool, origin, session, peer, out, public_key)
        return
    cursor = peer["cursor"]
    while True:
        status, body, _ = await H.request(session, "GET", f"{base}/api/v2/bundles",
                                          params={"since": str(cursor), "limit": "100"},
                                          headers=H.json_headers(peer))
        H.check(status, body)
        page = json.loads(body)
        start = cursor
        for entry in page.get("entries", []):
            if entry.get("origin") != origin:
                bundle = from_cbor(base64.b64decode(entry["bundle"]), out.limits)
                await import_one(pool, origin, peer, bundle, out, f"seq {entry['seq']}")
            cursor = max(cursor, int(entry["seq"]))
        nxt = int(page.get("next", cursor))
        # an unfiltered page is contiguous: the audit proves each skipped hub_seq absent
        await A.record_skipped(pool, peer["name"], A.skipped_of(
            start, [int(e["seq"]) for e in page.get("entries", [])], nxt))
        cursor = max(cursor, nxt)
        await P.record_outcome(pool, peer["name"], None, cursor=cursor)
        if not page.get("entries") or nxt >= int(page.get("head", nxt)):
            break
