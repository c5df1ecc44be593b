"""A small, realistic community for the browser tests and the screenshot script: an admin,
members, a new member and a new device waiting for approval, requests with comments, a
directory peer with its sync jobs, and an invite with a large photo."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from node import typedefs as T
from service.ids import ulid
from tests.factories import create_session, create_user


def png(width: int, height: int, rgb: tuple[int, int, int] = (120, 170, 220)) -> bytes:
    """A plain PNG of the given size (a 'photo' too wide for any phone)."""
    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                                8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


@dataclass
class Community:
    admin_id: str
    member_id: str
    request_ids: list[str]
    invite_token: str
    device_request_id: str
    newcomer_request_id: str
    newcomer_id: str


async def _login_request(pool: asyncpg.Pool, user_id: str, user_agent: str, ip: str) -> str:
    cookie = await create_session(pool, user_id, status="pending")
    from node.web import session_hash

    # the factory gave the half-authenticated session its sign-in request: describe it
    return await pool.fetchval(
        "UPDATE auth_requests SET code = '123456', expires_at = now() + interval '10 minutes',"
        " ip = $2, user_agent = $3 WHERE session_hash = $1 RETURNING id",
        session_hash(cookie), ip, user_agent)


async def seed(app, peer_dir: Path) -> Community:
    from node.auth import service as svc
    from node.sync import peers as P
    from node.sync.scheduling import reconcile

    pool, config = app[T.pool_key], app[T.config_key]
    admin = await create_user(pool, "ada", admin=True, scope="public")
    bob = await create_user(pool, "bob", invited_by=admin, scope="public")
    cem = await create_user(pool, "cem", invited_by=admin)
    await pool.execute("UPDATE users SET created_at = now() - interval '40 days'")
    for member in (admin, bob, cem):
        await create_session(pool, member)  # each has signed in before
    rids = []
    for title, who, scope in (("Borrow a ladder for Saturday", bob, "public"),
                              ("Help moving a sofa up two floors", cem, "private"),
                              ("Soup for a neighbour with the flu", bob, "private")):
        rid = ulid()
        await pool.execute(
            "INSERT INTO requests (id, title, description, created_by, sync_scope) "
            "VALUES ($1, $2, $3, $4, $5)", rid, title,
            "A longer description of what is needed, when, and where to meet.", who, scope)
        rids.append(rid)
    await pool.execute("INSERT INTO comments (id, request_id, created_by, body) "
                       "VALUES ($1, $2, $3, 'I have one in the shed.')", ulid(), rids[0], cem)
    # a new device of bob, and a brand-new member whose invite needs an admin
    device = await _login_request(
        pool, bob, "Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0",
        "203.0.113.7")
    dan = ulid()
    await pool.execute(
        "INSERT INTO users (id, username, display_name, invited_by) VALUES ($1, 'dan', 'Dan', $2)",
        dan, bob)
    newcomer = await _login_request(
        pool, dan, "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "198.51.100.23")
    # what dan's waiting device wrote is bound to its sign-in request (issue 14)
    await pool.execute("INSERT INTO requests (id, title, description, created_by, status, "
                       "auth_request_id) VALUES ($1, 'Lift to the clinic on Monday', "
                       "'Morning if possible.', $2, 'pending', $3)", ulid(), dan, newcomer)
    invite = await svc.create_invite(pool, config, {"max_uses": 1, "gratitude": "Thanks for "
                                                    "the soup last winter!"},
                                     created_by=admin, ip=None, photo=png(1600, 300))
    peer_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (test setup, once)
    await P.add_peer(pool, "shared", "dir", str(peer_dir))
    await reconcile(app)
    return Community(admin, bob, rids, invite.token, device, newcomer, dan)


async def browser_session(app, user_id: str, status: str = "active") -> str:
    return await create_session(app[T.pool_key], user_id, status=status)
