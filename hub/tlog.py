"""The hub's transparency log: signing key, checkpoints, proofs, tiles and their routes.

Leaves are appended inside the ingest transaction by the trigger ``hub_tlog_append``
on ``hub_log`` (migrations 0007, 0020): every path that logs an entry logs a leaf; the
hashes are computed before each checkpoint (``queries_tlog.extend``). Here: the
log's Ed25519 key (a 0600 file, made on first start), a job that signs a C2SP
checkpoint whenever the tree grew (at most every ``WB_HUB_CHECKPOINT_INTERVAL``
seconds), and the public routes under ``/tlog/`` (checkpoint, verifier key, inclusion
and consistency proofs, C2SP tiles). See docs/transparency.md.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
from aiohttp import web

from hub import queries_tlog as TQ
from hub import typedefs as T
from hub import witness as WT
from hub.errors import HubError
from hub.tlog_signer import LogSigner, log_origin, signer_from_config, signer_key
from protocol import tlog as L
from service.tasks import cancel_and_wait

log = logging.getLogger("wb.hub.tlog")

__all__ = ["LogSigner", "log_origin", "signer_from_config", "signer_key"]


async def checkpoint_now(pool: asyncpg.Pool, signer: LogSigner) -> asyncpg.Record:
    """Hash the leaves ingest appended since, sign the tree if it grew since the newest
    checkpoint; the newest one."""
    async with pool.acquire() as conn:
        await TQ.extend(conn)
    latest = await TQ.latest_checkpoint(pool)
    st = await TQ.state(pool)
    if latest is None or st.size > latest["size"]:
        await TQ.save_checkpoint(pool, st.size, st.root, signer.sign(st.size, st.root),
                                 st.last_hub_seq)
        latest = await TQ.latest_checkpoint(pool)
    assert latest is not None
    return latest


class Checkpointer:
    """Catches the tree up with an older log once, then signs checkpoints while it grows."""

    def __init__(self, pool: asyncpg.Pool, signer: LogSigner, interval: float,
                 witnesses: list[str] | None = None,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.pool = pool
        self.signer = signer
        self.interval = interval
        self.witnesses = witnesses or []
        self.session = session
        self._task: asyncio.Task[None] | None = None
        #: the newest checkpoint: (hub_seq of its last leaf, signed note)
        self.latest: tuple[int, bytes] | None = None

    def _keep(self, row: asyncpg.Record) -> None:
        self.latest = (row["last_hub_seq"], bytes(row["note"]))

    async def tick(self) -> None:
        """Sign if the tree grew; have a new checkpoint cosigned by the witnesses."""
        row = await checkpoint_now(self.pool, self.signer)
        self._keep(row)
        if self.session is None:
            return
        for url in self.witnesses:
            done = await TQ.is_cosigned(self.pool, url, row["size"])
            if not done and row["size"] > 0:
                try:
                    await WT.submit(self.pool, self.session, url, row["size"],
                                    bytes(row["note"]))
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    log.warning("witness unreachable", extra={"witness": url,
                                                              "error": str(exc)})

    async def start(self) -> None:
        async with self.pool.acquire() as conn:
            added = await TQ.catch_up(conn)
        if added:
            log.info("transparency log caught up with the log", extra={"leaves": added})
        await self.tick()
        if self.interval > 0:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("checkpoint job cannot reach the database; retrying")
            except Exception:
                log.exception("checkpoint job failed")


def stream_checkpoint(app: web.Application) -> tuple[int, bytes] | None:
    """What a stream writer sends in its ``info`` frames: the newest checkpoint (the
    hub_seq of its last leaf, the signed note), so a subscriber always holds a signed
    statement of the log it was shown."""
    cp = app.get(checkpointer_key)
    return None if cp is None else cp.latest


checkpointer_key = web.AppKey("tlog_checkpointer", Checkpointer)


async def tlog_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[T.config_key]
    signer = signer_from_config(config)
    witnesses = config["WB_HUB_WITNESSES"].replace(",", " ").split()
    cp = Checkpointer(app[T.pool_key], signer, float(config["WB_HUB_CHECKPOINT_INTERVAL"]),
                      witnesses, app[T.client_key])
    app[signer_key] = signer
    app[checkpointer_key] = cp
    await cp.start()
    yield
    await cp.stop()


# ----------------------------------------------------------------------------- proofs

def _b64(h: bytes) -> str:
    return base64.b64encode(h).decode()


def _int(request: web.Request, name: str, *, required: bool = True) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        if required:
            raise HubError(400, "invalid_proof_request", f"{name}= is required")
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise HubError(400, "invalid_proof_request", f"{name}= must be a non-negative integer")
    return int(raw)


async def _size(pool: asyncpg.Pool, request: web.Request) -> tuple[int, bytes]:
    """The tree size a proof is for: ?size= (a signed checkpoint's) or the newest."""
    wanted = _int(request, "size", required=False)
    row = (await TQ.latest_checkpoint(pool) if wanted is None
           else await TQ.checkpoint_at(pool, wanted))
    if row is None:
        raise HubError(404, "unknown_tree_size",
                       f"this hub signed no checkpoint of size {wanted}")
    return row["size"], bytes(row["note"])


async def inclusion(pool: asyncpg.Pool, request: web.Request) -> dict:
    size, note = await _size(pool, request)
    if "hub_seq" in request.query:
        hub_seq = _int(request, "hub_seq")
        assert hub_seq is not None
        leaf = await TQ.leaf_by_hub_seq(pool, hub_seq)
    elif "origin" in request.query:
        sequence = _int(request, "sequence")
        assert sequence is not None
        leaf = await TQ.leaf_by_origin(pool, request.query["origin"], sequence)
    else:
        raise HubError(400, "invalid_proof_request", "give hub_seq= or origin= and sequence=")
    if leaf is None:
        raise HubError(404, "not_in_log", "no log entry for that bundle")
    index = leaf["idx"]
    if index >= size:
        raise HubError(404, "not_yet_in_checkpoint",
                       f"entry {index} is not in the tree of {size}; ask again after "
                       f"the next checkpoint", extra={"leaf_index": index})
    have = await TQ.hashes(pool, L.needed(lambda r: L.inclusion_proof(r, index, size)))
    proof = L.inclusion_proof(L.reader_of(have), index, size)
    return {"leaf_index": index, "hub_seq": leaf["hub_seq"], "tree_size": size,
            "leaf": _b64(bytes(leaf["entry"])), "proof": [_b64(h) for h in proof],
            "checkpoint": note.decode()}


async def consistency(pool: asyncpg.Pool, request: web.Request) -> dict:
    old = _int(request, "old")
    assert old is not None
    size, note = await _size(pool, request)
    if old > size:
        raise HubError(400, "invalid_proof_request", f"old={old} is beyond size={size}")
    have = await TQ.hashes(pool, L.needed(lambda r: L.consistency_proof(r, old, size)))
    proof = L.consistency_proof(L.reader_of(have), old, size)
    old_note = await TQ.checkpoint_at(pool, old)
    return {"old": old, "tree_size": size, "proof": [_b64(h) for h in proof],
            "checkpoint": note.decode(),
            "old_checkpoint": None if old_note is None else bytes(old_note["note"]).decode()}


async def tile(pool: asyncpg.Pool, path: str) -> bytes:
    try:
        ref = L.parse_tile_path(path)
    except L.TlogError as exc:
        raise HubError(404, "not_found", exc.message) from None
    st = await TQ.state(pool)
    start = ref.index * L.TILE_WIDTH
    if ref.level is None:
        available = st.size - start
        data = L.entry_bundle(await TQ.entries(pool, start, ref.width)) \
            if available >= ref.width else b""
    else:
        level = ref.level * L.TILE_HEIGHT
        available = (st.size >> level) - start if level < 63 else 0
        data = b"".join(await TQ.hash_range(pool, level, start, ref.width)) \
            if available >= ref.width else b""
    if not data:
        raise HubError(404, "not_found", f"{path} is not in the tree of {st.size}")
    return data


# ----------------------------------------------------------------------------- routes

def _text(body: bytes, *, cache: str = "no-store") -> web.Response:
    return web.Response(body=body, content_type="text/plain", charset="utf-8",
                        headers={"Cache-Control": cache})


async def checkpoint_view(request: web.Request) -> web.Response:
    pool = request.app[T.pool_key]
    row = await checkpoint_now(pool, request.app[signer_key])
    return _text(await WT.cosigned(pool, row["size"], bytes(row["note"])))


async def checkpoint_at_view(request: web.Request) -> web.Response:
    raw = request.match_info["size"]
    row = await TQ.checkpoint_at(request.app[T.pool_key], int(raw)) \
        if raw.isdigit() and len(raw) <= 18 else None
    if row is None:
        raise HubError(404, "unknown_tree_size", f"this hub signed no checkpoint of size {raw}")
    return _text(bytes(row["note"]), cache="public, max-age=31536000, immutable")


async def key_view(request: web.Request) -> web.Response:
    return _text((request.app[signer_key].verifier.text() + "\n").encode(),
                 cache="public, max-age=3600")


def _json_error(exc: HubError) -> web.Response:
    """Proofs are read by programs: their errors are JSON whatever the Accept header."""
    return web.json_response({"error": {"code": exc.code, "message": exc.message,
                                        **exc.extra}}, status=exc.status,
                             headers={"Cache-Control": "no-store"})


async def inclusion_view(request: web.Request) -> web.Response:
    try:
        body = await inclusion(request.app[T.pool_key], request)
    except HubError as exc:
        return _json_error(exc)
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def consistency_view(request: web.Request) -> web.Response:
    try:
        body = await consistency(request.app[T.pool_key], request)
    except HubError as exc:
        return _json_error(exc)
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def tile_view(request: web.Request) -> web.Response:
    path = "tile/" + request.match_info["rest"]
    data = await tile(request.app[T.pool_key], path)
    return web.Response(body=data, content_type="application/octet-stream",
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(tlog_ctx)
    app.router.add_get("/tlog/checkpoint", checkpoint_view, name="tlog_checkpoint")
    app.router.add_get("/tlog/checkpoints/{size}", checkpoint_at_view,
                       name="tlog_checkpoint_at")
    app.router.add_get("/tlog/key", key_view, name="tlog_key")
    app.router.add_get("/tlog/proof/inclusion", inclusion_view, name="tlog_inclusion")
    app.router.add_get("/tlog/proof/consistency", consistency_view, name="tlog_consistency")
    app.router.add_get("/tlog/tile/{rest:.+}", tile_view, name="tlog_tile")
    WT.setup(app)
