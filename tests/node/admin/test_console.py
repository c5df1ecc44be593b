"""The admin console from the hostile side: counts that are true and link to their pages,
a badge only admins see, approvals classified correctly (a fast second device is not a
'new member'), Run now credited to its admin, and no admin data for members."""

from __future__ import annotations

from node import typedefs as T
from tests.node.auth.helpers import JSON, bootstrap_admin


async def _member(devices, admin, username: str, *, auto: bool = True):
    invite = await admin.invite(auto_approve=auto)
    d = devices()
    status, body = await d.register(username, token=invite["token"],
                                    **({} if auto else {"request_title": "Lift",
                                                        "request_description": "to the clinic"}))
    assert status == 201, body
    return d, body


async def test_counts_are_links_and_true(devices, node_pool):
    admin = await bootstrap_admin(devices)
    await _member(devices, admin, "bob")
    await _member(devices, admin, "dan", auto=False)  # waits, with a pending request
    laptop = devices()
    await laptop.login("bob")  # a second device of bob waits too
    status, body = await admin.get_json("/admin")
    assert status == 200
    assert body["counts"]["approvals"] == 2 and body["pending_logins"] == 2
    assert body["counts"]["pending_requests"] == 1 and body["members"] == 3
    status, html = await admin.get("/admin")
    for href in ('href="/admin/sessions"', 'href="/admin/requests"', 'href="/admin/profiles"',
                 'href="/admin/sync-control#pending-keys"', 'href="/admin/sync-control#gaps"',
                 'href="/invite/new"'):
        assert href in html, href
    # the admin nav lists every admin area
    for label in ("Members", "Approvals", "Requests", "Scope", "Sync", "Invites", "Copilot",
                  "Audit"):
        assert f">{label}" in html, label


async def test_the_badge_is_for_admins_only(devices, node_pool):
    admin = await bootstrap_admin(devices)
    bob, _ = await _member(devices, admin, "bob")
    status, html = await admin.get("/")
    assert 'class="count"' not in html  # nothing waits
    laptop = devices()
    await laptop.login("bob")
    status, html = await admin.get("/members")
    assert 'class="nav-admin"' in html and '<span class="count"' in html
    status, html = await bob.get("/")
    assert 'class="count"' not in html and 'href="/admin"' not in html
    status, html = await laptop.get("/login/pending")  # the waiting device learns nothing
    assert 'class="count"' not in html and "sign-ins wait" not in html
    for path in ("/admin/requests", "/admin/audit"):
        status, body = await bob.get_json(path)
        assert status == 403 and body["error"]["code"] == "admin_only", path


async def test_new_member_or_new_device(devices, node_pool):
    admin = await bootstrap_admin(devices)
    # bob joined a second ago (auto-approved) and already signs in on a laptop: a device
    await _member(devices, admin, "bob")
    await devices().login("bob")
    # dan's invite needs an admin: a new member
    await _member(devices, admin, "dan", auto=False)
    status, html = await admin.get("/admin/sessions")
    bob_card = html[html.index("@bob") - 400:html.index("@bob")]
    dan_card = html[html.index("@dan") - 400:html.index("@dan")]
    assert "new device" in bob_card and "new member" not in bob_card
    assert "new member" in dan_card
    assert "invited by" in html and "Lift" in html  # inviter and what dan wrote


async def test_the_waiting_page_says_who_can_approve(devices, node_pool):
    admin = await bootstrap_admin(devices)
    _, body = await _member(devices, admin, "dan", auto=False)
    newbie = devices()
    status, _ = await newbie.register("eve", token=(await admin.invite(
        auto_approve=False))["token"], request_title="Soup", request_description="please")
    status, html = await newbie.get("/login/pending")
    assert "Ada" in html or "ada" in html  # the admins, by name
    assert "Your other device" not in html  # eve has none
    assert "Soup" in html and "Saved" in html
    bob, _ = await _member(devices, admin, "bob")
    laptop = devices()
    await laptop.login("bob")
    status, html = await laptop.get("/login/pending")
    assert "Your other device" in html


async def test_run_now_is_credited_to_the_admin_and_answers_with_the_result(
        devices, node_client, node_pool, tmp_path):
    from node.sync import peers as P
    from node.sync.scheduling import reconcile

    admin = await bootstrap_admin(devices)
    (tmp_path / "x").mkdir()
    await P.add_peer(node_pool, "shared", "dir", str(tmp_path / "x"))
    await reconcile(node_client.server.app)
    token = await admin.csrf()
    async with admin.session.post(admin.base + "/admin/sync-control/jobs/push:shared/run",
                                  data={"csrf_token": token, "back": "/admin"},
                                  allow_redirects=False) as r:
        assert r.status == 303
        from urllib.parse import unquote

        assert unquote(r.headers["Location"]).startswith("/admin?flash=push:shared: ok: pushed")
    async with admin.session.post(admin.base + "/admin/sync-control/jobs/pull:shared/run",
                                  headers={**JSON, "X-CSRF-Token": token}) as r:
        body = await r.json()
        assert r.status == 200 and body["job"] == "pull:shared", body
        assert body["ok"], body
        assert body["result"].startswith("ok: pulled 0 bundles")
    ada = await node_pool.fetchval("SELECT id FROM users WHERE username = 'ada'")
    actors = {r["actor"] for r in await node_pool.fetch("SELECT actor FROM sync_jobs")}
    assert actors == {f"admin:{ada}"}
    # a flash is text, never markup
    status, html = await admin.get("/admin?flash=%3Cscript%3Ealert(1)%3C/script%3E")
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


async def test_favicon_and_housekeeping_results_read_like_words(node_client):
    r = await node_client.get("/favicon.ico", allow_redirects=False)
    assert r.status == 301 and r.headers["Location"] == "/static/favicon.svg"
    r = await node_client.get("/static/favicon.svg")
    assert r.status == 200 and "<svg" in await r.text()
    from node.jobs import expire_auth

    result = await expire_auth(node_client.server.app)
    assert result == "expired requests 0, deleted sessions 0"
    assert node_client.server.app[T.pool_key] is not None
