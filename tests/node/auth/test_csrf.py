"""Every state-changing auth endpoint refuses a request without a valid CSRF token and
changes nothing."""

from __future__ import annotations

import pytest

from tests.node.auth.helpers import JSON, bootstrap_admin

TABLES = ("users", "sessions", "auth_requests", "invites", "requests", "audit_log")


async def snapshot(pool) -> dict:
    out = {}
    for table in TABLES:
        rows = await pool.fetch(f"SELECT * FROM {table} ORDER BY 1")
        # last_seen_at moves on every request by design; everything else must not
        out[table] = [{k: v for k, v in r.items() if k != "last_seen_at"} for r in rows]
    return out


@pytest.mark.parametrize("path,data", [
    ("/auth/register", {"username": "eve"}),
    ("/auth/login", {"username": "ada"}),
    ("/auth/logout", {}),
    ("/auth/invites", {"max_uses": "3"}),
    ("/auth/approve", {"request_id": "R", "code": "1"}),
    ("/auth/deny", {"request_id": "R"}),
    ("/admin/sessions/R/approve", {}),
    ("/admin/sessions/R/deny", {}),
    ("/admin/sessions/revoke", {"session": "x"}),
])
async def test_post_without_csrf_token_is_403_and_changes_nothing(devices, node_pool,
                                                                  path, data):
    admin = await bootstrap_admin(devices)
    laptop = devices()
    _, login = await laptop.login("ada")
    data = {k: (login["request_id"] if v == "R" else v) for k, v in data.items()}
    path = path.replace("/R/", f"/{login['request_id']}/")
    before = await snapshot(node_pool)
    for device in (admin, laptop, devices()):
        status, html, _ = await device.post_form(path, data, csrf=False)
        assert status == 403 and "csrf_failed" in html
        async with device.session.post(device.base + path, json=data, headers=JSON) as r:
            assert r.status == 403
            assert (await r.json())["error"]["code"] == "csrf_failed"
        wrong = dict(data, csrf_token="0" * 40)
        status, _, _ = await device.post_form(path, wrong, csrf=False)
        assert status == 403
    assert await snapshot(node_pool) == before
    assert await admin.whoami() == "active" and await laptop.whoami() == "pending"


async def test_token_of_one_session_does_not_work_for_another(devices, node_pool):
    admin = await bootstrap_admin(devices)
    stolen = await devices().csrf()
    async with admin.session.post(admin.base + "/auth/invites", json={},
                                  headers={**JSON, "X-CSRF-Token": stolen}) as r:
        assert r.status == 403
    assert await node_pool.fetchval("SELECT count(*) FROM invites") == 0


async def test_pages_carry_the_token(devices):
    admin = await bootstrap_admin(devices)
    token = await admin.csrf()
    for path in ("/invite/new", "/auth/devices", "/admin", "/admin/sessions"):
        status, html = await admin.get(path)
        assert status == 200, path
        assert f'<meta name="csrf-token" content="{token}">' in html
        if path != "/admin":
            assert f'name="csrf_token" value="{token}"' in html
    anon = devices()
    for path in ("/login",):
        status, html = await anon.get(path)
        assert status == 200 and 'name="csrf_token" value="' in html
