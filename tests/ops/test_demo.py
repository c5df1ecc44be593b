"""`wb demo`'s sample data goes through the node's services: what a member sees on the
pages, and it syncs (public scope) like data made by hand. Running it twice adds nothing."""

from __future__ import annotations

import ast
from pathlib import Path

import asyncpg

from node.app import MIGRATIONS
from ops import demo
from service import db


async def _state(db_url: str) -> tuple[list[asyncpg.Record], list[asyncpg.Record], int]:
    conn = await asyncpg.connect(db_url)
    try:
        users = await conn.fetch("SELECT username, display_name, is_admin, sync_scope, "
                                 "invited_by, revision FROM users ORDER BY username")
        requests = await conn.fetch("SELECT title, status, sync_scope FROM requests "
                                    "ORDER BY title")
        audits = await conn.fetchval(
            "SELECT count(*) FROM audit_log WHERE action IN ('user.register', 'invite.create')")
        return users, requests, audits
    finally:
        await conn.close()


async def test_seed_makes_members_and_public_requests_through_the_services(
        node_db_url: str, tmp_path: Path) -> None:
    await db.migrate_url(node_db_url, "node", MIGRATIONS)
    admin = await demo.seed_sample(node_db_url, "alpha", tmp_path)
    assert admin == "alice"
    users, requests, audits = await _state(node_db_url)
    assert [(u["username"], u["is_admin"], u["sync_scope"]) for u in users] == [
        ("alice", True, "public"), ("arjun", False, "public")]
    alice = next(u for u in users if u["username"] == "alice")
    # arjun joined through an invite of alice's, as a real member would: audited, invited_by
    assert users[1]["display_name"] == "Arjun"
    assert users[1]["invited_by"] is not None and alice["display_name"] == "Alice"
    assert audits == 2
    assert [(r["title"], r["status"], r["sync_scope"]) for r in requests] == [
        ("Borrow a ladder", "open", "public"), ("Ride to the clinic", "open", "public")]

    # a second `wb demo` on the same databases: same people, same requests, nothing new
    assert await demo.seed_sample(node_db_url, "alpha", tmp_path) == "alice"
    again = await _state(node_db_url)
    assert [(u["username"], u["sync_scope"]) for u in again[0]] == [
        (u["username"], u["sync_scope"]) for u in users]
    assert [r["title"] for r in again[1]] == [r["title"] for r in requests]
    assert again[2] == audits


def test_demo_writes_no_sql_of_its_own() -> None:
    """Sample data goes through node services, never raw SQL into node tables."""
    tree = ast.parse(Path(demo.__file__).read_text())
    calls = [n.func.attr for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr in ("execute", "fetch", "fetchval", "fetchrow", "executemany")]
    assert calls == []
