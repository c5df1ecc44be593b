from __future__ import annotations

import asyncpg
import pytest

from node.app import MIGRATIONS
from service import db


async def test_health_and_ready(node_client):
    r = await node_client.get("/healthz")
    assert r.status == 200 and (await r.json())["status"] == "ok"
    r = await node_client.get("/readyz")
    assert r.status == 200 and (await r.json())["status"] == "ready"


async def test_metrics_exposes_session_counts(node_client):
    r = await node_client.get("/metrics")
    text = await r.text()
    assert r.status == 200
    assert 'wb_sessions{status="pending"} 0.0' in text
    assert 'wb_sessions{status="active"} 0.0' in text


async def test_unknown_page_is_404_html_and_json(node_client):
    r = await node_client.get("/no-such-page")
    assert r.status == 404
    assert "text/html" in r.headers["Content-Type"]
    r = await node_client.get("/api/no-such-thing")
    assert r.status == 404
    assert (await r.json())["error"]["code"] == "not_found"


async def test_security_headers(node_client):
    r = await node_client.get("/healthz")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


async def test_migrations_idempotent_and_newer_db_refused(pg):
    url = await pg.new_database()
    try:
        first = await db.migrate_url(url, "node", MIGRATIONS)
        assert first and first[0].startswith("0001_")
        assert await db.migrate_url(url, "node", MIGRATIONS) == []
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                "INSERT INTO schema_migrations (component, version, name, checksum) "
                "VALUES ('node', 9999, 'future', 'x')")
            tables_before = await conn.fetchval(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema='public'")
        finally:
            await conn.close()
        with pytest.raises(db.DatabaseError, match="newer than the code"):
            await db.migrate_url(url, "node", MIGRATIONS)
        conn = await asyncpg.connect(url)
        try:
            assert tables_before == await conn.fetchval(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema='public'")
        finally:
            await conn.close()
    finally:
        await pg.drop(url)


async def test_change_tracking_trigger_bumps_revision(node_db_url):
    conn = await asyncpg.connect(node_db_url)
    try:
        await conn.execute("INSERT INTO users (id, username) VALUES ('U1', 'ann')")
        r1 = await conn.fetchrow("SELECT revision, change_seq FROM users WHERE id='U1'")
        await conn.execute("UPDATE users SET published = true WHERE id='U1'")
        r2 = await conn.fetchrow("SELECT revision, change_seq FROM users WHERE id='U1'")
        assert (r2["revision"], r2["change_seq"]) == (r1["revision"], r1["change_seq"])
        await conn.execute("UPDATE users SET bio = 'hello' WHERE id='U1'")
        r3 = await conn.fetchrow("SELECT revision, change_seq FROM users WHERE id='U1'")
        assert r3["revision"] == r1["revision"] + 1
        assert r3["change_seq"] > r1["change_seq"]
    finally:
        await conn.close()


async def test_csrf_token_is_stable_per_client_and_required(node_client):
    r = await node_client.get("/api/csrf")
    token = (await r.json())["csrf_token"]
    r = await node_client.get("/api/csrf")
    assert (await r.json())["csrf_token"] == token
    r = await node_client.post("/healthz", headers={"Accept": "application/json"})
    assert r.status == 403
    assert (await r.json())["error"]["code"] == "csrf_failed"


async def test_malformed_multipart_is_a_clear_400_not_a_500(node_client):
    from node import typedefs as T
    from tests.factories import create_user, sign_in

    uid = await create_user(node_client.server.app[T.pool_key], "mia")
    token = await sign_in(node_client, uid)
    for path in ("/api/requests", "/requests"):
        r = await node_client.post(path, data=b"x",
                                   headers={"Content-Type": "multipart/form-data",
                                            "X-CSRF-Token": token,
                                            "Accept": "application/json"})
        assert r.status == 400, (path, await r.text())
        assert (await r.json())["error"]["code"] == "malformed_body"


async def test_nul_byte_in_search_is_a_clear_400(node_client):
    from node import typedefs as T
    from tests.factories import create_user, sign_in

    uid = await create_user(node_client.server.app[T.pool_key], "nia")
    await sign_in(node_client, uid)
    r = await node_client.get("/api/requests?search=%00")
    assert r.status == 400, await r.text()
    assert (await r.json())["error"]["code"] == "invalid_characters"
