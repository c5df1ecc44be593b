"""Push and pull: directory peers and hubs (v2 API, and the original v1 tar.gz API).

Directory peer: push writes each chain link not yet pushed as
``<origin>-<sequence>.cbor``; pull imports every bundle file or directory there it has
not consumed yet. Hub peer: push POSTs CBOR envelopes to ``/api/v2/bundles``; pull
pages through ``GET /api/v2/bundles?since=<cursor>``. With ``api=v1`` (the original hub)
push sends the newest link as its client does (multipart field ``bundle`` with the
tar.gz, ``X-WB-Public-Key``) and pull reads ``/status``, then downloads the bundle with
the original-hub reader (directory entries, duplicates, ``hub_metadata.json``).
After that, a pull looks for the sequences recorded in ``sync_gaps``: a v2 hub is asked
for the origin's log (``?origin=<origin>&since=...``), a directory for the files
``<origin>-<sequence>.*`` (see ``node.sync.gaps`` for the back-off).
Every network call has a timeout and is retried with exponential backoff on
connection errors and 5xx answers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from node.sync import audit as A
from node.sync import gaps as G
from node.sync import peers as P
from node.sync import queries as Q
from node.sync import queries_peers as QP
from node.sync.identity import load_or_create_key
from node.sync.importer import ImportResult, SyncError, import_bundle
from node.sync.outbox_scrub import scrub_outbox_now
from node.sync.replay import replay_trusted_pending
from node.sync.service import job, our_origin
from protocol.containers import CBOR_MEDIA_TYPE, from_cbor, from_targz, to_targz
from protocol.errors import ProtocolError
from protocol.limits import DEFAULT_LIMITS, Limits
from protocol.signature import parse_signature
from service.bundle_io import read_bundle
from service.limits import limits_from_config
from service.settings import Config

log = logging.getLogger("wb.node.sync")

RETRIES = 3
BACKOFF = 0.5
V1_FIELD = "bundle"                  # the original hub's upload form field
V1_KEY_HEADER = "X-WB-Public-Key"    # the original hub reads the signing key from it


class TransientError(Exception):
    pass


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


async def with_retries(fn: Callable[[], Awaitable[Any]], *, retries: int = RETRIES,
                       backoff: float = BACKOFF) -> Any:
    for attempt in range(retries):
        try:
            return await fn()
        except (TimeoutError, TransientError, aiohttp.ClientConnectionError):
            if attempt == retries - 1:
                raise
            await asyncio.sleep(backoff * (2 ** attempt))
    raise AssertionError("unreachable")


def _headers(peer: Any, content_type: str | None = None) -> dict[str, str]:
    h = {"User-Agent": "WhiteBalloon-node"}
    if peer["token"]:
        h["Authorization"] = f"Bearer {peer['token']}"
    if content_type:
        h["Content-Type"] = content_type
    return h


async def _request(session: aiohttp.ClientSession, method: str, url: str, **kw: Any
                   ) -> tuple[int, bytes, str]:
    async def once() -> tuple[int, bytes, str]:
        async with session.request(method, url, **kw) as resp:
            body = await resp.read()
            if resp.status >= 500 or resp.status == 429:
                raise TransientError(f"{resp.status} from {url}")
            return resp.status, body, resp.headers.get("Content-Type", "")
    return await with_retries(once)


def _client(timeout: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout, connect=10))


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
                own = session or _client(request_timeout)
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


def _multipart(archive: bytes) -> tuple[bytes, str]:
    """The original client's upload form: one file field ``bundle`` (bytes, so a retry
    can send it again)."""
    boundary = f"wb-{os.urandom(12).hex()}"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{V1_FIELD}\"; "
            f"filename=\"bundle.tar.gz\"\r\nContent-Type: application/gzip\r\n\r\n")
    body = head.encode() + archive + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def _v1_headers(peer: Any, public_key: bytes, content_type: str | None = None
                ) -> dict[str, str]:
    return {**_headers(peer, content_type),
            V1_KEY_HEADER: base64.b64encode(public_key).decode()}


def _v1_url(peer: Any, what: str) -> str:
    return f"{peer['location']}/api/v1/sync/{peer['name']}/{what}"


async def _push_v1(pool: asyncpg.Pool, session: aiohttp.ClientSession, peer: Any,
                   pending: list[Any], out: TransferResult) -> None:
    """The original hub keeps one bundle per peer: send the newest link, as its client
    does (multipart ``bundle`` + ``X-WB-Public-Key``)."""
    if not pending:
        return
    row = pending[-1]
    bundle = from_cbor(bytes(row["envelope"]))
    data, ctype = _multipart(to_targz(bundle))
    signer = parse_signature(bundle.sig).public_key
    status, body, _ = await _request(session, "POST", _v1_url(peer, "bundle"), data=data,
                                     headers=_v1_headers(peer, signer, ctype))
    _check(status, body, peer)
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
        status, body, _ = await _request(session, "POST", f"{base}/api/v2/bundles",
                                         data=bytes(row["envelope"]),
                                         headers=_headers(peer, CBOR_MEDIA_TYPE))
        _check(status, body)
        await A.record_ack(pool, peer["name"], _answer(body))
        _count(out, row)
        await P.record_outcome(pool, peer["name"], None, push_sequence=row["sequence"])


def _answer(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def answer_error(status: int, body: bytes) -> tuple[str, str, str | None]:
    """``(code, message, pending_id)`` of a hub's error answer, in our shape
    (``{"error": {"code", "message"}}``) or the original v1 hub's (``{"detail": text}``,
    ``{"detail": {"error", "message", "pending_id"}}``, or FastAPI's list for 422)."""
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    code: str | None = None
    message = ""
    pending: str | None = None
    if isinstance(value, dict):
        detail, err = value.get("detail"), value.get("error")
        if isinstance(detail, dict):
            code = str(detail.get("error") or detail.get("code") or "") or None
            message = str(detail.get("message", ""))
            pending = None if detail.get("pending_id") is None else str(detail["pending_id"])
        elif isinstance(detail, list):
            code = "upload_refused"
            message = "; ".join(f"{'.'.join(str(x) for x in d.get('loc', []))}: "
                                f"{d.get('msg', '')}" for d in detail if isinstance(d, dict))
        elif isinstance(detail, str):
            message = detail
        if isinstance(err, dict):
            code = err.get("code") or code
            message = message or str(err.get("message", ""))
    if code is None:
        code = {401: "unauthorized", 403: "peer_blocked", 404: "not_found",
                413: "bundle_too_large", 422: "upload_refused"}.get(status, "hub_error")
    return code, message or body[:200].decode("utf-8", "replace"), pending


def _check(status: int, body: bytes, peer: Any = None) -> None:
    if status < 300:
        return
    code, message, pending = answer_error(status, body)
    if peer is not None and peer["api"] == "v1":
        name = peer["name"]
        if code == "peer_key_mismatch":
            raise SyncError(code, f"hub answered {status}: it holds the bundle until its "
                                  f"admin approves this node's key (pending id {pending}); "
                                  f"ask them to approve it, then push again ({message})")
        if status == 401:
            raise SyncError("unauthorized", f"hub answered 401: it does not take this token "
                                            f"for peer {name} ({message}); fix it with "
                                            f"`wb sync peers remove {name}` and add it again "
                                            f"with --token")
        if status == 404 and code in ("not_found", "unknown_peer"):
            raise SyncError("unknown_peer", f"hub answered 404: it has no peer named {name} "
                                            f"({message}); ask its admin to register it")
    raise SyncError(code, f"hub answered {status}: {message}")


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
                await _fill_gaps_dir(pool, origin, peer, out, force=fetch_all_gaps)
            else:
                own = session or _client(request_timeout)
                try:
                    key = load_or_create_key(config).public_key \
                        if peer["api"] == "v1" else None
                    await _pull_hub(pool, origin, own, peer, out, key)
                    if peer["api"] == "v2":
                        await _fill_gaps_hub(pool, origin, own, peer, out,
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


async def _import_one(pool: asyncpg.Pool, origin: str, peer: Any, bundle: Any,
                      out: TransferResult, label: str) -> ImportResult | None:
    out.bundles += 1
    out.bytes += bundle.total_bytes
    out.tick()
    try:
        res = await import_bundle(pool, bundle, our_origin=origin, peer=peer["name"],
                                  limits=out.limits)
    except (ProtocolError, SyncError) as exc:
        out.errors.append({"source": label, "code": exc.code, "message": exc.message})
        return None
    out.imported.append(res.as_json())
    return res


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
            out.errors.append({"source": path.name, "code": exc.code, "message": exc.message})
            continue
        res = await _import_one(pool, origin, peer, bundle, out, path.name)
        if res is not None and res.result != "pending":
            await QP.update_sync_peers_set_seen_by_name(pool, peer["name"], path.name)


async def _pull_v1(pool: asyncpg.Pool, origin: str, session: aiohttp.ClientSession,
                   peer: Any, out: TransferResult, public_key: bytes) -> None:
    """Read the original hub's ``/status``, then download the peer's bundle when it is
    one not imported yet. Its archive holds directory entries, every file twice and
    ``hub_metadata.json``: read with the original-hub reader."""
    headers = _v1_headers(peer, public_key)
    status, body, _ = await _request(session, "GET", _v1_url(peer, "status"), headers=headers)
    _check(status, body, peer)
    info = json.loads(body) if body else {}
    if not isinstance(info, dict) or not info.get("has_bundle"):
        return
    meta = info.get("metadata") if isinstance(info.get("metadata"), dict) else {}
    digest = meta.get("manifest_digest") or info.get("digest")
    if digest and digest in peer["seen"]:
        return
    status, body, _ = await _request(session, "GET", _v1_url(peer, "bundle"), headers=headers)
    if status == 404:
        return  # gone since the status answer
    _check(status, body, peer)
    try:
        bundle = from_targz(body, out.limits, original_hub=True)
    except ProtocolError as exc:
        out.errors.append({"source": "v1", "code": exc.code, "message": exc.message})
        return
    res = await _import_one(pool, origin, peer, bundle, out, "v1")
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
        status, body, _ = await _request(session, "GET", f"{base}/api/v2/bundles",
                                         params={"since": str(cursor), "limit": "100"},
                                         headers={**_headers(peer),
                                                  "Accept": "application/json"})
        _check(status, body)
        page = json.loads(body)
        start = cursor
        for entry in page.get("entries", []):
            if entry.get("origin") != origin:
                bundle = from_cbor(base64.b64decode(entry["bundle"]), out.limits)
                await _import_one(pool, origin, peer, bundle, out, f"seq {entry['seq']}")
            cursor = max(cursor, int(entry["seq"]))
        nxt = int(page.get("next", cursor))
        # an unfiltered page is contiguous: the audit proves each skipped hub_seq absent
        await A.record_skipped(pool, peer["name"], A.skipped_of(
            start, [int(e["seq"]) for e in page.get("entries", [])], nxt))
        cursor = max(cursor, nxt)
        await P.record_outcome(pool, peer["name"], None, cursor=cursor)
        if not page.get("entries") or nxt >= int(page.get("head", nxt)):
            break


# --------------------------------------------------------------------------- gaps

GAP_PAGE = 100
GAP_MAX_PAGES = 50


async def _fill_gaps_hub(pool: asyncpg.Pool, origin: str, session: aiohttp.ClientSession,
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
                status, body, _ = await _request(
                    session, "GET", f"{base}/api/v2/bundles",
                    params={"origin": gap_origin, "since": str(since),
                            "limit": str(GAP_PAGE)},
                    headers={**_headers(peer), "Accept": "application/json"})
                if status == 410 and since == 0:  # pruned: start at the oldest entry
                    since = max(0, int(_error_of(body).get("oldest", 1)) - 1)
                    continue
                _check(status, body)
                page = json.loads(body)
                for entry in page.get("entries", []):
                    seq = entry.get("sequence")
                    if entry.get("origin") == gap_origin and seq in wanted:
                        bundle = from_cbor(base64.b64decode(entry["bundle"]), out.limits)
                        res = await _import_one(pool, origin, peer, bundle, out,
                                                f"gap {gap_origin} #{seq}")
                        if res is not None and res.result != "pending":
                            wanted.discard(seq)
                nxt = int(page.get("next", since))
                if nxt <= since or nxt >= int(page.get("head", nxt)):
                    break
                since = nxt
        except (SyncError, TransientError, TimeoutError, aiohttp.ClientError) as exc:
            out.errors.append({"source": f"gaps {gap_origin}",
                               "code": getattr(exc, "code", "peer_unreachable"),
                               "message": str(exc)[:300]})
        await _after_gap_look(pool, gap_origin, sequences)


def _error_of(body: bytes) -> dict[str, Any]:
    try:
        err = json.loads(body).get("error", {})
        return err if isinstance(err, dict) else {}
    except (ValueError, AttributeError):
        return {}


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


async def _fill_gaps_dir(pool: asyncpg.Pool, origin: str, peer: Any, out: TransferResult,
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
                out.errors.append({"source": path.name, "code": exc.code,
                                   "message": exc.message})
                continue
            await _import_one(pool, origin, peer, bundle, out, f"gap {path.name}")
        await _after_gap_look(pool, gap_origin, sequences)


async def _after_gap_look(pool: asyncpg.Pool, gap_origin: str, sequences: list[int]) -> None:
    left = await G.remaining(pool, gap_origin, sequences)
    if left:
        await G.mark_attempt(pool, gap_origin, sorted(left))
    filled = len(sequences) - len(left)
    if filled:
        log.info("gaps filled", extra={"origin": gap_origin, "filled": filled,
                                       "left": len(left)})
