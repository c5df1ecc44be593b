"""Sync control center, /sync/public and the per-peer scheduled jobs."""

from __future__ import annotations

import asyncio

from node import typedefs as T
from node.scheduler import jobs_key
from node.sync import scheduling
from tests.factories import create_user, sign_in


async def _admin(client) -> str:
    pool = client.server.app[T.pool_key]
    admin = await create_user(pool, "root", admin=True)
    return await sign_in(client, admin)


async def _wait(predicate, limit: float = 10.0):
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        value = await predicate()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_members_are_refused_and_forms_need_csrf(node_client, node_pool):
    member = await create_user(node_pool, "mia")
    await sign_in(node_client, member)
    r = await node_client.get("/admin/sync-control", headers={"Accept": "application/json"})
    assert r.status == 403
    assert (await r.json())["error"]["code"] == "admin_only"
    r = await node_client.get("/sync/public", headers={"Accept": "application/json"})
    assert r.status == 403


async def test_add_edit_remove_peer_reconciles_jobs_and_masks_tokens(node_client, node_pool,
                                                                     tmp_path):
    app = node_client.server.app
    csrf = await _admin(node_client)
    form = {"name": "hubby", "kind": "hub", "location": "http://127.0.0.1:9/",
            "token": "secret-token-value-123", "pins": "0123456789abcdef"}
    r = await node_client.post("/admin/sync-control/peers", data=form, allow_redirects=False)
    assert r.status == 403  # no CSRF token: nothing happens
    assert await node_pool.fetchval("SELECT count(*) FROM sync_peers") == 0
    r = await node_client.post("/admin/sync-control/peers", data={**form, "csrf_token": csrf},
                               allow_redirects=False)
    assert r.status == 303
    assert {"push:hubby", "pull:hubby"} <= set(app[jobs_key])
    page = await (await node_client.get("/admin/sync-control")).text()
    assert "secret-token-value-123" not in page and "secr…" in page
    assert "0123456789abcdef:0123456789abcdef" in page
    body = await (await node_client.get("/admin/sync-control",
                                        headers={"Accept": "application/json"})).json()
    assert body["peers"][0]["token"] == "secr…" and len(body["public_key"]) == 44
    # removing the token removes the push job (nothing could authenticate the push)
    r = await node_client.post("/admin/sync-control/peers/hubby/edit",
                               data={"csrf_token": csrf, "clear_token": "1",
                                     "location": "http://127.0.0.1:10"},
                               allow_redirects=False)
    assert r.status == 303
    row = await node_pool.fetchrow("SELECT * FROM sync_peers WHERE name = 'hubby'")
    assert row["token"] is None and row["location"] == "http://127.0.0.1:10"
    assert "push:hubby" not in app[jobs_key] and "pull:hubby" in app[jobs_key]
    r = await node_client.post("/admin/sync-control/peers/hubby/edit",
                               data={"csrf_token": csrf, "location": "ftp://nope"})
    assert r.status == 400
    r = await node_client.post("/admin/sync-control/peers/hubby/remove",
                               data={"csrf_token": csrf}, allow_redirects=False)
    assert r.status == 303
    assert not any(j.endswith(":hubby") for j in app[jobs_key])
    assert await node_pool.fetchval("SELECT count(*) FROM sync_trusted_keys "
                                    "WHERE source = 'pinned'") == 0


async def test_run_now_button_runs_the_push_job_in_the_background(node_client, node_pool,
                                                                  tmp_path):
    csrf = await _admin(node_client)
    outdir = tmp_path / "exchange"
    await node_client.post("/admin/sync-control/peers",
                           data={"csrf_token": csrf, "name": "shared", "kind": "dir",
                                 "location": str(outdir)})
    ann = await create_user(node_pool, "ann", scope="public")
    await node_pool.execute("INSERT INTO requests (id, title, description, created_by, "
                            "sync_scope) VALUES ('R1', 'Ladder', 'need one', $1, 'public')", ann)
    r = await node_client.post("/admin/sync-control/jobs/push:shared/run",
                               data={"csrf_token": csrf}, allow_redirects=False)
    assert r.status == 303

    async def done():
        return await node_pool.fetchval(
            "SELECT last_result FROM scheduler_jobs WHERE id = 'push:shared' "
            "AND running_since IS NULL")
    assert (await _wait(done)).startswith("ok: pushed 1 bundle,")
    assert len(list(outdir.glob("*.cbor"))) == 1
    page = await (await node_client.get("/admin/sync-control")).text()
    assert "ok: pushed 1 bundle," in page
    history = await node_pool.fetch("SELECT kind, result FROM sync_jobs ORDER BY id")
    assert [(h["kind"], h["result"]) for h in history] == [("export", "ok"), ("push", "ok")]
    # pause is kept and stops scheduled (not forced) runs
    await node_client.post("/admin/sync-control/jobs/push:shared/pause", data={"csrf_token": csrf})
    from node.scheduler import run_job
    app = node_client.server.app
    assert await run_job(app, app[jobs_key]["push:shared"]) == "skipped: paused"
    r = await node_client.post("/admin/sync-control/jobs/push:nobody/run",
                               data={"csrf_token": csrf})
    assert r.status == 404


async def test_push_changes_exports_and_pushes_only_when_something_changed(node_client,
                                                                           node_pool, tmp_path):
    app = node_client.server.app
    csrf = await _admin(node_client)
    outdir = tmp_path / "out"
    await node_client.post("/admin/sync-control/peers",
                           data={"csrf_token": csrf, "name": "d", "kind": "dir",
                                 "location": str(outdir)})
    # the admin (a private member) is examined by a no-op export; nothing is pushed
    assert await scheduling.push_changes(app) == "nothing to push"
    assert await node_pool.fetchval("SELECT sequence FROM node_sync_state") == 0
    assert await node_pool.fetchval("SELECT count(*) FROM sync_jobs WHERE kind = 'push'") == 0
    ann = await create_user(node_pool, "ann", scope="public")
    assert await scheduling.push_changes(app) == "d: ok: pushed 1 bundle, " + str(
        (outdir / next(p.name for p in outdir.iterdir())).stat().st_size) + " bytes"
    await node_pool.execute("UPDATE users SET bio = 'hello' WHERE id = $1", ann)
    assert (await scheduling.push_changes(app)).startswith("d: ok: pushed 1")
    assert len(list(outdir.glob("*.cbor"))) == 2
    assert await scheduling.push_changes(app) == "nothing to push"


async def test_public_preview_shows_next_export_and_verifies_manifest(node_client, node_pool):
    csrf = await _admin(node_client)
    del csrf
    ann = await create_user(node_pool, "ann", scope="public")
    await node_pool.execute("INSERT INTO requests (id, title, description, created_by, "
                            "sync_scope) VALUES ('R1', 'Public ladder', 'x', $1, 'public')", ann)
    await node_pool.execute("INSERT INTO requests (id, title, description, created_by) "
                            "VALUES ('R2', 'Private diary', 'y', $1)", ann)
    r = await node_client.get("/sync/public", headers={"Accept": "application/json"})
    body = await r.json()
    assert body["next"]["counts"] == {"user": 1, "request": 1}
    assert sorted(body["paths"]) == ["requests/R1.sync.txt", f"users/{ann}.sync.txt"]
    assert body["manifest"] is None
    page = await (await node_client.get("/sync/public")).text()
    assert "Public ladder" in page and "Private diary" not in page
    # preview changes nothing; a real export then shows a verified manifest
    assert await node_pool.fetchval("SELECT sequence FROM node_sync_state") == 0
    await scheduling.export_if_changed(node_client.server.app)
    body = await (await node_client.get("/sync/public",
                                        headers={"Accept": "application/json"})).json()
    assert body["next"]["records"] == 0
    assert body["manifest"]["sequence"] == 1 and body["manifest"]["verified"] is True
    assert "signature verifies" in await (await node_client.get("/sync/public")).text()


async def test_own_comment_follows_a_remote_request_that_disappears(nodes):
    from node.sync import peers as P
    from node.sync.service import run_export, run_import

    a, b = nodes
    ann = await create_user(a.pool, "ann", scope="public")
    await a.pool.execute("INSERT INTO requests (id, title, description, created_by, "
                         "sync_scope) VALUES ('R1', 'Ladder', 'x', $1, 'public')", ann)
    await P.pin_key(b.pool, a.origin)
    await run_import(b.pool, b.config, [(await run_export(a.pool, a.config)).bundle])
    bob = await create_user(b.pool, "bob", scope="public")
    await b.pool.execute("INSERT INTO comments (id, request_id, created_by, body, sync_scope) "
                         "VALUES ('C1', $1, $2, 'I have one', 'public')", f"{a.origin}.R1", bob)
    first = await run_export(b.pool, b.config)
    assert first.counts == {"user": 1, "comment": 1}
    await a.pool.execute("UPDATE requests SET sync_scope = 'private' WHERE id = 'R1'")
    await run_import(b.pool, b.config, [(await run_export(a.pool, a.config)).bundle])
    second = await run_export(b.pool, b.config)
    assert second.counts == {"comment_tombstones": 1}
    # and it comes back when the request does
    await a.pool.execute("UPDATE requests SET sync_scope = 'public' WHERE id = 'R1'")
    await run_import(b.pool, b.config, [(await run_export(a.pool, a.config)).bundle])
    third = await run_export(b.pool, b.config)
    assert third.counts == {"comment": 1}
    assert (await run_export(b.pool, b.config)).sequence is None


async def test_form_errors_stay_on_the_control_page(node_client, node_pool):
    """A bad peer name, a bad location or a missing 'rotate' re-render the page with the
    message next to that form and the values typed (never a token), and change nothing."""
    csrf = await _admin(node_client)
    r = await node_client.post("/admin/sync-control/peers",
                               data={"csrf_token": csrf, "name": "bad name!", "kind": "dir",
                                     "location": "/tmp/x", "token": "s3cret-token"})
    assert r.status == 400
    page = await r.text()
    assert "<h1>Sync control</h1>" in page and 'id="err-add-peer"' in page
    assert "letters, digits" in page and 'value="bad name!"' in page
    assert 'id="add-peer" open' in page and "s3cret-token" not in page
    assert await node_pool.fetchval("SELECT count(*) FROM sync_peers") == 0
    r = await node_client.post("/admin/sync-control/rotate-key",
                               data={"csrf_token": csrf, "confirm": "yes"})
    assert r.status == 400 and 'id="err-rotate"' in await r.text()
    r = await node_client.post("/admin/sync-control/peers",
                               data={"csrf_token": csrf, "name": "bad"},
                               headers={"Accept": "application/json"})
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_peer"
