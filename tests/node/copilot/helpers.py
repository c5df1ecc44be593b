"""Shared setup of the copilot tests: an enabled copilot and a small community."""

from __future__ import annotations

from node import typedefs as T
from node.copilot import service as S
from service.ids import ulid
from tests.factories import create_user


async def enable(pool, admin_id: str | None = None) -> None:
    await pool.execute("UPDATE copilot_settings SET enabled = true, updated_by = $1", admin_id)


async def add_request(pool, user_id: str, title: str, description: str, *,
                      status: str = "open", scope: str = "private", age_days: int = 0) -> str:
    rid = ulid()
    await pool.execute(
        "INSERT INTO requests (id, title, description, created_by, status, sync_scope, "
        "created_at, completed_at) VALUES ($1, $2, $3, $4, $5, $6, "
        "now() - make_interval(days => $7), CASE WHEN $5 = 'completed' THEN now() END)",
        rid, title, description, user_id, status, scope, age_days)
    return rid


async def add_comment(pool, request_id: str, user_id: str, body: str = "I can help") -> str:
    cid = ulid()
    await pool.execute("INSERT INTO comments (id, request_id, created_by, body) "
                       "VALUES ($1, $2, $3, $4)", cid, request_id, user_id, body)
    return cid


async def community(pool):
    """admin -> ann -> {bob, cat}; bob -> dan; eve invited by admin separately; far -> dan."""
    ids = {}
    ids["admin"] = await create_user(pool, "admin", admin=True)
    ids["ann"] = await create_user(pool, "ann", invited_by=ids["admin"])
    ids["bob"] = await create_user(pool, "bob", invited_by=ids["ann"])
    ids["cat"] = await create_user(pool, "cat", invited_by=ids["ann"])
    ids["dan"] = await create_user(pool, "dan", invited_by=ids["bob"])
    ids["far"] = await create_user(pool, "far", invited_by=ids["dan"])
    return ids


def ctx_of(app, admin_id, via="web"):
    return S.ToolContext(app[T.pool_key], app[T.config_key], admin_id, via, "127.0.0.1",
                         app[T.extras_key]["copilot_limiter"])


def gateway_settings(gateway) -> dict[str, str]:
    """Settings that point the copilot at the local fake gateway."""
    return {"COPILOT_GATEWAY_URL": gateway.url, "DEDALUS_API_KEY": "env-key",
            "COPILOT_MODEL": "test-model", "COPILOT_RATE_PER_MINUTE": "5"}


async def signed_in_admin(client):
    """A small community whose admin enabled the copilot and is signed in on ``client``;
    returns (pool, users, csrf token)."""
    from node import typedefs as T
    from tests.factories import sign_in

    pool = client.server.app[T.pool_key]
    u = await community(pool)
    await enable(pool, u["admin"])
    csrf = await sign_in(client, u["admin"])
    return pool, u, csrf
