"""/admin/profiles: access, filters, pagination, drill-down, audited actions, last admin."""

from __future__ import annotations

import json

import pytest

from service.ids import ulid
from tests.factories import create_session, create_user, sign_in

JSON = {"Accept": "application/json"}


async def _audit(pool, action):
    return await pool.fetch("SELECT actor_id, target, details FROM audit_log "
                            "WHERE action = $1 ORDER BY id", action)


async def test_members_cannot_reach_admin_pages(node_client, node_pool):
    admin = await create_user(node_pool, "root", admin=True)
    member = await create_user(node_pool, "ann", invited_by=admin)
    csrf = await sign_in(node_client, member)
    for path in ("/admin/profiles", f"/admin/profiles/{admin}"):
        r = await node_client.get(path, headers=JSON)
        assert r.status == 403 and (await r.json())["error"]["code"] == "admin_only"
    r = await node_client.post(f"/admin/profiles/{member}/promote", headers=JSON,
                               data={"csrf_token": csrf})
    assert r.status == 403
    assert not await node_pool.fetchval("SELECT is_admin FROM users WHERE id = $1", member)


async def test_directory_filters_and_pages(node_client, node_pool):
    admin = await create_user(node_pool, "root", admin=True)
    for i in range(30):
        await create_user(node_pool, f"m{i:02d}", scope="public" if i % 2 else "private",
                          invited_by=admin)
    gone = await create_user(node_pool, "gone")
    await node_pool.execute("UPDATE users SET disabled = true WHERE id = $1", gone)
    await sign_in(node_client, admin)
    body = await (await node_client.get("/admin/profiles", headers=JSON)).json()
    assert body["total"] == 32 and body["pages"] == 2 and len(body["accounts"]) == 25
    body2 = await (await node_client.get("/admin/profiles?page=2", headers=JSON)).json()
    assert len(body2["accounts"]) == 7
    body = await (await node_client.get("/admin/profiles?status=disabled", headers=JSON)).json()
    assert [a["username"] for a in body["accounts"]] == ["gone"]
    body = await (await node_client.get("/admin/profiles?scope=public&q=m1",
                                        headers=JSON)).json()
    assert {a["username"] for a in body["accounts"]} == {"m11", "m13", "m15", "m17", "m19"}
    body = await (await node_client.get("/admin/profiles?role=admin", headers=JSON)).json()
    assert [a["username"] for a in body["accounts"]] == ["root"]
    r = await node_client.get("/admin/profiles?status=zombie", headers=JSON)
    assert r.status == 400
    html = await (await node_client.get("/admin/profiles")).text()
    assert "Page 1 of 2" in html and "/admin/profiles?q=&amp;role=" in html


async def test_drill_down_shows_everything(node_client, node_pool):
    admin = await create_user(node_pool, "root", admin=True)
    await node_pool.execute(
        "INSERT INTO invites (id, token_hash, created_by, max_uses, use_count) "
        "VALUES ('INV1', 'h', $1, 3, 1)", admin)
    ann = await create_user(node_pool, "ann", invited_by=admin, email="ann@example.org")
    await node_pool.execute("UPDATE users SET invite_id = 'INV1' WHERE id = $1", ann)
    rid = ulid()
    await node_pool.execute("INSERT INTO requests (id, title, description, status, created_by) "
                            "VALUES ($1, 'Need a ladder', 'd', 'pending', $2)", rid, ann)
    await node_pool.execute("INSERT INTO comments (id, request_id, created_by, body) "
                            "VALUES ($1, $2, $3, 'I have one')", ulid(), rid, ann)
    await create_session(node_pool, ann)
    await node_pool.execute(
        "INSERT INTO invites (id, token_hash, created_by) VALUES ('INV2', 'h2', $1)", ann)
    await sign_in(node_client, admin)
    html = await (await node_client.get(f"/admin/profiles/{ann}")).text()
    for text in ("Need a ladder", "pending", "I have one", "INV1", "@root",
                 "ann@example.org", "0 / 1", "Sessions", "private", "member"):
        assert text in html, text
    assert 'name="csrf_token"' in html and f"/admin/profiles/{ann}/promote" in html
    r = await node_client.get("/admin/profiles/NOPE", headers=JSON)
    assert r.status == 404


async def test_promote_demote_audited(node_client, node_pool):
    admin = await create_user(node_pool, "root", admin=True)
    ann = await create_user(node_pool, "ann", invited_by=admin)
    csrf = await sign_in(node_client, admin)
    r = await node_client.post(f"/admin/profiles/{ann}/promote", data={"csrf_token": csrf},
                               allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith(f"/admin/profiles/{ann}?done=")
    assert await node_pool.fetchval("SELECT is_admin FROM users WHERE id = $1", ann)
    rows = await _audit(node_pool, "profile.promote")
    assert [(r["actor_id"], r["target"]) for r in rows] == [(admin, ann)]
    assert json.loads(rows[0]["details"])["username"] == "ann"
    r = await node_client.post(f"/admin/profiles/{ann}/demote", data={"csrf_token": csrf},
                               headers=JSON)
    assert r.status == 200
    assert not await node_pool.fetchval("SELECT is_admin FROM users WHERE id = $1", ann)
    assert len(await _audit(node_pool, "profile.demote")) == 1
    # a no-op changes nothing and is not audited
    await node_client.post(f"/admin/profiles/{ann}/demote", data={"csrf_token": csrf})
    assert len(await _audit(node_pool, "profile.demote")) == 1


async def test_actions_need_csrf(node_client, node_pool):
    admin = await create_user(node_pool, "root", admin=True)
    ann = await create_user(node_pool, "ann")
    await sign_in(node_client, admin)
    r = await node_client.post(f"/admin/profiles/{ann}/disable", data={})
    assert r.status == 403
    assert not await node_pool.fetchval("SELECT disabled FROM users WHERE id = $1", ann)
    assert await _audit(node_pool, "profile.disable") == []


async def test_disable_signs_out_and_enable_restores(node_client, node_pool):
    admin = await create_user(node_pool, "root", admin=True)
    ann = await create_user(node_pool, "ann", scope="public")
    csrf = await sign_in(node_client, admin)
    ann_cookie = await create_session(node_pool, ann)
    r = await node_client.post(f"/admin/profiles/{ann}/disable", data={"csrf_token": csrf},
                               headers=JSON)
    assert r.status == 200
    assert await node_pool.fetchval(
        "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL", ann) == 0
    assert len(await _audit(node_pool, "profile.disable")) == 1
    from node.web import SESSION_COOKIE

    admin_cookie = node_client.session.cookie_jar.filter_cookies(
        node_client.make_url("/"))[SESSION_COOKIE].value
    node_client.session.cookie_jar.update_cookies({SESSION_COOKIE: ann_cookie})
    r = await node_client.get("/profile", headers=JSON)
    assert r.status == 401  # ann's session no longer signs anyone in
    node_client.session.cookie_jar.update_cookies({SESSION_COOKIE: admin_cookie})
    r = await node_client.post(f"/admin/profiles/{ann}/enable", data={"csrf_token": csrf},
                               headers=JSON)
    assert r.status == 200
    assert not await node_pool.fetchval("SELECT disabled FROM users WHERE id = $1", ann)
    assert len(await _audit(node_pool, "profile.enable")) == 1


async def test_last_admin_cannot_demote_or_disable_themself(node_client, node_pool):
    admin = await create_user(node_pool, "root", admin=True)
    csrf = await sign_in(node_client, admin)
    for action in ("demote", "disable"):
        r = await node_client.post(f"/admin/profiles/{admin}/{action}",
                                   data={"csrf_token": csrf}, headers=JSON)
        assert r.status == 409
        error = (await r.json())["error"]
        assert error["code"] == "last_admin" and "last admin" in error["message"]
    r = await node_client.post(f"/admin/profiles/{admin}/demote", data={"csrf_token": csrf})
    page = await r.text()
    assert r.status == 409 and "last admin" in page
    # the profile page again, with the reason, not a bare error page
    assert "← All profiles" in page and 'class="errors" role="alert"' in page
    row = await node_pool.fetchrow("SELECT is_admin, disabled FROM users WHERE id = $1", admin)
    assert (row["is_admin"], row["disabled"]) == (True, False)
    assert await node_pool.fetchval("SELECT count(*) FROM audit_log") == 0


async def test_a_disabled_admin_does_not_count(node_client, node_pool):
    admin = await create_user(node_pool, "root", admin=True)
    other = await create_user(node_pool, "old", admin=True)
    await node_pool.execute("UPDATE users SET disabled = true WHERE id = $1", other)
    csrf = await sign_in(node_client, admin)
    r = await node_client.post(f"/admin/profiles/{admin}/demote", data={"csrf_token": csrf},
                               headers=JSON)
    assert r.status == 409


async def test_demote_self_allowed_when_another_admin_exists(node_client, node_pool):
    admin = await create_user(node_pool, "root", admin=True)
    await create_user(node_pool, "second", admin=True)
    csrf = await sign_in(node_client, admin)
    r = await node_client.post(f"/admin/profiles/{admin}/demote", data={"csrf_token": csrf},
                               headers=JSON)
    assert r.status == 200
    assert not await node_pool.fetchval("SELECT is_admin FROM users WHERE id = $1", admin)


@pytest.mark.parametrize("action", ["explode", "delete"])
async def test_unknown_action_is_404(node_client, node_pool, action):
    admin = await create_user(node_pool, "root", admin=True)
    csrf = await sign_in(node_client, admin)
    r = await node_client.post(f"/admin/profiles/{admin}/{action}", data={"csrf_token": csrf},
                               headers=JSON)
    assert r.status == 404


async def test_admin_reset_avatar_audited(node_client, node_pool, node_config):
    from node.profiles import service
    from tests.node.profiles.test_settings_avatars import png

    data_dir = node_config.path("WB_DATA_DIR")
    admin = await create_user(node_pool, "root", admin=True)
    ann = await create_user(node_pool, "ann")
    name = await service.upload_avatar(node_pool, data_dir, ann, png(), 100_000)
    csrf = await sign_in(node_client, admin)
    r = await node_client.post(f"/admin/profiles/{ann}/reset-avatar",
                               data={"csrf_token": csrf}, headers=JSON)
    assert r.status == 200
    assert not (data_dir / "avatars" / name).exists()
    assert await node_pool.fetchval("SELECT avatar_path FROM users WHERE id = $1", ann) is None
    rows = await _audit(node_pool, "profile.avatar_reset")
    assert [(r["actor_id"], r["target"]) for r in rows] == [(admin, ann)]
