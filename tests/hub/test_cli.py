from __future__ import annotations

import asyncpg
from click.testing import CliRunner

from ops.cli import root
from tests.hub.helpers import Origin, seed


def run(args, db_url, tmp_path):
    env = {"WB_HUB_DATABASE_URL": db_url, "WB_HUB_DATA_DIR": str(tmp_path)}
    return CliRunner().invoke(root, ["hub", *args], env=env, catch_exceptions=False)


async def test_peers_keys_and_tokens(hub_db_url, tmp_path):
    import asyncio

    o = Origin(seed(1))

    def cli(*args):
        return run(list(args), hub_db_url, tmp_path)

    def go():
        r = cli("init-db")
        assert r.exit_code == 0
        r = cli("peers", "add", "alpha", "--token", "t" * 24, "--public-key", o.public_b64)
        assert r.exit_code == 0, r.output
        assert o.origin in r.output
        r = cli("peers", "add", "alpha", "--token", "u" * 24, "--public-key", o.public_b64)
        assert r.exit_code != 0 and "exists" in r.output
        r = cli("peers", "add", "beta", "--kind", "hub")
        assert r.exit_code == 0 and "token (shown once)" in r.output
        r = cli("peers", "list")
        assert "alpha" in r.output and "beta" in r.output
        r = cli("peers", "show", "alpha")
        assert "kind: node" in r.output
        r = cli("admin-token")
        assert r.exit_code == 0 and len(r.output.strip()) > 30
        r = cli("keys", "approve", "0123456789abcdef")
        assert r.exit_code != 0 and "no pending key" in r.output
        r = cli("subscriptions", "add", "beta", "--inbox-url", "http://127.0.0.1:1/x")
        assert r.exit_code == 0
        r = cli("peers", "remove", "beta")
        assert r.exit_code == 0

    await asyncio.to_thread(go)
    conn = await asyncpg.connect(hub_db_url)
    try:
        row = await conn.fetchrow("SELECT token_hash FROM hub_peers WHERE name = 'alpha'")
        assert row["token_hash"] != "t" * 24 and len(row["token_hash"]) == 64
        assert await conn.fetchval("SELECT count(*) FROM hub_trusted_keys") == 1
        assert await conn.fetchval("SELECT count(*) FROM hub_subscriptions") == 0
        assert await conn.fetchval("SELECT count(*) FROM hub_admin_tokens") == 1
    finally:
        await conn.close()


async def test_migrations_apply_to_empty_database_idempotently(pg):
    from hub.app import MIGRATIONS
    from service import db

    url = await pg.new_database()
    try:
        assert await db.migrate_url(url, "hub", MIGRATIONS) == [
            "0001_hub", "0002_upstreams", "0003_scrub_paths", "0004_retention",
            "0005_key_revocations", "0006_v1_pending_peers", "0007_tlog",
            "0015_tombstones", "0020_tlog_leaf_only", "0021_parent_index_comments_only",
            "0022_log_pending", "0023_ingest_begin", "0024_records_point_into_bundles"]
        assert await db.migrate_url(url, "hub", MIGRATIONS) == []
    finally:
        await pg.drop(url)
