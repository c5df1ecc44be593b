from __future__ import annotations

from node.sync.peers import pin_key
from node.sync.service import run_export, run_import
from tests.factories import create_user


async def test_export_then_import_copies_public_records(nodes):
    a, b = nodes
    ann = await create_user(a.pool, "ann", scope="public")
    await a.pool.execute(
        "INSERT INTO requests (id, title, description, created_by, sync_scope) "
        "VALUES ('R1', 'Need a ladder', 'two metres', $1, 'public')", ann)
    await a.pool.execute(
        "INSERT INTO comments (id, request_id, created_by, body, sync_scope) "
        "VALUES ('C1', 'R1', $1, 'I have one', 'public')", ann)
    res = await run_export(a.pool, a.config)
    assert res.sequence == 1 and res.counts == {"user": 1, "request": 1, "comment": 1}
    await pin_key(b.pool, a.origin)
    [imp] = await run_import(b.pool, b.config, [res.bundle])
    assert imp.result == "applied"
    row = await b.pool.fetchrow("SELECT * FROM requests WHERE origin = $1", a.origin)
    assert row["title"] == "Need a ladder" and row["origin_id"] == "R1"
    assert row["created_by"] == f"{a.origin}.{ann}"
    assert await b.pool.fetchval("SELECT body FROM comments WHERE origin_id='C1'") == "I have one"
