"""Test helpers that put members and sessions straight into a node database.

Feature tests use these to get a signed-in client without walking through the whole
login flow each time (the auth tests walk through it for real).
"""

from __future__ import annotations

import secrets

import asyncpg

from node.web import SESSION_COOKIE, session_hash
from service.ids import ulid


async def create_user(pool: asyncpg.Pool, username: str, *, admin: bool = False,
                      scope: str = "private", invited_by: str | None = None,
                      email: str | None = None, share_contact: bool = False) -> str:
    user_id = ulid()
    await pool.execute(
        "INSERT INTO users (id, username, display_name, is_admin, sync_scope, invited_by, "
        "contact_email, share_contact) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        user_id, username, username.title(), admin, scope, invited_by, email, share_contact)
    return user_id


async def create_session(pool: asyncpg.Pool, user_id: str, *, status: str = "active") -> str:
    """Insert a session row; return the cookie value."""
    cookie = secrets.token_urlsafe(32)
    await pool.execute(
        "INSERT INTO sessions (id_hash, user_id, status, expires_at) "
        "VALUES ($1, $2, $3, now() + interval '1 day')",
        session_hash(cookie), user_id, status)
    if status == "pending":  # a half-authenticated session always has its sign-in request
        await pool.execute(
            "INSERT INTO auth_requests (id, user_id, session_hash, code, expires_at) "
            "VALUES ($1, $2, $3, '000000', now() + interval '1 day')",
            ulid(), user_id, session_hash(cookie))
    return cookie


async def sign_in(client, user_id: str, *, status: str = "active") -> str:
    """Give an aiohttp test client a session cookie for ``user_id``; return its CSRF token."""
    from node import typedefs as T

    pool = client.server.app[T.pool_key]
    cookie = await create_session(pool, user_id, status=status)
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie})
    r = await client.get("/api/csrf")
    assert r.status == 200, await r.text()
    return (await r.json())["csrf_token"]
