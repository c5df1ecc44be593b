"""`wb requests` and `wb comments` against a real database, audited like the pages."""

from __future__ import annotations

import asyncio

import asyncpg
from click.testing import CliRunner

from ops.cli import root
from service.ids import ulid


async def _wb(args, db_url, tmp_path):
    env = {"WB_DATABASE_URL": db_url, "WB_DATA_DIR": str(tmp_path / "node"),
           "SESSION_SECRET": "x"}
    return await asyncio.to_thread(CliRunner().invoke, root, args, env=env)


async def test_cli_list_complete_reopen_and_comment_moderation(node_db_url, tmp_path):
    conn = await asyncpg.connect(node_db_url)
    try:
        uid, rid, cid = ulid(), ulid(), ulid()
        await conn.execute("INSERT INTO users (id, username) VALUES ($1, 'ann')", uid)
        await conn.execute("INSERT INTO requests (id, title, description, created_by) "
                           "VALUES ($1, 'Ladder', 'need one', $2)", rid, uid)
        await conn.execute("INSERT INTO comments (id, request_id, created_by, body) "
                           "VALUES ($1, $2, $3, 'spam')", cid, rid, uid)

        r = await _wb(["requests", "list", "--status", "open"], node_db_url, tmp_path)
        assert r.exit_code == 0, r.output
        assert rid in r.output and "@ann" in r.output and "Ladder" in r.output

        r = await _wb(["requests", "complete", rid], node_db_url, tmp_path)
        assert r.exit_code == 0, r.output
        assert await conn.fetchval("SELECT status FROM requests WHERE id=$1", rid) == "completed"
        r = await _wb(["requests", "complete", rid], node_db_url, tmp_path)
        assert r.exit_code == 1 and "already completed" in r.output

        r = await _wb(["requests", "reopen", rid], node_db_url, tmp_path)
        assert r.exit_code == 0, r.output
        assert await conn.fetchval("SELECT status FROM requests WHERE id=$1", rid) == "open"

        r = await _wb(["comments", "delete", cid], node_db_url, tmp_path)
        assert r.exit_code == 0, r.output
        assert await conn.fetchval("SELECT deleted_at FROM comments WHERE id=$1", cid)
        r = await _wb(["comments", "restore", cid], node_db_url, tmp_path)
        assert r.exit_code == 0, r.output
        assert await conn.fetchval("SELECT deleted_at FROM comments WHERE id=$1", cid) is None

        r = await _wb(["comments", "delete", "NOSUCH"], node_db_url, tmp_path)
        assert r.exit_code == 1 and "No such comment" in r.output

        rows = await conn.fetch("SELECT action, actor_id, details->>'via' AS via "
                                "FROM audit_log ORDER BY id")
        assert [(x["action"], x["actor_id"], x["via"]) for x in rows] == [
            ("request.complete", None, "cli"), ("request.reopen", None, "cli"),
            ("comment.delete", None, "cli"), ("comment.restore", None, "cli")]
    finally:
        await conn.close()
