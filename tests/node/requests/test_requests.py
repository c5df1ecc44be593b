"""Requests lifecycle through the real app: pages, forms (PRG), JSON answers, permissions."""

from __future__ import annotations

import datetime as dt
import re

from node.requests import queries as Q
from service.ids import ulid


def _id_from(location: str) -> str:
    m = re.match(r"^/requests/([0-9A-Z]{26})$", location)
    assert m, location
    return m.group(1)


async def _post_request(m, **fields) -> str:
    data = {"description": "Need a ladder for Saturday", **fields}
    r = await m.post("/requests", data)
    assert r.status == 303, await r.text()
    return _id_from(r.headers["Location"])


async def _insert(pool, user_id, *, title="t", description="d", status="open",
                  created_at=None, origin=None, instance=None) -> str:
    rid = ulid()
    await pool.execute(
        "INSERT INTO requests (id, title, description, status, created_by, created_at, origin, "
        "origin_id, instance) VALUES ($1, $2, $3, $4, $5, coalesce($6, now()), $7, $8, $9)",
        rid, title, description, status, user_id, created_at, origin,
        rid if origin else None, instance)
    return rid


async def test_landing_page_for_visitors(node_client):
    r = await node_client.get("/")
    text = await r.text()
    assert r.status == 200
    assert "Join with an invite" in text and "Ask for help" not in text


async def test_post_request_prg_detail_and_title_normalised(member_factory, pool):
    ann = await member_factory("ann")
    rid = await _post_request(ann, title="Ladder\r\nneeded   now", contact_email="a@x.org")
    row = await Q.get_request(pool, rid)
    assert row["title"] == "Ladder needed now"
    assert row["status"] == "open" and row["sync_scope"] == "private"
    r = await ann.client.get(f"/requests/{rid}")
    text = await r.text()
    assert r.status == 200
    assert "Ladder needed now" in text and "a@x.org" in text
    assert "Mark as completed" in text and "private · stays here" in text
    r = await ann.client.get("/")
    text = await r.text()
    assert "<details" in text and "Ladder needed now" in text


async def test_length_limits_have_clear_messages(member_factory, pool):
    ann = await member_factory("ann")
    r = await ann.post("/requests", {"title": "x" * 201, "description": "y" * 5001})
    text = await r.text()
    assert r.status == 400
    assert "the limit is 200" in text and "the limit is 5,000" in text
    assert 'value="' + "x" * 201 in text  # the form keeps what was typed
    assert await pool.fetchval("SELECT count(*) FROM requests") == 0
    r = await ann.api_post("/api/requests", {"description": ""})
    body = await r.json()
    assert r.status == 400 and "description" in body["error"]["fields"]
    rid = await _post_request(ann)
    r = await ann.post(f"/requests/{rid}/comments", {"body": "z" * 2001})
    assert r.status == 400 and "the limit is 2,000" in await r.text()
    r = await ann.post(f"/requests/{rid}/comments", {"body": "z" * 2001}, json_reply=True)
    assert (await r.json())["error"]["fields"]["body"].endswith("the limit is 2,000.")
    assert await pool.fetchval("SELECT count(*) FROM comments") == 0


async def test_contact_email_only_for_creator_and_admin(member_factory):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    root = await member_factory("root", admin=True)
    rid = await _post_request(ann, contact_email="ann@example.org")
    for m, sees in ((ann, True), (bob, False), (root, True)):
        r = await m.client.get(f"/api/requests/{rid}")
        body = await r.json()
        assert ("contact_email" in body["request"]) is sees
        page = await (await m.client.get(f"/requests/{rid}")).text()
        assert ("ann@example.org" in page) is sees
        listing = await (await m.client.get("/api/requests")).json()
        assert ("contact_email" in listing["requests"][0]) is sees


async def test_comment_form_prg_and_json_fragment(member_factory, pool, node_client):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    rid = await _post_request(ann)
    r = await bob.post(f"/requests/{rid}/comments", {"body": "I have one <b>here</b>"})
    assert r.status == 303
    assert r.headers["Location"].startswith(f"/requests/{rid}#c-")
    r = await bob.post(f"/requests/{rid}/comments", {"body": "second"}, json_reply=True)
    body = await r.json()
    assert r.status == 201
    assert body["comment_count"] == 2
    assert body["comment"]["creator"]["username"] == "bob"
    assert body["html"].startswith('<li class="comment card" id="c-')
    assert body["comment"]["created_at"].endswith("Z")
    page = await (await ann.client.get(f"/requests/{rid}")).text()
    assert "I have one &lt;b&gt;here&lt;/b&gt;" in page and "second" in page
    metrics = await (await node_client.get("/metrics")).text()
    assert "wb_comments_posted_total 2.0" in metrics


async def test_comment_needs_csrf(member_factory, pool):
    ann = await member_factory("ann")
    rid = await _post_request(ann)
    r = await ann.client.post(f"/requests/{rid}/comments", data={"body": "hi"},
                              headers={"Accept": "application/json"})
    assert r.status == 403 and (await r.json())["error"]["code"] == "csrf_failed"
    assert await pool.fetchval("SELECT count(*) FROM comments") == 0


async def test_completion_by_author_admin_not_others(member_factory, pool, node_client):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    root = await member_factory("root", admin=True)
    r1 = await _post_request(ann)
    r2 = await _post_request(ann)
    r = await bob.post(f"/requests/{r1}/complete", json_reply=True)
    assert r.status == 403 and (await r.json())["error"]["code"] == "cannot_complete"
    assert "Mark as completed" not in await (await bob.client.get(f"/requests/{r1}")).text()
    r = await ann.post(f"/requests/{r1}/complete")
    assert r.status == 303 and r.headers["Location"] == f"/requests/{r1}"
    row = await Q.get_request(pool, r1)
    assert row["status"] == "completed" and row["completed_at"] is not None
    r = await ann.post(f"/requests/{r1}/complete", json_reply=True)
    assert r.status == 409
    r = await root.api_post(f"/api/requests/{r2}/complete", {})
    body = await r.json()
    assert r.status == 200 and body["request"]["status"] == "completed"
    assert body["request"]["can_complete"] is False
    assert await pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'request.complete'") == 1
    metrics = await (await node_client.get("/metrics")).text()
    assert "wb_request_completion_seconds_count 2.0" in metrics
    assert 'wb_requests{status="completed"} 2.0' in metrics


async def test_half_authenticated_member(member_factory, pool):
    ann = await member_factory("ann")
    open_id = await _post_request(ann, title="Open one")
    pen = await member_factory("pat", status="pending")
    other = await _insert(pool, ann.user_id, title="Anns pending", status="pending")
    r = await pen.post("/requests", {"title": "Pat asks", "description": "please"})
    # issue 14: an unapproved device is sent home, where it sees only what it wrote
    assert r.status == 303 and r.headers["Location"] == "/"
    mine = await pool.fetchval("SELECT id FROM requests WHERE title = 'Pat asks'")
    assert (await Q.get_request(pool, mine))["status"] == "pending"
    page = await (await pen.client.get("/")).text()
    assert "Waiting for approval" in page
    assert "Pat asks" in page and "Open one" not in page and "Anns pending" not in page
    # cannot comment or complete; cannot see someone else's pending request (nor any)
    r = await pen.post(f"/requests/{open_id}/comments", {"body": "hi"}, json_reply=True)
    assert r.status == 403
    r = await pen.post(f"/requests/{mine}/complete", json_reply=True)
    assert r.status == 403
    assert (await pen.client.get(f"/requests/{other}")).status == 403
    assert (await pen.client.get(f"/api/requests/{other}")).status == 403
    assert (await pen.client.get(f"/api/requests/{open_id}")).status == 403
    pending = await (await pen.client.get("/api/requests/pending")).json()
    assert [x["id"] for x in pending["requests"]] == [mine]
    # other members never see it; the auth engineer's promotion makes it open
    bob = await member_factory("bob")
    assert (await bob.client.get(f"/requests/{mine}")).status == 404
    listing = await (await bob.client.get("/api/requests?status=all")).json()
    assert mine not in [x["id"] for x in listing["requests"]]
    await pool.execute("UPDATE requests SET status='open' WHERE created_by=$1 "
                       "AND status='pending'", pen.user_id)
    assert (await bob.client.get(f"/requests/{mine}")).status == 200


async def test_pending_dashboard_shows_login_code_when_auth_provides_it(member_factory,
                                                                         monkeypatch):
    from node.auth import queries as auth_queries

    async def pending_login_for_session(pool, session_hash):
        return {"id": "x", "code": "482913", "expires_at": dt.datetime.now(dt.UTC),
                "status": "pending"}

    # a plain import now (no ImportError guard): replace the function, not the module
    monkeypatch.setattr(auth_queries, "pending_login_for_session", pending_login_for_session)
    pen = await member_factory("pat", status="pending")
    page = await (await pen.client.get("/")).text()
    assert "482913" in page


async def test_feed_keyset_pagination_filter_and_search(member_factory, pool):
    ann = await member_factory("ann")
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    ids = []
    for i in range(45):
        ids.append(await _insert(pool, ann.user_id, title=f"item {i}",
                                 description="bicycle pump" if i % 10 == 0 else "other",
                                 created_at=base + dt.timedelta(minutes=i)))
    # same timestamp tie broken by id
    tie = [await _insert(pool, ann.user_id, title="tie", created_at=base) for _ in range(3)]
    await pool.execute("UPDATE requests SET status='completed' WHERE id = $1", ids[44])
    seen: list[str] = []
    cursor = ""
    while True:
        r = await ann.client.get(f"/api/requests?limit=20&cursor={cursor}")
        body = await r.json()
        seen += [x["id"] for x in body["requests"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    expected_open = list(reversed(ids[1:44])) + sorted(tie + [ids[0]], reverse=True)
    assert seen == expected_open
    r = await ann.client.get("/api/requests?status=completed")
    assert [x["id"] for x in (await r.json())["requests"]] == [ids[44]]
    r = await ann.client.get("/api/requests?search=bicycle")
    got = [x["id"] for x in (await r.json())["requests"]]
    assert got == [ids[40], ids[30], ids[20], ids[10], ids[0]]
    page = await (await ann.client.get("/?q=bicycle")).text()
    assert page.count('class="card req-item"') == 5
    page = await (await ann.client.get("/")).text()
    assert page.count('class="card req-item"') == 20 and "Older requests" in page
    nxt = re.search(r'cursor=([A-Za-z0-9_-]+)', page).group(1)
    page2 = await (await ann.client.get(f"/?status=open&cursor={nxt}")).text()
    assert "item 23" in page2 and "item 43" not in page2
    r = await ann.client.get("/api/requests?cursor=!!bad")
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_cursor"
    r = await ann.client.get("/api/requests?limit=1000")
    assert r.status == 400
    r = await ann.client.get("/api/requests?status=weird")
    assert r.status == 400


async def test_comment_thread_pagination_and_moderation(member_factory, pool):
    ann = await member_factory("ann")
    root = await member_factory("root", admin=True)
    rid = await _post_request(ann)
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cids = []
    for i in range(55):
        cid = ulid()
        cids.append(cid)
        await pool.execute("INSERT INTO comments (id, request_id, created_by, body, created_at) "
                           "VALUES ($1, $2, $3, $4, $5)", cid, rid, ann.user_id, f"c{i}",
                           base + dt.timedelta(seconds=i))
    body = await (await ann.client.get(f"/api/requests/{rid}")).json()
    assert [c["id"] for c in body["comments"]] == cids[:50]
    assert body["comment_count"] == 55
    more = await (await ann.client.get(
        f"/api/requests/{rid}?comments_cursor={body['comments_next_cursor']}")).json()
    assert [c["id"] for c in more["comments"]] == cids[50:]
    # a member cannot moderate
    r = await ann.post(f"/comments/{cids[0]}/delete", json_reply=True)
    assert r.status == 403
    r = await root.post(f"/comments/{cids[0]}/delete")
    assert r.status == 303
    page = await (await ann.client.get(f"/requests/{rid}")).text()
    assert f'id="c-{cids[0]}"' not in page and "(54)" in page
    page = await (await root.client.get(f"/requests/{rid}")).text()
    assert f'id="c-{cids[0]}"' in page and "Restore" in page
    r = await root.post(f"/comments/{cids[0]}/restore")
    assert r.status == 303
    page = await (await ann.client.get(f"/requests/{rid}")).text()
    assert f'id="c-{cids[0]}"' in page
    actions = [r["action"] for r in await pool.fetch(
        "SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["comment.delete", "comment.restore"]


async def test_reopen_is_for_the_author_and_admins_and_audited(member_factory, pool):
    ann = await member_factory("ann")
    root = await member_factory("root", admin=True)
    bob = await member_factory("bob")
    rid = await _post_request(ann)
    await ann.post(f"/requests/{rid}/complete")
    r = await bob.post(f"/requests/{rid}/reopen", json_reply=True)
    assert r.status == 403 and (await r.json())["error"]["code"] == "cannot_reopen"
    assert "Reopen" not in await (await bob.client.get(f"/requests/{rid}")).text()
    # the author can undo a completion made by mistake
    assert "Reopen" in await (await ann.client.get(f"/requests/{rid}")).text()
    r = await ann.post(f"/requests/{rid}/reopen", json_reply=True)
    assert r.status == 200 and (await Q.get_request(pool, rid))["status"] == "open"
    await ann.post(f"/requests/{rid}/complete")
    await pool.execute("DELETE FROM audit_log WHERE action = 'request.reopen'")
    page = await (await root.client.get(f"/requests/{rid}")).text()
    assert "Reopen" in page
    r = await root.post(f"/requests/{rid}/reopen")
    assert r.status == 303
    row = await Q.get_request(pool, rid)
    assert row["status"] == "open" and row["completed_at"] is None
    audit = await pool.fetchrow("SELECT * FROM audit_log WHERE action='request.reopen'")
    assert audit["actor_id"] == root.user_id and audit["target"] == f"request:{rid}"


async def test_scope_toggle_owner_admin_and_bulk_page(member_factory, pool):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    root = await member_factory("root", admin=True)
    rid = await _post_request(ann)
    r = await bob.post(f"/requests/{rid}/scope", {"sync_scope": "public"}, json_reply=True)
    assert r.status == 403
    r = await ann.post(f"/requests/{rid}/scope", {"sync_scope": "public"}, json_reply=True)
    body = await r.json()
    assert body["request"]["sync_scope"] == "public" and "public · shared" in body["html"]
    assert body["target"] == f"req-{rid}"
    r = await ann.post(f"/requests/{rid}/scope", {"sync_scope": "bogus"})
    assert r.status == 400
    r = await ann.post(f"/requests/{rid}/comments", {"body": "note"})
    cid = r.headers["Location"].split("#c-")[1]
    page = await (await ann.client.get("/sync/scope")).text()
    assert f"request:{rid}" in page and f"comment:{cid}" in page
    assert f"user:{ann.user_id}" in page and f"user:{bob.user_id}" not in page
    r = await ann.post("/sync/scope", {"item": [f"comment:{cid}", f"user:{ann.user_id}"],
                                       "sync_scope": "public"})
    assert r.status == 303 and r.headers["Location"] == "/sync/scope?changed=2"
    assert await pool.fetchval("SELECT sync_scope FROM comments WHERE id=$1", cid) == "public"
    # bulk with one foreign record changes nothing
    r = await bob.post("/sync/scope", {"item": [f"user:{bob.user_id}", f"request:{rid}"],
                                       "sync_scope": "public"})
    assert r.status == 403
    assert await pool.fetchval("SELECT sync_scope FROM users WHERE id=$1",
                               bob.user_id) == "private"
    page = await (await root.client.get("/sync/scope")).text()
    assert f"user:{bob.user_id}" in page
    r = await root.post("/sync/scope", {"item": [f"request:{rid}"], "sync_scope": "private"})
    assert r.status == 303
    rows = await pool.fetch("SELECT actor_id, target, details FROM audit_log "
                            "WHERE action='scope.change' ORDER BY id")
    assert [r["target"] for r in rows] == [f"request:{rid}", f"comment:{cid}",
                                           f"user:{ann.user_id}", f"request:{rid}"]
    assert rows[-1]["actor_id"] == root.user_id


async def test_remote_records_read_only_but_commentable(member_factory, pool):
    ann = await member_factory("ann")
    root = await member_factory("root", admin=True)
    rid = await _insert(pool, None, title="From afar", origin="abcd1234",
                        instance="https://far.example")
    page = await (await root.client.get(f"/requests/{rid}")).text()
    assert "from https://far.example" in page
    assert "Mark as completed" not in page and "Make public" not in page
    r = await root.post(f"/requests/{rid}/complete", json_reply=True)
    assert r.status == 403
    r = await root.post(f"/requests/{rid}/scope", {"sync_scope": "public"}, json_reply=True)
    assert r.status == 403
    r = await ann.post(f"/requests/{rid}/comments", {"body": "I can help"}, json_reply=True)
    assert r.status == 201
    body = await (await ann.client.get(f"/api/requests/{rid}")).json()
    assert body["request"]["origin"]["instance"] == "https://far.example"


async def test_api_create_and_errors(member_factory, node_client):
    ann = await member_factory("ann")
    r = await ann.api_post("/api/requests", {"description": "Soup", "title": "Hungry",
                                             "sync_scope": "public",
                                             "contact_email": "a@b.co"})
    body = await r.json()
    assert r.status == 201
    req = body["request"]
    assert req["status"] == "open" and req["sync_scope"] == "public"
    assert req["creator"]["username"] == "ann" and req["contact_email"] == "a@b.co"
    assert req["can_complete"] is True and req["origin"] is None
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", req["created_at"])
    r = await ann.api_post("/api/requests", {"description": 5})
    assert r.status == 400
    r = await ann.client.post("/api/requests", data="[1]",
                              headers={"X-CSRF-Token": ann.csrf,
                                       "Content-Type": "application/json"})
    assert r.status == 400
    r = await ann.client.get("/api/requests/NOPE")
    assert r.status == 404 and (await r.json())["error"]["code"] == "request_not_found"


async def test_api_requires_login(node_client):
    r = await node_client.get("/api/requests")
    assert r.status == 401
    r = await node_client.get("/requests/01ARZ3NDEKTSV4RRFFQ69G5FAV", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].startswith("/login")
