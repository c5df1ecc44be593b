"""Witnessing (C2SP ``tlog-witness`` / ``tlog-cosignature/v1``), both sides.

As a witness: ``POST /tlog/witness/add-checkpoint`` cosigns a checkpoint of a log named
in ``WB_HUB_WITNESS_LOGS`` (its note verifier keys) after checking the log's signature
and a consistency proof from the newest checkpoint this hub cosigned of that log; it
never cosigns two checkpoints that do not extend each other. The witness key is the
hub's log key under the name ``<log origin>/witness`` (``GET /tlog/witness/key``).

Cosigning requests are limited per client address (``WB_HUB_WITNESS_RATE_PER_MINUTE``,
429 beyond): each costs a signature check and a row lock.

As a log: after each new checkpoint the checkpoint job submits it to every witness in
``WB_HUB_WITNESSES`` (URLs) and keeps the cosignature lines; ``/tlog/checkpoint``
serves the note with them, so a node can require N cosignatures from witnesses it names
(``WB_SYNC_WITNESSES``, ``WB_SYNC_WITNESS_QUORUM``).
"""

from __future__ import annotations

import base64
import binascii
import logging
import time

import aiohttp
import asyncpg
from aiohttp import web

from hub import queries_tlog as TQ
from hub import typedefs as T
from hub.tlog_signer import signer_key
from protocol import tlog as L
from service.ratelimit import RateLimiter

log = logging.getLogger("wb.hub.witness")

MAX_BODY = 64 * 1024
SIZE_TYPE = "text/x.tlog.size"


def witness_name(origin: str) -> str:
    return f"{origin}/witness"


def witness_verifier(origin: str, public_key: bytes) -> L.NoteVerifier:
    return L.verifier_for(witness_name(origin), public_key, alg=L.ALG_COSIGNATURE_V1)


def witnessed_logs(raw: str) -> dict[str, L.NoteVerifier]:
    """``WB_HUB_WITNESS_LOGS``: verifier keys, separated by commas or whitespace."""
    out = {}
    for item in raw.replace(",", " ").split():
        v = L.parse_verifier(item)
        out[v.name] = v
    return out


def _text(status: int, text: str, content_type: str = "text/plain") -> web.Response:
    return web.Response(status=status, text=text, content_type=content_type,
                        headers={"Cache-Control": "no-store"})


def parse_request(body: bytes) -> tuple[int, list[bytes], bytes]:
    """``old <size>``, the proof hashes one per line, a blank line, the signed note."""
    head, sep, note = body.partition(b"\n\n")
    if not sep:
        raise L.TlogError("no blank line before the checkpoint")
    lines = head.decode("ascii", "replace").split("\n")
    first = lines[0].split(" ")
    if len(first) != 2 or first[0] != "old" or not first[1].isdigit() or len(first[1]) > 18:
        raise L.TlogError("the first line must be old <size>")
    try:
        proof = [base64.b64decode(x, validate=True) for x in lines[1:]]
    except binascii.Error:
        raise L.TlogError("a proof line is not base64") from None
    return int(first[1]), proof, note


async def add_checkpoint(request: web.Request) -> web.Response:
    limit = request.app[T.options_key].witness_rate_per_minute
    if limit > 0 and not request.app[T.witness_limiter_key].allow(request.remote or "", limit):
        # checked before the body is read: a flood costs no signature check, no lock
        return web.Response(status=429, text="too many cosigning requests; retry later\n",
                            content_type="text/plain",
                            headers={"Retry-After": "60", "Cache-Control": "no-store"})
    logs = witnessed_logs(request.app[T.config_key]["WB_HUB_WITNESS_LOGS"])
    if request.content_length is None:
        return _text(411, "send a Content-Length\n")
    if request.content_length > MAX_BODY:
        return _text(413, "request too large\n")
    body = await request.read()
    try:
        old, proof, note_bytes = parse_request(body)
        note = L.parse_note(note_bytes)
        cp = L.parse_checkpoint(note.text)
    except L.TlogError as exc:
        return _text(400, exc.message + "\n")
    verifier = logs.get(cp.origin)
    if verifier is None:
        return _text(404, f"this witness does not witness {cp.origin}\n")
    try:
        L.verify_checkpoint(note_bytes, verifier)
    except L.TlogError as exc:
        return _text(403, exc.message + "\n")
    pool = request.app[T.pool_key]
    async with pool.acquire() as conn, conn.transaction():
        kept = await TQ.witnessed_log_for_update(conn, cp.origin)
        have = 0 if kept is None else kept["size"]
        if old != have:
            return _text(409, f"{have}\n", SIZE_TYPE)
        if cp.size < old:
            return _text(400, "the checkpoint is older than old\n")
        try:
            L.verify_consistency(old, L.EMPTY_ROOT if kept is None else bytes(kept["root"]),
                                 cp.size, cp.root, proof)
        except L.TlogError as exc:
            log.warning("witness refused an inconsistent checkpoint",
                        extra={"log": cp.origin, "old": old, "size": cp.size})
            return _text(422, exc.message + "\n")
        await TQ.save_witnessed_log(conn, cp.origin, cp.size, cp.root, note_bytes)
    signer = request.app[signer_key]
    sig = L.cosign(note.text, witness_name(signer.origin), signer.seed, int(time.time()))
    return _text(200, sig.line())


async def witness_key(request: web.Request) -> web.Response:
    signer = request.app[signer_key]
    return _text(200, witness_verifier(signer.origin, signer.public_key).text() + "\n")


# ------------------------------------------------------------------ the log's side

async def submit(pool: asyncpg.Pool, session: aiohttp.ClientSession, url: str,
                 size: int, note: bytes) -> bool:
    """Ask the witness at ``url`` to cosign our checkpoint of ``size``; keep its line."""
    last = await TQ.last_cosigned_size(pool, url)
    for _ in range(2):
        want = L.needed(lambda r, old=last: L.consistency_proof(r, old, size))
        have = await TQ.hashes(pool, want)
        proof = L.consistency_proof(L.reader_of(have), last, size)
        body = (f"old {last}\n" + "".join(base64.b64encode(h).decode() + "\n"
                                          for h in proof) + "\n").encode() + note
        async with session.post(url.rstrip("/") + "/tlog/witness/add-checkpoint",
                                data=body) as r:
            text = await r.read()
            if r.status == 409 and r.content_type == SIZE_TYPE:
                told = text.decode().strip()
                if not told.isdigit() or int(told) > size:
                    return False
                last = int(told)
                continue
            if r.status != 200:
                log.warning("witness refused our checkpoint",
                            extra={"witness": url, "status": r.status,
                                   "detail": text[:200].decode("utf-8", "replace")})
                return False
        await TQ.save_cosignature(pool, url, size, text.decode().strip("\n"))
        return True
    return False


async def cosigned(pool: asyncpg.Pool, size: int, note: bytes) -> bytes:
    """The note with every cosignature line the witnesses gave for ``size``."""
    lines = await TQ.cosignature_lines(pool, size)
    return note + b"".join(line.encode() + b"\n" for line in lines)


def setup(app: web.Application) -> None:
    app[T.witness_limiter_key] = RateLimiter(window_seconds=60.0, max_keys=10_000)
    app.router.add_post("/tlog/witness/add-checkpoint", add_checkpoint,
                        name="tlog_witness_add")
    app.router.add_get("/tlog/witness/key", witness_key, name="tlog_witness_key")
