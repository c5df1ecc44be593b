"""Drafts of requests (#23): a member's own, invisible to everyone else (admins too), kept
unfinished, published exactly once (a double click or a race posts one request), refused
precisely when wrong, and never exported or fed."""

from __future__ import annotations

import asyncio

import pytest

from node import typedefs as T
from node.drafts import service as DS
from node.errors import AppError
from node.requests.service import Actor
from node.sync.service import run_export
from protocol.containers import to_targz

MARKER = "DRAFT-PRIVATE-MARKER-9e5"


async def _count(pool, table: str) -> int:
    return await pool.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 (fixed names)


async def test_save_edit_publish_flow_without_js(member_factory, pool):
    mel = await member_factory("mel")
    # "Save as draft" on the ask form: an unfinished request (no description) is fine
    r = await mel.post("/drafts", {"title": "Moving boxes"})
    assert r.status == 303
    location = r.headers["Location"]
    assert location.startswith("/drafts/") and location.endswith("?done=saved")
    draft_id = location.split("/")[2].split("?")[0]
    page = await (await mel.client.get(location)).text()
    assert "Draft saved" in page and 'value="Moving boxes"' in page
    assert await _count(pool, "requests") == 0

    # publishing an unfinished draft: the request's own checks, nothing written
    r = await mel.post(f"/drafts/{draft_id}/publish")
    assert r.status == 400 and "invalid_request" in await r.text()
    assert await _count(pool, "requests") == 0

    r = await mel.post(f"/drafts/{draft_id}", {"title": "Moving boxes",
                                               "description": "Ten boxes by Saturday",
                                               "then": "publish"})
    assert r.status == 303 and r.headers["Location"].startswith("/requests/")
    rid = r.headers["Location"].rsplit("/", 1)[1]
    row = await pool.fetchrow("SELECT * FROM requests WHERE id = $1", rid)
    assert row["created_by"] == mel.user_id and row["status"] == "open"
    assert row["description"] == "Ten boxes by Saturday" and row["sync_scope"] == "private"
    assert await _count(pool, "request_drafts") == 0
    # publishing again: the draft is gone, no second request
    r = await mel.post(f"/drafts/{draft_id}/publish", json_reply=True)
    assert r.status == 404 and (await r.json())["error"]["code"] == "draft_not_found"
    assert await _count(pool, "requests") == 1


async def test_nobody_else_sees_or_touches_a_draft(member_factory, pool, aiohttp_client,
                                                   node_client):
    mel = await member_factory("mel")
    admin = await member_factory("ada", admin=True)
    waiting = await member_factory("wes", status="pending")
    r = await mel.api_post("/api/drafts", {"title": f"Rent {MARKER}",
                                           "description": "behind on rent"})
    assert r.status == 201
    draft_id = (await r.json())["draft"]["id"]

    anon = await aiohttp_client(node_client.server)
    token = (await (await anon.get("/api/csrf")).json())["csrf_token"]
    for who, client, csrf in (("anonymous", anon, token),
                              ("unapproved", waiting.client, waiting.csrf),
                              ("admin", admin.client, admin.csrf)):
        for path in (f"/drafts/{draft_id}", "/drafts", "/api/drafts"):
            r = await client.get(path, headers={"Accept": "application/json"},
                                 allow_redirects=False)
            assert MARKER not in await r.text(), (who, path)
        for path, form in ((f"/drafts/{draft_id}", {"title": "hijacked"}),
                           (f"/drafts/{draft_id}/publish", {}),
                           (f"/drafts/{draft_id}/delete", {})):
            r = await client.post(path, data={"csrf_token": csrf, **form},
                                  headers={"Accept": "application/json"},
                                  allow_redirects=False)
            assert r.status in (401, 403, 404), (who, path, r.status)
    # the admin's own attempt is a 404, exactly like a draft that does not exist
    r = await admin.post(f"/drafts/{draft_id}/publish", json_reply=True)
    assert r.status == 404 and (await r.json())["error"]["code"] == "draft_not_found"
    row = await pool.fetchrow("SELECT title FROM request_drafts WHERE id = $1", draft_id)
    assert row["title"] == f"Rent {MARKER}"
    assert await _count(pool, "requests") == 0
    # its owner sees it in the list and the JSON API
    body = await (await mel.client.get("/api/drafts")).json()
    assert [d["id"] for d in body["drafts"]] == [draft_id]


@pytest.mark.parametrize("payload, code", [
    ({}, "invalid_draft"), ({"title": "x" * 201}, "invalid_draft"),
    ({"title": "ok", "sync_scope": "everyone"}, "invalid_draft"),
    ({"title": ["a"]}, "invalid_field"),
])
async def test_bad_drafts_are_a_precise_400(member_factory, pool, payload, code):
    mel = await member_factory("mel")
    r = await mel.api_post("/api/drafts", payload)
    assert r.status == 400 and (await r.json())["error"]["code"] == code
    assert await _count(pool, "request_drafts") == 0


async def test_draft_limit_and_concurrent_publish(member_factory, pool, monkeypatch):
    mel = await member_factory("mel")
    actor = Actor(mel.user_id, False, True)
    monkeypatch.setattr(DS, "MAX_DRAFTS", 2)
    results = await asyncio.gather(*(DS.save(pool, actor, {"title": f"T{i}"})
                                     for i in range(4)), return_exceptions=True)
    assert sum(isinstance(r, AppError) and r.code == "draft_limit" for r in results) == 2
    assert await _count(pool, "request_drafts") == 2

    draft = await DS.save(pool, Actor(mel.user_id, False, True), {"title": "Once",
                                                                   "description": "only once"},
                          (await DS.mine(pool, actor))[0]["id"])
    results = await asyncio.gather(*(DS.publish(pool, actor, draft["id"]) for _ in range(3)),
                                   return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(r.code == "draft_not_found" for r in results if isinstance(r, AppError))
    assert await pool.fetchval("SELECT count(*) FROM requests WHERE title = 'Once'") == 1


async def test_a_draft_never_leaves_the_node(member_factory, pool, node_client):
    mel = await member_factory("mel")
    await pool.execute("UPDATE users SET sync_scope = 'public' WHERE id = $1", mel.user_id)
    r = await mel.api_post("/api/drafts", {"title": f"Draft {MARKER}", "sync_scope": "public",
                                           "description": f"body {MARKER}"})
    assert r.status == 201
    r = await mel.api_post("/api/requests", {"title": "Public ladder", "description": "x",
                                             "sync_scope": "public"})
    assert r.status == 201
    res = await run_export(pool, node_client.server.app[T.config_key], snapshot=True)
    blob = res.envelope + to_targz(res.bundle)
    assert b"Public ladder" in blob and MARKER.encode() not in blob
    for path in ("/feeds/requests.atom", "/", "/api/requests?status=all"):
        body = await (await mel.client.get(path)).text()
        assert MARKER not in body, path
