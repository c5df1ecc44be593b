"""E-mail notifications end to end: real events on a real node, a real SMTP relay.

Each kind of message must arrive exactly once, only to a confirmed address, with a
working one-click unsubscribe, and never with what the recipient may not see.
"""

from __future__ import annotations

import datetime as dt

import aiohttp
import itsdangerous.timed

from node import typedefs as T
from node.notifications import queries as Q
from tests.node.auth.helpers import Device
from tests.node.notifications.conftest import make_member, run_outbox, signed_in

ALL_ON = {"on_comment": True, "on_status": True, "on_signin": True,
          "on_member_waiting": True}


async def _device(client) -> Device:
    return Device(client)


async def test_each_kind_arrives_exactly_once(aiohttp_client, app_client, relay):
    app = app_client.server.app
    pool = app[T.pool_key]
    admin_dev = await _device(app_client)
    guest = await _device(app_client)
    phone = await _device(app_client)
    try:
        status, body = await admin_dev.register("ada")
        assert status == 201 and body["is_admin"], body
        admin_id = await pool.fetchval("SELECT id FROM users WHERE username = 'ada'")
        await pool.execute("INSERT INTO notification_prefs (user_id, email, "
                           "email_confirmed_at, on_member_waiting) VALUES ($1, "
                           "'ada@example.org', now(), true)", admin_id)
        owner = await make_member(app_client, "olga", address="olga@example.org", **ALL_ON,
                                  digest=True)
        helper = await make_member(app_client, "hugo")
        owner_c, owner_csrf = await signed_in(aiohttp_client, app_client, owner)
        helper_c, helper_csrf = await signed_in(aiohttp_client, app_client, helper)

        r = await owner_c.post("/requests", data={"csrf_token": owner_csrf,
                                                  "title": "Ladder please",
                                                  "description": "for the roof"},
                               headers={"Accept": "application/json"})
        assert r.status == 201, await r.text()
        request_id = (await r.json())["request"]["id"]
        # the owner's own comment tells the owner nothing
        await owner_c.post(f"/requests/{request_id}/comments",
                           data={"csrf_token": owner_csrf, "body": "anyone?"})
        r = await helper_c.post(f"/requests/{request_id}/comments",
                                data={"csrf_token": helper_csrf,
                                      "body": "I have one <script>x</script>"})
        assert r.status in (200, 201, 303), await r.text()
        admin_csrf = await admin_dev.csrf()
        for action in ("complete", "reopen"):
            async with admin_dev.session.post(
                    f"{admin_dev.base}/requests/{request_id}/{action}",
                    data={"csrf_token": admin_csrf}, allow_redirects=False) as r:
                assert r.status in (200, 303), await r.text()
        status, login = await phone.login("olga")
        assert status in (200, 201), login
        code = login["code"]
        invite = await admin_dev.invite(auto_approve=False)
        status, body = await guest.register("gus", token=invite["token"])
        assert status == 201 and body["status"] == "pending", body
        await pool.execute("UPDATE notification_prefs SET digest_sent_on = NULL")
        from node.scheduler import jobs_key, run_job
        assert (await run_job(app, app[jobs_key]["mail:digest"], force=True)).startswith("ok")

        first = await run_outbox(app)
        again = await run_outbox(app)
        assert again == "ok: nothing due", again
        assert first.startswith("ok: 6 sent"), first
    finally:
        for d in (admin_dev, guest, phone):
            await d.close()

    olga = relay.of_kind("olga@example.org")
    subjects = sorted(m["Subject"] for m in olga)
    assert subjects == sorted([
        "[WhiteBalloon] New comment on “Ladder please”",
        "[WhiteBalloon] Your request “Ladder please” was completed",
        "[WhiteBalloon] Your request “Ladder please” was reopened",
        "[WhiteBalloon] A sign-in to your account is waiting for approval",
        "[WhiteBalloon] 1 new open request",
    ]), subjects
    ada = relay.of_kind("ada@example.org")
    assert [m["Subject"] for m in ada] == ["[WhiteBalloon] @gus is waiting for approval"]
    for m in relay.messages:
        assert m["From"] == "Test Node <noreply@node.test>"
        assert m["List-Unsubscribe"].startswith("<http://node.test/notifications/unsubscribe?")
        assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert m["Message-ID"]
        text = m.get_body(("plain",)).get_content()
        html = m.get_body(("html",)).get_content()
        assert "http://node.test/notifications/unsubscribe?token=" in text
        assert "<html>" in html
    signin = next(m for m in olga if "sign-in" in m["Subject"])
    for part in (signin.get_body(("plain",)), signin.get_body(("html",))):
        assert code not in part.get_content()  # never another device's code
    comment = next(m for m in olga if "comment" in m["Subject"])
    assert "I have one <script>x</script>" in comment.get_body(("plain",)).get_content()
    html = comment.get_body(("html",)).get_content()
    assert "<script>" not in html and "I have one &lt;script&gt;" in html  # escaped
    # the helper wrote the comment and has no address: nothing for anyone else
    assert {m["To"] for m in relay.messages} == {"olga@example.org", "ada@example.org"}
    states = await Q.counts(pool)
    assert states == {"sent": 6}, states


async def test_nothing_goes_to_an_unconfirmed_address(aiohttp_client, app_client, relay):
    app = app_client.server.app
    pool = app[T.pool_key]
    owner = await make_member(app_client, "olga")
    helper = await make_member(app_client, "hugo")
    owner_c, csrf = await signed_in(aiohttp_client, app_client, owner)
    r = await owner_c.post("/settings/notifications/address",
                           data={"csrf_token": csrf, "email": "olga@example.org"},
                           allow_redirects=False)
    assert r.status == 303
    # a second link within a minute is refused (no mail bombing through the form)
    r = await owner_c.post("/settings/notifications/address",
                           data={"csrf_token": csrf, "email": "other@example.org"},
                           headers={"Accept": "application/json"})
    assert r.status == 429 and (await r.json())["error"]["code"] == "confirm_too_soon"
    r = await owner_c.post("/settings/notifications/address",
                           data={"csrf_token": csrf, "email": "not an address\r\nBcc: x@y.z"},
                           headers={"Accept": "application/json"})
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_email"

    rid = await pool.fetchval("INSERT INTO requests (id, title, description, created_by) "
                              "VALUES ('R1', 'Soup', 'hot soup', $1) RETURNING id", owner)
    helper_c, hcsrf = await signed_in(aiohttp_client, app_client, helper)
    r = await helper_c.post(f"/requests/{rid}/comments", data={"csrf_token": hcsrf,
                                                               "body": "on my way"})
    assert r.status in (200, 201, 303)
    assert await pool.fetchval("SELECT count(*) FROM mail_outbox WHERE kind = 'comment'") == 0

    assert (await run_outbox(app)) == "ok: 1 sent"
    [confirm] = relay.messages
    assert confirm["To"] == "olga@example.org"
    assert confirm["List-Unsubscribe"]
    link = next(w for w in confirm.get_body(("plain",)).get_content().split()
                if "/notifications/confirm?token=" in w)
    path = link.removeprefix("http://node.test")

    # a forged or tampered link does nothing; the real one confirms, from any browser
    anon = await aiohttp_client(app_client.server)
    r = await anon.get(path[:-3] + "xyz")
    assert r.status == 404
    assert await pool.fetchval("SELECT email_confirmed_at FROM notification_prefs "
                               "WHERE user_id = $1", owner) is None
    r = await anon.get(path, headers={"Accept": "application/json"})
    assert r.status == 200, await r.text()
    assert (await r.json()) == {"confirmed": True, "email": "olga@example.org"}

    r = await helper_c.post(f"/requests/{rid}/comments", data={"csrf_token": hcsrf,
                                                               "body": "second"})
    assert await run_outbox(app) == "ok: 1 sent"
    assert [m["Subject"] for m in relay.messages][1] == "[WhiteBalloon] New comment on “Soup”"


async def test_expired_confirm_link_and_changed_address(aiohttp_client, app_client, relay,
                                                        monkeypatch):
    app = app_client.server.app
    pool = app[T.pool_key]
    owner = await make_member(app_client, "olga")
    await Q.set_email(pool, owner, "olga@example.org")
    from node.notifications import service as S
    secret = app[T.csrf_secret_key]
    real = itsdangerous.timed.TimestampSigner.get_timestamp
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp",
                        lambda self: real(self) - 49 * 3600)
    old = S.confirm_token(secret, owner, "olga@example.org")
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", real)
    r = await app_client.get(f"/notifications/confirm?token={old}",
                             headers={"Accept": "application/json"})
    assert r.status == 410 and (await r.json())["error"]["code"] == "confirm_link_expired"
    # a link for an address the member has since replaced confirms nothing
    stale = S.confirm_token(secret, owner, "olga@example.org")
    await Q.set_email(pool, owner, "new@example.org")
    r = await app_client.get(f"/notifications/confirm?token={stale}",
                             headers={"Accept": "application/json"})
    assert r.status == 409
    assert await pool.fetchval("SELECT email_confirmed_at FROM notification_prefs") is None


async def test_one_click_unsubscribe_without_signing_in(aiohttp_client, app_client, relay):
    app = app_client.server.app
    pool = app[T.pool_key]
    owner = await make_member(app_client, "olga", address="olga@example.org")
    helper = await make_member(app_client, "hugo")
    rid = await pool.fetchval("INSERT INTO requests (id, title, description, created_by) "
                              "VALUES ('R1', 'Soup', 'hot soup', $1) RETURNING id", owner)
    helper_c, hcsrf = await signed_in(aiohttp_client, app_client, helper)
    await helper_c.post(f"/requests/{rid}/comments", data={"csrf_token": hcsrf, "body": "hi"})
    assert await run_outbox(app) == "ok: 1 sent"
    [msg] = relay.messages
    url = msg["List-Unsubscribe"].strip("<>")
    path = url.removeprefix("http://node.test")

    # RFC 8058: a mail client POSTs List-Unsubscribe=One-Click with no cookie, no CSRF token
    base = str(app_client.make_url("")).rstrip("/")
    async with aiohttp.ClientSession() as stranger:
        async with stranger.post(base + path[:-2] + "AA", data="List-Unsubscribe=One-Click",
                                 headers={"Content-Type":
                                          "application/x-www-form-urlencoded"}) as r:
            assert r.status == 404  # a forged token changes nothing
        assert await pool.fetchval("SELECT on_comment FROM notification_prefs") is True
        async with stranger.get(base + path) as r:  # a link preview must not unsubscribe
            assert r.status == 200 and "Stop these messages" in await r.text()
        assert await pool.fetchval("SELECT on_comment FROM notification_prefs") is True
        async with stranger.post(base + path, data="List-Unsubscribe=One-Click",
                                 headers={"Content-Type":
                                          "application/x-www-form-urlencoded"}) as r:
            assert r.status == 200, await r.text()
    row = await pool.fetchrow("SELECT * FROM notification_prefs")
    assert row["on_comment"] is False and row["on_status"] is True

    await helper_c.post(f"/requests/{rid}/comments", data={"csrf_token": hcsrf, "body": "2"})
    assert await pool.fetchval("SELECT count(*) FROM mail_outbox") == 1


async def test_switched_off_or_deleted_before_sending_is_skipped(aiohttp_client, app_client,
                                                                 relay):
    app = app_client.server.app
    pool = app[T.pool_key]
    owner = await make_member(app_client, "olga", address="olga@example.org")
    helper = await make_member(app_client, "hugo")
    await pool.execute("INSERT INTO requests (id, title, description, created_by) "
                       "VALUES ('R1', 'Soup', 'hot soup', $1)", owner)
    helper_c, hcsrf = await signed_in(aiohttp_client, app_client, helper)
    await helper_c.post("/requests/R1/comments", data={"csrf_token": hcsrf,
                                                      "body": "PRIVATE-MARKER spam"})
    # an admin deletes the comment before the job runs: the owner must not read it by mail
    await pool.execute("UPDATE comments SET deleted_at = now()")
    assert await run_outbox(app) == "ok: 1 skipped"
    assert relay.messages == []
    row = await pool.fetchrow("SELECT state, last_error FROM mail_outbox")
    assert row["state"] == "skipped" and "gone" in row["last_error"]


async def test_settings_page_switches_and_defaults(aiohttp_client, app_client):
    pool = app_client.server.app[T.pool_key]
    uid = await make_member(app_client, "olga")
    c, csrf = await signed_in(aiohttp_client, app_client, uid)
    r = await c.get("/settings/notifications", headers={"Accept": "application/json"})
    body = await r.json()
    assert body["switches"] == {"on_comment": True, "on_status": True, "on_signin": False,
                                "on_member_waiting": False, "digest": False}
    assert body["email"] is None and body["relay"] is True
    admin = await make_member(app_client, "ada", admin=True)
    a, _ = await signed_in(aiohttp_client, app_client, admin)
    r = await a.get("/admin")
    assert r.status == 200 and "No mail relay is configured" not in await r.text()
    r = await c.post("/settings/notifications", data={"csrf_token": csrf, "digest": "on"},
                     allow_redirects=False)
    assert r.status == 303
    row = await pool.fetchrow("SELECT * FROM notification_prefs WHERE user_id = $1", uid)
    assert row["digest"] and not row["on_comment"] and not row["on_status"]
    r = await c.post("/settings/notifications", json={"on_comment": True, "digest": False},
                     headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
    assert r.status == 200 and (await r.json())["switches"]["on_comment"] is True
    r = await c.post("/settings/notifications", data="[1]",
                     headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"})
    assert r.status == 400
    # another site cannot flip the switches (no CSRF token)
    r = await c.post("/settings/notifications", data={"on_comment": "on"})
    assert r.status == 403
    anon = await aiohttp_client(app_client.server)
    r = await anon.get("/settings/notifications", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith("/login")


async def test_sign_in_mails_cannot_flood_an_inbox(app_client, relay):
    from tests.node.auth.helpers import Device

    pool = app_client.server.app[T.pool_key]
    await make_member(app_client, "olga", address="olga@example.org", on_signin=True)
    attacker = Device(app_client)
    try:
        for _ in range(5):
            status, _body = await attacker.login("olga")
            assert status in (200, 201)
    finally:
        await attacker.close()
    assert await pool.fetchval("SELECT count(*) FROM auth_requests") == 5
    assert await pool.fetchval("SELECT count(*) FROM mail_outbox WHERE kind = 'signin'") == 1


async def test_digest_is_queued_once_per_day(app_client):
    pool = app_client.server.app[T.pool_key]
    await make_member(app_client, "olga", address="olga@example.org", digest=True)
    today = dt.datetime.now(dt.UTC).date()
    async with pool.acquire() as conn:
        assert await Q.queue_digests(conn, today) == 1
        assert await Q.queue_digests(conn, today) == 0
        assert await Q.queue_digests(conn, today + dt.timedelta(days=1)) == 1
