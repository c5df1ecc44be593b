"""Invites: creation, share link and QR, exhaustion, expiry, disabling, concurrency, photos."""

from __future__ import annotations

import asyncio
import hashlib

from tests.factories import create_user, sign_in
from tests.node.auth.helpers import bootstrap_admin

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def test_invite_creation_stores_only_the_token_hash(devices, node_pool):
    admin = await bootstrap_admin(devices)
    body = await admin.invite(max_uses=3, expires_days=2, auto_approve=False,
                              gratitude="Thanks for the soup", suggested_username="bob")
    assert len(body["token"]) >= 40  # 256 bits, url-safe
    assert body["link"] == f"http://node.test/register/{body['token']}"
    row = await node_pool.fetchrow("SELECT * FROM invites WHERE id=$1", body["id"])
    assert row["token_hash"] == hashlib.sha256(body["token"].encode()).hexdigest()
    assert body["token"] not in str(dict(row).values())
    assert (row["max_uses"], row["auto_approve"], row["gratitude"]) == (3, False,
                                                                        "Thanks for the soup")
    audit = await node_pool.fetchrow("SELECT * FROM audit_log WHERE action='invite.create'")
    assert audit["target"] == body["id"] and audit["actor_id"] is not None and audit["ip"]


async def test_invite_page_shows_link_from_request_origin_and_qr(devices, node_pool):
    admin = await bootstrap_admin(devices)
    status, _, r = await admin.post_form("/auth/invites", {"max_uses": "1",
                                                            "auto_approve": "true"})
    # Post/Redirect/Get: the link is shown once on the page the form redirects to
    assert status == 303 and r.headers["Location"].startswith("/invite/created/")
    status, html = await admin.get(r.headers["Location"])
    assert status == 200
    assert 'href="http://node.test/register/' in html  # no Origin header: SITE_URL
    assert 'src="data:image/svg+xml' in html
    status, html = await admin.get(r.headers["Location"])  # a reload creates nothing
    assert status == 200 and "already shown" in html and "/register/" not in html
    assert await node_pool.fetchval("SELECT count(*) FROM invites") == 1
    token = await admin.csrf()
    async with admin.session.post(admin.base + "/auth/invites",
                                  data={"csrf_token": token},
                                  headers={"Origin": "http://192.168.1.5:8080"}) as r:
        html = await r.text()
    assert 'href="http://192.168.1.5:8080/register/' in html


async def test_invite_prefills_registration_and_records_the_inviter(devices, node_pool):
    admin = await bootstrap_admin(devices)
    invite = await admin.invite(suggested_username="bobby", suggested_bio="Bakes bread",
                                gratitude="Thank you for the bread!")
    guest = devices()
    status, html = await guest.get(f"/register/{invite['token']}")
    assert status == 200
    assert 'value="bobby"' in html and "Bakes bread" in html and "Thank you for the bread!" in html
    status, body = await guest.register("bobby", token=invite["token"],
                                        contact_email="bob@example.org")
    assert status == 201 and body["status"] == "active" and not body["is_admin"]
    row = await node_pool.fetchrow("SELECT * FROM users WHERE id=$1", body["user_id"])
    ada = await node_pool.fetchval("SELECT id FROM users WHERE username='ada'")
    assert row["invited_by"] == ada and row["invite_id"] == invite["id"]
    assert row["contact_email"] == "bob@example.org"


async def test_invite_is_exhausted_after_max_uses(devices, node_pool):
    admin = await bootstrap_admin(devices)
    invite = await admin.invite(max_uses=2)
    for name in ("bob", "cy"):
        status, _ = await devices().register(name, token=invite["token"])
        assert status == 201
    status, body = await devices().register("dee", token=invite["token"])
    assert status == 410 and body["error"]["code"] == "invite_used_up"
    status, _ = await devices().get(f"/register/{invite['token']}")
    assert status == 410
    assert await node_pool.fetchval("SELECT use_count FROM invites") == 2
    assert await node_pool.fetchval("SELECT count(*) FROM users") == 3


async def test_expired_invite_is_refused(devices, node_pool):
    admin = await bootstrap_admin(devices)
    invite = await admin.invite(max_uses=5)
    await node_pool.execute("UPDATE invites SET expires_at = now() - interval '1 second'")
    status, body = await devices().register("bob", token=invite["token"])
    assert status == 410 and body["error"]["code"] == "invite_expired"
    assert await node_pool.fetchval("SELECT use_count FROM invites") == 0


async def test_disabled_invite_is_refused_and_only_creator_or_admin_may_disable(
        devices, node_client, node_pool):
    admin = await bootstrap_admin(devices)
    invite = await admin.invite(max_uses=5)
    other = await create_user(node_pool, "mallory")
    token = await sign_in(node_client, other)
    r = await node_client.post(f"/auth/invites/{invite['id']}/disable",
                               headers={"X-CSRF-Token": token, "Accept": "application/json"})
    assert r.status == 404
    assert not await node_pool.fetchval("SELECT disabled FROM invites")
    status, body = await admin.post_json(f"/auth/invites/{invite['id']}/disable")
    assert status == 200 and body["disabled"]
    status, body = await devices().register("bob", token=invite["token"])
    assert status == 410 and body["error"]["code"] == "invite_disabled"


async def test_concurrent_use_of_a_one_use_invite_admits_exactly_one(devices, node_pool):
    admin = await bootstrap_admin(devices)
    invite = await admin.invite(max_uses=1)
    guests = [devices() for _ in range(12)]
    results = await asyncio.gather(*(g.register(f"guest{i}", token=invite["token"])
                                     for i, g in enumerate(guests)))
    statuses = sorted(s for s, _ in results)
    assert statuses.count(201) == 1
    assert all(s == 410 for s in statuses if s != 201)
    assert await node_pool.fetchval("SELECT use_count FROM invites") == 1
    assert await node_pool.fetchval("SELECT count(*) FROM users") == 2


async def test_invite_validation(devices, node_pool):
    admin = await bootstrap_admin(devices)
    for body, field in [({"max_uses": 0}, "max_uses"), ({"max_uses": "x"}, "max_uses"),
                        ({"expires_days": 9999}, "expires_days"),
                        ({"suggested_username": "bad name"}, "username")]:
        status, answer = await admin.post_json("/auth/invites", body)
        assert status == 400 and field in answer["error"]["fields"], answer
    assert await node_pool.fetchval("SELECT count(*) FROM invites") == 0


async def test_pending_or_anonymous_devices_cannot_create_invites(devices, node_pool):
    await bootstrap_admin(devices)
    anon = devices()
    status, body = await anon.post_json("/auth/invites", {})
    assert status == 401
    status, _ = await anon.login("ada")
    assert status == 200
    status, body = await anon.post_json("/auth/invites", {})
    assert status == 403 and body["error"]["code"] == "session_not_approved"
    assert await node_pool.fetchval("SELECT count(*) FROM invites") == 0


async def _upload(device, content: bytes, filename: str = "me.png"):
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("csrf_token", await device.csrf())
    form.add_field("max_uses", "1")
    form.add_field("photo", content, filename=filename, content_type="image/png")
    async with device.session.post(device.base + "/auth/invites", data=form,
                                   headers={"Accept": "application/json"}) as r:
        return r.status, await r.json()


async def test_invite_photo_upload_limits_and_serving(devices, node_pool, node_config):
    admin = await bootstrap_admin(devices)
    status, body = await _upload(admin, b"GIF89a" + b"\x00" * 10, "x.gif")
    assert status == 201
    status, body = await _upload(admin, b"#!/bin/sh\necho not an image\n")
    assert status == 400 and body["error"]["code"] == "photo_type"
    big = PNG + b"\x00" * node_config.get_int("WB_MAX_UPLOAD_BYTES")
    status, body = await _upload(admin, big)
    assert status == 413 and body["error"]["code"] == "photo_too_large"
    assert await node_pool.fetchval("SELECT count(*) FROM invites") == 1
    status, body = await _upload(admin, PNG)
    assert status == 201
    path = await node_pool.fetchval("SELECT photo_path FROM invites WHERE id=$1", body["id"])
    assert path.endswith(".png")
    async with devices().session.get(admin.base + f"/register/{body['token']}/photo") as r:
        assert r.status == 200 and r.content_type == "image/png"
        assert await r.read() == PNG


async def test_the_shown_once_page_refuses_forged_or_foreign_cookies(devices, node_pool):
    """The cookie that carries the new link is checked against the invite's hash, its id
    and its creator: a guessed token, another invite's id or another member shows nothing."""
    admin = await bootstrap_admin(devices)
    mine = await admin.invite()
    theirs = await admin.invite()
    from urllib.parse import quote

    def cookie(link: str, invite_id: str) -> dict:
        return {"Cookie": f"wb_new_invite={quote(link, safe='')}"}

    good = f"http://node.test/register/{mine['token']}"
    # a real token presented for another invite's page
    status, html = await admin.get(f"/invite/created/{theirs['id']}",
                                   headers=cookie(good, theirs["id"]))
    assert status == 200 and "already shown" in html and mine["token"] not in html
    # a made-up token
    status, html = await admin.get(f"/invite/created/{mine['id']}",
                                   headers=cookie("http://node.test/register/abc", mine["id"]))
    assert "already shown" in html
    # the right one works
    status, html = await admin.get(f"/invite/created/{mine['id']}",
                                   headers=cookie(good, mine["id"]))
    assert status == 200 and mine["token"] in html
    # anonymous visitors are sent to sign in
    anon = devices()
    status, _ = await anon.get(f"/invite/created/{mine['id']}", headers=cookie(good, mine["id"]))
    assert status == 303
