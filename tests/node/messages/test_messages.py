"""Direct messages (#23) from the hostile side: the plain-form flow, unread counts, who may
use each route (anonymous, unapproved device, participant, another member, reviewer,
admin), blocks with a neutral refusal, reports that open one message to admins and nothing
else, precise refusals with nothing written, the per-sender rate limit and the switch."""

from __future__ import annotations

import asyncio
import re

from node import typedefs as T
from node.app import create_app
from node.messages import service as MS
from tests.conftest import make_node_config
from tests.factories import create_user

MARKER = "DM-PRIVATE-MARKER-51c"


async def _count(pool, table: str) -> int:
    return await pool.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 (fixed names)


def _nav_unread(page: str) -> str | None:
    """The nav badge's number, None when it is hidden."""
    m = re.search(r'<span class="count" id="nav-unread"( hidden)?>(\d+)', page)
    assert m, "no Messages link in the nav"
    return None if m.group(1) else m.group(2)


async def _thread(ann, to: str, body: str) -> str:
    r = await ann.post("/messages", {"to": to, "body": body})
    assert r.status == 303, await r.text()
    location = r.headers["Location"]
    assert location.startswith("/messages/") and "#m-" in location
    return location.split("/")[2].split("#")[0]


async def test_write_read_and_reply_without_js(member_factory, pool):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    # the "Message" button on bob's profile and in the directory
    page = await (await ann.client.get("/people/bob")).text()
    assert 'href="/messages/new?to=bob"' in page
    page = await (await ann.client.get("/members")).text()
    assert 'href="/messages/new?to=bob"' in page
    page = await (await ann.client.get("/messages/new?to=bob")).text()
    assert "Message Bob" in page and 'name="to" value="bob"' in page

    tid = await _thread(ann, "bob", "Hello Bob,\nthe ladder is free.")
    assert _nav_unread(await (await bob.client.get("/")).text()) == "1"
    assert _nav_unread(await (await ann.client.get("/")).text()) is None
    inbox = await (await bob.get_json("/messages")).json()
    assert inbox["unread"] == 1 and inbox["conversations"][0]["id"] == tid
    assert inbox["conversations"][0]["with"]["username"] == "ann"

    # opening the conversation reads it
    page = await (await bob.client.get(f"/messages/{tid}")).text()
    assert "the ladder is free." in page and "Report this message" in page
    assert _nav_unread(page) is None
    assert await pool.fetchval("SELECT count(*) FROM messages WHERE read_at IS NULL") == 0

    r = await bob.post(f"/messages/{tid}", {"body": "Thanks, I'll come by."})
    assert r.status == 303 and r.headers["Location"].startswith(f"/messages/{tid}#m-")
    body = await (await ann.get_json("/api/messages")).json()
    assert body["unread"] == 1
    conv = await (await ann.get_json(f"/messages/{tid}")).json()
    assert [m["body"] for m in conv["messages"]] == ["Hello Bob,\nthe ladder is free.",
                                                     "Thanks, I'll come by."]
    assert [m["mine"] for m in conv["messages"]] == [True, False]
    # one's own messages carry no report button; the "Message" button finds the thread
    page = await (await ann.client.get(f"/messages/{tid}")).text()
    assert page.count("Report this message") == 1
    r = await ann.client.get("/messages/new?to=bob", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == f"/messages/{tid}"
    # JSON API: the same actions
    family = "via the API \U0001F469\u200D\U0001F467"  # an emoji joiner is fine
    r = await ann.api_post("/api/messages", {"to": "bob", "body": family})
    assert r.status == 201
    msg = (await r.json())["message"]
    assert msg["body"] == family
    assert msg["conversation_id"] == tid and msg["mine"] and msg["read_at"] is None
    assert await _count(pool, "message_threads") == 1


async def test_every_route_refuses_who_may_not_use_it(member_factory, pool, aiohttp_client,
                                                      node_client):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    cat = await member_factory("cat")  # another member, not in the conversation
    rev = await member_factory("rev", roles=("reviewer",))  # the role grants nothing here
    ada = await member_factory("ada", admin=True)
    wes = await member_factory("wes", status="pending")  # an unapproved device
    tid = await _thread(ann, "bob", f"first {MARKER}")
    r = await bob.post(f"/messages/{tid}", {"body": f"second {MARKER}-2"})
    assert r.status == 303
    mids = [m["id"] for m in (await (await ann.get_json(f"/messages/{tid}")).json())["messages"]]

    anon = await aiohttp_client(node_client.server)
    token = (await (await anon.get("/api/csrf")).json())["csrf_token"]
    gets = ["/messages", f"/messages/{tid}", "/messages/new?to=ann", "/api/messages",
            f"/messages/events?conversation={tid}", "/admin/messages/reports",
            "/admin/messages/reports?status=all"]
    posts = [("/messages", {"to": "ann", "body": "x"}), (f"/messages/{tid}", {"body": "x"}),
             ("/api/messages", {"to": "ann", "body": "x"}),
             ("/messages/block", {"username": "ann"}),
             ("/messages/unblock", {"username": "ann"}),
             ("/messages/report", {"message_id": mids[0]}),
             ("/admin/messages/reports/01ABCDEFGHJKMNPQRSTVWXYZ00/resolve", {})]
    before = await _count(pool, "messages")
    for who, client, csrf in (("anonymous", anon, token), ("unapproved", wes.client, wes.csrf)):
        for path in gets:
            for accept in ("text/html", "application/json"):
                r = await client.get(path, headers={"Accept": accept}, allow_redirects=False)
                assert r.status in (303, 401, 403), (who, path, r.status)
                assert MARKER not in await r.text(), (who, path)
        for path, form in posts:
            r = await client.post(path, data={"csrf_token": csrf, **form},
                                  headers={"Accept": "application/json"}, allow_redirects=False)
            assert r.status in (401, 403), (who, path, r.status)
    assert await _count(pool, "messages") == before
    assert await _count(pool, "message_blocks") == 0

    # members outside the conversation, the reviewer and the admin: it does not exist
    for who in (cat, rev, ada):
        for path in (f"/messages/{tid}", f"/messages/events?conversation={tid}"):
            r = await who.get_json(path)
            assert r.status == 404, (who.username, path)
            assert (await r.json())["error"]["code"] == "conversation_not_found"
        page = await (await who.client.get("/messages")).text()
        assert MARKER not in page
        r = await who.post(f"/messages/{tid}", {"body": "butting in"}, json_reply=True)
        assert r.status == 404
        for mid in mids:  # nobody reports a message that was not sent to them
            r = await who.post("/messages/report", {"message_id": mid}, json_reply=True)
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "direct_message_not_found"
    # ann reports bob's message? she may not report her own
    r = await ann.post("/messages/report", {"message_id": mids[0]}, json_reply=True)
    assert r.status == 404
    assert await _count(pool, "messages") == before
    assert await _count(pool, "message_reports") == 0

    # admin-only routes for members
    for who in (ann, cat, rev):
        r = await who.get_json("/admin/messages/reports")
        assert r.status == 403 and MARKER not in await r.text()
    # the admin's queue is empty: no report, no body
    r = await ada.get_json("/admin/messages/reports?status=all")
    assert r.status == 200 and (await r.json())["reports"] == []


async def test_a_report_opens_that_message_and_nothing_else(member_factory, pool):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    ada = await member_factory("ada", admin=True)
    tid = await _thread(ann, "bob", f"rude {MARKER}-A")
    r = await ann.post(f"/messages/{tid}", {"body": f"private {MARKER}-B"})
    assert r.status == 303
    msgs = (await (await bob.get_json(f"/messages/{tid}")).json())["messages"]
    r = await bob.post("/messages/report", {"message_id": msgs[0]["id"],
                                            "reason": "x" * 501}, json_reply=True)
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_report"
    r = await bob.post("/messages/report", {"message_id": msgs[0]["id"],
                                            "reason": "nul\x00"}, json_reply=True)
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_report"
    r = await bob.post("/messages/report", {"message_id": msgs[0]["id"], "reason": "rude"})
    assert r.status == 303 and r.headers["Location"] == f"/messages/{tid}?done=reported"
    r = await bob.post("/messages/report", {"message_id": msgs[0]["id"]}, json_reply=True)
    assert r.status == 201  # a second report is the first one
    assert await _count(pool, "message_reports") == 1

    page = await (await ada.client.get("/admin/messages/reports")).text()
    assert f"{MARKER}-A" in page and f"{MARKER}-B" not in page and "rude" in page
    body = await (await ada.get_json("/admin/messages/reports")).json()
    [report] = body["reports"]
    assert report["body"] == f"rude {MARKER}-A" and report["sender"] == "ann"
    assert report["reporter"] == "bob"
    # the admin still cannot open the conversation
    r = await ada.get_json(f"/messages/{tid}")
    assert r.status == 404
    r = await ada.post(f"/admin/messages/reports/{report['id']}/resolve",
                       {"resolution": "talked to ann"})
    assert r.status == 303
    r = await ada.post(f"/admin/messages/reports/{report['id']}/resolve", json_reply=True)
    assert r.status == 409 and (await r.json())["error"]["code"] == "report_resolved"
    r = await ada.post("/admin/messages/reports/nope/resolve", json_reply=True)
    assert r.status == 404 and (await r.json())["error"]["code"] == "report_not_found"
    assert (await (await ada.get_json("/admin/messages/reports")).json())["reports"] == []
    done = (await (await ada.get_json("/admin/messages/reports?status=all")).json())["reports"]
    assert done[0]["resolved_by"] == "ada" and done[0]["resolution"] == "talked to ann"


async def test_blocks_work_both_ways_and_the_blocked_one_learns_nothing(member_factory, pool):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    tid = await _thread(ann, "bob", "hi")
    r = await bob.post("/messages/block", {"username": "ann", "back": f"/messages/{tid}"})
    assert r.status == 303 and r.headers["Location"] == f"/messages/{tid}?done=blocked"
    before = await _count(pool, "messages")
    r = await ann.post(f"/messages/{tid}", {"body": "hello?"}, json_reply=True)
    assert r.status == 403
    error = (await r.json())["error"]
    assert error["code"] == "message_refused" and "block" not in error["message"].lower()
    r = await ann.post("/messages", {"to": "bob", "body": "hello?"})
    assert r.status == 403 and "could not be delivered" in await r.text()
    r = await bob.post(f"/messages/{tid}", {"body": "still me"}, json_reply=True)
    assert r.status == 409 and (await r.json())["error"]["code"] == "member_blocked"
    assert await _count(pool, "messages") == before
    # an open redirect through "back" is not followed
    for back in ("//evil.test/x", "/messages/\r\nSet-Cookie: a=b", f"/messages/{tid}/../x",
                 "https://evil.test/messages/"):
        r = await bob.post("/messages/block", {"username": "ann", "back": back})
        assert r.status == 303 and r.headers["Location"] == "/messages?done=blocked", back
    r = await bob.post("/messages/block", {"username": "bob"}, json_reply=True)
    assert r.status == 400 and (await r.json())["error"]["code"] == "block_self"
    assert "ann" in (await (await bob.get_json("/messages")).json())["blocked"]
    r = await bob.post("/messages/unblock", {"username": "ann"}, json_reply=True)
    assert r.status == 200 and (await r.json())["blocked"] is False
    r = await ann.post(f"/messages/{tid}", {"body": "hello again"}, json_reply=True)
    assert r.status == 201


async def test_bad_input_is_a_precise_refusal_and_nothing_is_written(member_factory, pool):
    ann = await member_factory("ann")
    await member_factory("bob")
    gone = await create_user(pool, "gone")
    await pool.execute("UPDATE users SET disabled = true WHERE id = $1", gone)
    cases = [({"to": "bob", "body": "   "}, 400, "invalid_message"),
             ({"to": "bob", "body": "x" * (MS.BODY_MAX + 1)}, 400, "message_too_long"),
             ({"to": "nobody", "body": "x"}, 404, "recipient_not_found"),
             ({"to": "gone", "body": "x"}, 404, "recipient_not_found"),
             ({"to": "../admin", "body": "x"}, 400, "recipient_not_found"),
             ({"to": "ann", "body": "x"}, 400, "message_self"),
             ({"to": "bob", "body": "nul \x00 byte"}, 400, "invalid_message"),
             ({"to": "bob", "body": "lone \ud800 surrogate"}, 400, "invalid_json"),
             ({"to": "bob", "body": "bell \x07"}, 400, "invalid_message"),
             ({"to": "bob\x00", "body": "x"}, 400, "recipient_not_found"),
             ({"to": ["bob"], "body": "x"}, 400, "invalid_field"),
             ({"body": "x"}, 400, "recipient_not_found"),
             ({"to": "bob", "body": ["x"]}, 400, "invalid_field"),
             ({"to": "bob", "body": {"a": 1}}, 400, "invalid_field")]
    for payload, status, code in cases:
        r = await ann.api_post("/api/messages", payload)
        assert r.status == status, payload
        assert (await r.json())["error"]["code"] == code, payload
    r = await ann.client.post("/api/messages", data="[1]", allow_redirects=False,
                              headers={"X-CSRF-Token": ann.csrf,
                                       "Content-Type": "application/json"})
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"
    # no CSRF token: refused
    r = await ann.client.post("/messages", data={"to": "bob", "body": "x"},
                              allow_redirects=False, headers={"Accept": "application/json"})
    assert r.status == 403 and (await r.json())["error"]["code"] == "csrf_failed"
    # the form answer keeps what was typed and names the problem
    r = await ann.post("/messages", {"to": "bob", "body": "x" * (MS.BODY_MAX + 1)})
    assert r.status == 400 and "the limit is 4,000" in await r.text()
    r = await ann.get_json("/messages/events?after=abc")
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_cursor"
    r = await ann.get_json("/messages/ZZZZZZZZZZZZZZZZZZZZZZZZZZ")
    assert r.status == 404
    assert await _count(pool, "messages") == 0 and await _count(pool, "message_threads") == 0


async def test_rate_limit_per_sender(member_factory, pool):
    ann = await member_factory("ann")
    await member_factory("bob")
    cat = await member_factory("cat")
    for i in range(5):  # WB_MESSAGES_PER_MINUTE=5 in this package's config
        r = await ann.api_post("/api/messages", {"to": "bob", "body": f"m{i}"})
        assert r.status == 201
    r = await ann.api_post("/api/messages", {"to": "bob", "body": "one too many"})
    assert r.status == 429 and (await r.json())["error"]["code"] == "message_rate_limited"
    assert await _count(pool, "messages") == 5
    # another sender has a budget of their own
    r = await cat.api_post("/api/messages", {"to": "bob", "body": "hi"})
    assert r.status == 201


async def test_first_messages_racing_both_ways_make_one_conversation(member_factory, pool):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    results = await asyncio.gather(
        *(MS.send(pool, a.user_id, to=b.username, body=f"race {i}")
          for i, (a, b) in enumerate([(ann, bob), (bob, ann)] * 3)))
    assert len({r["thread_id"] for r in results}) == 1
    assert await _count(pool, "message_threads") == 1
    seqs = [r["seq"] for r in await pool.fetch("SELECT seq FROM messages ORDER BY created_at")]
    assert len(set(seqs)) == 6


async def test_switched_off_by_default(node_db_url, tmp_path, aiohttp_client):
    from tests.factories import sign_in

    client = await aiohttp_client(create_app(make_node_config(node_db_url, tmp_path / "n")))
    pool = client.server.app[T.pool_key]
    ann = await create_user(pool, "ann")
    await create_user(pool, "bob")
    admin_client = await aiohttp_client(client.server)
    ada = await create_user(pool, "ada", admin=True)
    csrf = await sign_in(client, ann)
    await sign_in(admin_client, ada)
    page = await (await client.get("/people/bob")).text()
    assert "/messages" not in page  # no nav link, no Message button
    for path in ("/messages", "/api/messages", "/messages/new?to=bob", "/messages/events"):
        r = await client.get(path, headers={"Accept": "application/json"})
        assert r.status == 404 and (await r.json())["error"]["code"] == "messages_disabled"
    r = await client.post("/api/messages", json={"to": "bob", "body": "x"},
                          headers={"X-CSRF-Token": csrf})
    assert r.status == 404 and (await r.json())["error"]["code"] == "messages_disabled"
    r = await admin_client.get("/admin/messages/reports", headers={"Accept": "application/json"})
    assert r.status == 404
    assert await pool.fetchval("SELECT count(*) FROM messages") == 0


async def test_the_nav_count_costs_the_feed_no_round_trip(member_factory, pool, node_client,
                                                          monkeypatch):
    """The unread count rides on the session query: the feed page makes as many database
    calls with messages on (and unread ones waiting) as with messages off."""
    import threading

    import asyncpg

    ann = await member_factory("ann")
    bob = await member_factory("bob")
    r = await bob.api_post("/api/messages", {"to": "ann", "body": "hi"})
    assert r.status == 201
    calls: list[str] = []
    # only this test's thread: the suite resets the previous test's database in a thread
    # of its own meanwhile (tests/pg.py), over asyncpg connections too
    here = threading.get_ident()
    for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
        original = getattr(asyncpg.connection.Connection, name)

        def counted(self, *args, _original=original, **kw):
            if threading.get_ident() == here:
                calls.append(str(args[0])[:60] if args else "")
            return _original(self, *args, **kw)

        monkeypatch.setattr(asyncpg.connection.Connection, name, counted)
    config = node_client.server.app[T.config_key]

    async def feed_calls(switch: str) -> int:
        monkeypatch.setitem(config._values, "WB_MESSAGES", switch)  # noqa: SLF001
        # settings never change in a running node: drop what the caches (#24) hold, and
        # count the calls of a page built from nothing (the cached one makes none at all)
        node_client.server.app[T.table_watch_key].changed()
        calls.clear()
        page = await (await ann.client.get("/")).text()
        assert ('id="nav-unread"' in page) == (switch == "true")
        return len(calls)

    on, off = await feed_calls("true"), await feed_calls("false")
    assert on == off and on > 0
    monkeypatch.setitem(config._values, "WB_MESSAGES", "true")  # noqa: SLF001
    node_client.server.app[T.table_watch_key].changed()
    page = await (await ann.client.get("/")).text()
    assert _nav_unread(page) == "1"


async def test_no_get_route_shows_an_admin_an_unreported_conversation(member_factory,
                                                                       node_client):
    """Every GET route of the node, as HTML and JSON, as an admin who is in no
    conversation: the bodies of ann and bob's messages appear nowhere."""
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    ada = await member_factory("ada", admin=True)
    tid = await _thread(ann, "bob", f"secret one {MARKER}")
    r = await bob.post(f"/messages/{tid}", {"body": f"secret two {MARKER}"})
    assert r.status == 303
    seen = set()
    for ident in (tid, ann.user_id, bob.user_id):
        params = {"id": ident, "username": "ann", "name": "x", "user_id": ann.user_id}
        for route in node_client.server.app.router.routes():
            if route.method != "GET" or route.resource is None:
                continue
            path = re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: params.get(m.group(1), "x"),
                          route.resource.canonical)
            if path in ("/static", "/messages/events"):  # files; a member's own stream
                continue
            for suffix in ("", f"?conversation={tid}", "?status=all"):
                for accept in ("text/html", "application/json"):
                    r = await ada.client.get(path + suffix, headers={"Accept": accept},
                                             allow_redirects=False)
                    assert r.status < 500, (path, r.status)
                    assert MARKER not in await r.text(errors="replace"), path + suffix
                    seen.add(r.status)
    assert 200 in seen and 404 in seen
    r = await ada.get_json(f"/messages/events?conversation={tid}")
    assert r.status == 404
    # the probe is not vacuous: a participant's same request shows them
    assert MARKER in await (await ann.client.get(f"/messages/{tid}")).text()


async def test_racing_reports_make_one_and_a_disabled_member_gets_no_reply(member_factory,
                                                                           pool):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    tid = await _thread(ann, "bob", "hello")
    mid = await pool.fetchval("SELECT id FROM messages")
    results = await asyncio.gather(*(MS.report(pool, bob.user_id, mid, f"r{i}")
                                     for i in range(4)))
    assert len({r["id"] for r in results}) == 1
    assert await _count(pool, "message_reports") == 1
    # ann's account is disabled (suspended): her session is gone and bob cannot reply
    await pool.execute("UPDATE users SET disabled = true WHERE id = $1", ann.user_id)
    r = await ann.get_json("/messages")
    assert r.status == 401
    r = await bob.post(f"/messages/{tid}", {"body": "are you there?"}, json_reply=True)
    assert r.status == 403 and (await r.json())["error"]["code"] == "message_refused"
    r = await bob.api_post("/api/messages", {"to": "ann", "body": "hello?"})
    assert r.status == 404 and (await r.json())["error"]["code"] == "recipient_not_found"
    assert await _count(pool, "messages") == 1
