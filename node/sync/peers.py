"""Peers and trusted keys, kept in PostgreSQL."""

from __future__ import annotations

from typing import Any

import asyncpg

from node.sync import queries_peers as QP
from node.sync.importer import SyncError
from protocol.records import KEY_ID_RE
from service.ids import token_hash, ulid


def mask(token: str | None) -> str | None:
    """Never print a token in full."""
    if not token:
        return None
    return token[:4] + "…" if len(token) > 8 else "…"


async def pin_key(conn: Any, origin: str, key_id: str | None = None, *,
                  peer: str | None = None, actor: str = "cli") -> None:
    """Trust ``key_id`` (default: the origin's own first key) for ``origin``."""
    key_id = key_id or origin
    for value in (origin, key_id):
        if not KEY_ID_RE.fullmatch(value):
            raise SyncError("invalid_key_id", f"{value!r} is not a 16-hex key id")
    from node.sync.revocation import refuse_if_revoked

    await refuse_if_revoked(conn, origin, key_id)
    await QP.pin_key(conn, origin, key_id, peer, actor)


def parse_pin(text: str) -> tuple[str, str]:
    """``KEYID`` or ``ORIGIN:KEYID``."""
    origin, _, kid = text.partition(":")
    return origin, kid or origin


async def add_peer(pool: asyncpg.Pool, name: str, kind: str, location: str, *,
                   token: str | None = None, inbox_token: str | None = None,
                   api: str = "v2", pins: list[str] | None = None,
                   schedule: str | None = None) -> str:
    if kind not in ("dir", "hub"):
        raise SyncError("invalid_peer", "kind is dir or hub")
    if kind == "hub" and not location.startswith(("http://", "https://")):
        raise SyncError("invalid_peer", "a hub peer needs an http(s) URL")
    peer_id = ulid()
    async with pool.acquire() as conn, conn.transaction():
        try:
            await QP.insert_sync_peers(conn, peer_id, name, kind,
                                       location.rstrip("/") if kind == "hub" else location, api,
                                       token, token_hash(inbox_token) if inbox_token else None,
                                       schedule)
        except asyncpg.UniqueViolationError:
            raise SyncError("peer_exists", f"a peer named {name!r} already exists") from None
        for pin in pins or []:
            origin, kid = parse_pin(pin)
            await pin_key(conn, origin, kid, peer=name)
    return peer_id


async def get_peer(pool: Any, name: str) -> asyncpg.Record:
    row = await QP.select_sync_peers_by_name(pool, name)
    if row is None:
        raise SyncError("unknown_peer", f"no peer named {name!r} (see wb sync peers list)")
    return row


async def list_peers(pool: Any) -> list[asyncpg.Record]:
    return await QP.select_sync_peers(pool)


async def remove_peer(pool: asyncpg.Pool, name: str) -> bool:
    async with pool.acquire() as conn, conn.transaction():
        await QP.unpin_all_keys(conn, name)
        status = await QP.delete_sync_peers_by_name(conn, name)
    return status != "DELETE 0"


async def peer_keys(pool: Any, name: str) -> list[asyncpg.Record]:
    return await QP.select_sync_trusted_keys_by_peer(pool, name)


async def peer_by_inbox_token(pool: Any, token: str) -> asyncpg.Record | None:
    return await QP.select_sync_peers_by_token_hash(pool, token_hash(token))


def peer_public(row: Any, keys: list[Any] | None = None) -> dict[str, Any]:
    out = {"name": row["name"], "kind": row["kind"], "location": row["location"],
           "api": row["api"], "token": mask(row["token"]),
           "inbox_token": "set" if row["token_hash"] else None,
           "cursor": row["cursor"], "push_sequence": row["push_sequence"],
           "last_success_at": row["last_success_at"], "last_failure_at": row["last_failure_at"],
           "last_error": row["last_error"], "schedule": row["schedule"]}
    if keys is not None:
        out["pinned_keys"] = [f"{k['origin']}:{k['key_id']}" for k in keys]
    return out


async def record_outcome(pool: Any, name: str, error: str | None, **cursors: int) -> None:
    sets = ["last_success_at = now(), last_error = NULL" if error is None else
            "last_failure_at = now(), last_error = $2"]
    args: list[Any] = [name, error]
    for col, value in cursors.items():
        assert col in ("cursor", "push_sequence")
        args.append(value)
        sets.append(f"{col} = GREATEST({col}, ${len(args)})")
    await QP.update_peer_outcome(pool, sets, args)


async def update_peer(pool: asyncpg.Pool, name: str, *, location: str | None = None,
                      token: str | None = None, inbox_token: str | None = None,
                      api: str | None = None, pins: list[str] | None = None,
                      clear_token: bool = False, actor: str = "admin") -> None:
    """Change a peer; ``None`` keeps a value (tokens are write-only: give a new one)."""
    peer = await get_peer(pool, name)
    if api is not None and api not in ("v2", "v1"):
        raise SyncError("invalid_peer", "api is v2 or v1")
    if location is not None:
        location = location.strip()
        if peer["kind"] == "hub":
            if not location.startswith(("http://", "https://")):
                raise SyncError("invalid_peer", "a hub peer needs an http(s) URL")
            location = location.rstrip("/")
        if not location:
            raise SyncError("invalid_peer", "the location may not be empty")
    async with pool.acquire() as conn, conn.transaction():
        await QP.update_sync_peers_set_location_by_name(
            conn, name, location, api, token or None,
            token_hash(inbox_token) if inbox_token else None, clear_token)
        for pin in pins or []:
            origin, kid = parse_pin(pin)
            await pin_key(conn, origin, kid, peer=name, actor=actor)


async def unpin_key(pool: Any, name: str, origin: str, key_id: str) -> bool:
    status = await QP.unpin_key(pool, name, origin, key_id)
    return status != "DELETE 0"
