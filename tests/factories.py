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


class Member:
    """A signed-in test client of the node app: posts carry its CSRF token."""

    def __init__(self, client, user_id: str, csrf: str, username: str):
        self.client = client
        self.user_id = user_id
        self.csrf = csrf
        self.username = username

    async def post(self, path: str, data: dict | None = None, *, json_reply: bool = False,
                   **kw):
        headers = {"Accept": "application/json"} if json_reply else {}
        body = dict(data or {})
        body["csrf_token"] = self.csrf
        return await self.client.post(path, data=body, headers=headers,
                                      allow_redirects=False, **kw)

    async def api_post(self, path: str, payload: dict):
        return await self.client.post(path, json=payload, allow_redirects=False,
                                      headers={"X-CSRF-Token": self.csrf,
                                               "Accept": "application/json"})

    async def get_json(self, path: str):
        return await self.client.get(path, headers={"Accept": "application/json"},
                                     allow_redirects=False)


def member_maker(aiohttp_client, node_client):
    """make(username, admin=False, status='active', roles=()): a signed-in Member of the
    same app (the first on ``node_client`` itself, the others on clients of their own)."""
    from node import typedefs as T

    pool = node_client.server.app[T.pool_key]

    async def make(username: str, *, admin: bool = False, status: str = "active",
                   roles: tuple[str, ...] = ()) -> Member:
        client = node_client if not getattr(make, "used", False) else \
            await aiohttp_client(node_client.server)
        make.used = True
        user_id = await create_user(pool, username, admin=admin)
        for role in roles:  # node.profiles.service.ROLES, e.g. "reviewer"
            await pool.execute("INSERT INTO member_roles (user_id, role) VALUES ($1, $2)",
                               user_id, role)
        csrf = await sign_in(client, user_id, status=status)
        return Member(client, user_id, csrf, username)

    return make
