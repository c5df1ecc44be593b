"""Recurring request templates on the web (#23): only house managers and admins keep them
(anonymous, an unapproved device, a plain member and a reviewer are refused on every
route), a house manager sees only their own, CSRF-less posts change nothing, bad cadence
fields are a precise 400 that writes nothing, and a template never leaves the node."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from node import typedefs as T
from node.copilot import service as copilot
from node.recurring import service as S
from node.sync.service import run_export
from protocol.containers import to_targz

MARKER = "RECURRING-PRIVATE-MARKER-4b1"
GOOD = {"title": "Bins out", "description": "Take the bins to the kerb", "cadence": "weekly",
        "weekdays": ["mon", "thu"], "time_of_day": "07:30", "mode": "draft"}


async def _count(pool, table: str) -> int:
    return await pool.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608 (fixed names)


async def _grant(pool, user_id: str, role: str) -> None:
    await pool.execute("INSERT INTO member_roles (user_id, role) VALUES ($1, $2)", user_id, role)


@pytest.fixture
async def people(member_factory, pool, aiohttp_client, node_client):
    hana = await member_factory("hana")
    await _grant(pool, hana.user_id, "house_manager")
    other = await member_factory("omar")
    await _grant(pool, other.user_id, "house_manager")
    rita = await member_factory("rita")
    await _grant(pool, rita.user_id, "reviewer")
    mel = await member_factory("mel")
    ada = await member_factory("ada", admin=True)
    wes = await member_factory("wes", status="pending")
    await _grant(pool, wes.user_id, "house_manager")  # a role does not open a pending device
    anon = await aiohttp_client(node_client.server)
    token = (await (await anon.get("/api/csrf")).json())["csrf_token"]
    return {"hana": hana, "omar": other, "rita": rita, "mel": mel, "ada": ada, "wes": wes,
            "anon": (anon, token), "pool": pool}


def _who(people, name):
    if name == "anon":
        return people["anon"]
    m = people[name]
    return m.client, m.csrf


async def test_create_edit_pause_resume_delete_without_js(people, pool):
    hana = people["hana"]
    r = await hana.post("/recurring", {**GOOD, "weekdays": "mon"})
    assert r.status == 303, await r.text()
    loc = r.headers["Location"]
    assert loc.startswith("/recurring/") and loc.endswith("?done=saved")
    tid = loc.split("/")[2].split("?")[0]
    page = await (await hana.client.get(loc)).text()
    assert "Saved" in page and 'value="Bins out"' in page and "Nothing yet" in page
    row = await pool.fetchrow("SELECT * FROM recurring_templates WHERE id = $1", tid)
    assert row["owner_id"] == hana.user_id and list(row["weekdays"]) == [1]
    assert row["sync_scope"] == "private" and row["time_of_day"] == dt.time(7, 30)

    # edit with a form that repeats the weekdays field (checkboxes)
    body = [(k, v) for k, v in GOOD.items() if k != "weekdays"]
    body += [("weekdays", "tue"), ("weekdays", "fri"), ("csrf_token", hana.csrf)]
    r = await hana.client.post(f"/recurring/{tid}", data=body, allow_redirects=False)
    assert r.status == 303
    assert list(await pool.fetchval("SELECT weekdays FROM recurring_templates WHERE id = $1",
                                    tid)) == [2, 5]
    r = await hana.post(f"/recurring/{tid}/pause")
    assert r.status == 303 and r.headers["Location"].endswith("done=paused")
    assert await pool.fetchval("SELECT paused FROM recurring_templates WHERE id = $1", tid)
    page = await (await hana.client.get(f"/recurring/{tid}")).text()
    assert "Paused." in page and "Resume" in page
    r = await hana.post(f"/recurring/{tid}/resume", json_reply=True)
    assert r.status == 200 and (await r.json())["template"]["paused"] is False
    listing = await (await hana.client.get("/api/recurring")).json()
    assert [t["id"] for t in listing["templates"]] == [tid]
    assert listing["templates"][0]["weekdays"] == ["tue", "fri"]
    assert listing["templates"][0]["next_occurrence"] is not None
    r = await hana.post(f"/recurring/{tid}/delete")
    assert r.status == 303 and r.headers["Location"] == "/recurring?done=deleted"
    assert await _count(pool, "recurring_templates") == 0


async def test_json_api_and_the_log(people, pool, node_client):
    hana = people["hana"]
    r = await hana.api_post("/api/recurring", {**GOOD, "cadence": "daily", "mode": "publish",
                                               "weekdays": [1, "Thursday"]})
    assert r.status == 201
    body = await r.json()
    tid = body["template"]["id"]
    assert body["template"]["mode"] == "publish" and body["log"] == []
    assert body["template"]["time_zone"] == "UTC"
    assert body["template"]["weekdays"] == []  # weekdays belong to a weekly cadence only
    r = await hana.client.post(f"/recurring/{tid}", json={**GOOD, "weekdays": [1, "Thursday"]},
                               headers={"X-CSRF-Token": hana.csrf, "Accept": "application/json"})
    assert r.status == 200 and (await r.json())["template"]["weekdays"] == ["mon", "thu"]
    r = await hana.client.post(f"/recurring/{tid}", json={**GOOD, "cadence": "daily",
                                                          "mode": "publish"},
                               headers={"X-CSRF-Token": hana.csrf, "Accept": "application/json"})
    assert r.status == 200
    created = await pool.fetchval("SELECT anchor_at FROM recurring_templates WHERE id = $1",
                                  tid)
    await S.materialise_due(pool, node_client.server.app[T.config_key],
                            created + dt.timedelta(days=1))
    detail = await (await hana.client.get(f"/api/recurring/{tid}")).json()
    [entry] = detail["log"]
    assert entry["outcome"] == "request" and entry["request_id"]
    page = await (await hana.client.get(f"/recurring/{tid}")).text()
    assert f'/requests/{entry["request_id"]}' in page


ROUTES = [("GET", "/recurring"), ("GET", "/api/recurring"), ("POST", "/recurring"),
          ("POST", "/api/recurring"), ("GET", "/recurring/{id}"),
          ("GET", "/api/recurring/{id}"), ("POST", "/recurring/{id}"),
          ("POST", "/recurring/{id}/pause"), ("POST", "/recurring/{id}/resume"),
          ("POST", "/recurring/{id}/delete")]


@pytest.mark.parametrize("who, expected", [
    ("anon", {401}), ("wes", {403}), ("mel", {403}), ("rita", {403}),
    ("omar", {404}),  # another house manager: the template does not exist for them
])
async def test_every_route_refuses_who_may_not(people, pool, who, expected):
    hana = people["hana"]
    r = await hana.api_post("/api/recurring", {**GOOD, "title": f"Rent {MARKER}"})
    tid = (await r.json())["template"]["id"]
    client, csrf = _who(people, who)
    for method, path in ROUTES:
        path = path.format(id=tid)
        if who == "omar" and path in ("/recurring", "/api/recurring"):
            continue  # a house manager may list and create their own
        headers = {"Accept": "application/json", "X-CSRF-Token": csrf}
        # bad fields too: refused for who asks, before any field is looked at
        kw = {"json": {**GOOD, "title": "hijacked", "cadence": "hourly"}} \
            if method == "POST" else {}
        r = await client.request(method, path, headers=headers, allow_redirects=False, **kw)
        text = await r.text()
        assert r.status in expected, (who, method, path, r.status, text)
        assert MARKER not in text, (who, path)
    row = await pool.fetchrow("SELECT * FROM recurring_templates WHERE id = $1", tid)
    assert row["title"] == f"Rent {MARKER}" and not row["paused"]
    assert await _count(pool, "recurring_templates") == 1
    if who in ("mel", "rita"):
        r = await client.get("/recurring", headers={"Accept": "application/json"})
        assert (await r.json())["error"]["code"] == "house_manager_only"


async def test_a_house_manager_lists_only_their_own_and_an_admin_everything(people):
    hana, omar, ada = people["hana"], people["omar"], people["ada"]
    a = (await (await hana.api_post("/api/recurring", GOOD)).json())["template"]["id"]
    b = (await (await omar.api_post("/api/recurring", GOOD)).json())["template"]["id"]
    assert [t["id"] for t in (await (await hana.client.get("/api/recurring")).json())[
        "templates"]] == [a]
    every = (await (await ada.client.get("/api/recurring")).json())["templates"]
    assert {t["id"] for t in every} == {a, b}
    # an admin manages anyone's template
    r = await ada.post(f"/recurring/{b}/pause", json_reply=True)
    assert r.status == 200 and (await r.json())["template"]["paused"] is True
    audit = await people["pool"].fetchrow("SELECT * FROM audit_log WHERE action = "
                                          "'recurring.pause'")
    assert audit["actor_id"] == ada.user_id and audit["target"] == f"recurring:{b}"
    # the owner's own changes are theirs to make, not audited
    await hana.post(f"/recurring/{a}/pause")
    assert await people["pool"].fetchval("SELECT count(*) FROM audit_log WHERE action "
                                         "LIKE 'recurring.%'") == 1
    r = await ada.api_post("/api/recurring", GOOD)
    assert r.status == 201


async def test_csrf_less_posts_change_nothing(people, pool):
    hana = people["hana"]
    tid = (await (await hana.api_post("/api/recurring", GOOD)).json())["template"]["id"]
    for path in ("/recurring", "/api/recurring", f"/recurring/{tid}",
                 f"/recurring/{tid}/pause", f"/recurring/{tid}/delete"):
        r = await hana.client.post(path, data={**GOOD, "title": "forged"},
                                   headers={"Accept": "application/json"},
                                   allow_redirects=False)
        assert r.status == 403, (path, r.status)
        assert (await r.json())["error"]["code"].startswith("csrf"), path
    row = await pool.fetchrow("SELECT * FROM recurring_templates")
    assert row["title"] == "Bins out" and not row["paused"]
    assert await _count(pool, "recurring_templates") == 1


@pytest.mark.parametrize("patch, code, field", [
    ({"cadence": "hourly"}, "invalid_cadence", "cadence"),
    ({"cadence": ""}, "invalid_cadence", "cadence"),
    ({"weekdays": []}, "invalid_weekdays", "weekdays"),
    ({"weekdays": ["funday"]}, "invalid_weekdays", "weekdays"),
    ({"weekdays": ["8"]}, "invalid_weekdays", "weekdays"),
    ({"cadence": "monthly", "month_day": "32"}, "invalid_month_day", "month_day"),
    ({"cadence": "monthly", "month_day": "0"}, "invalid_month_day", "month_day"),
    ({"cadence": "monthly"}, "invalid_month_day", "month_day"),
    ({"time_of_day": "24:00"}, "invalid_time_of_day", "time_of_day"),
    ({"time_of_day": "8am"}, "invalid_time_of_day", "time_of_day"),
    ({"time_of_day": ""}, "invalid_time_of_day", "time_of_day"),
    ({"mode": "shout"}, "invalid_mode", "mode"),
    ({"description": ""}, "invalid_recurring", "description"),
    ({"title": "x" * 201}, "invalid_recurring", "title"),
    ({"sync_scope": "everyone"}, "invalid_recurring", "sync_scope"),
    ({"contact_email": "not-an-address"}, "invalid_recurring", "contact_email"),
    ({"tags": ["nope"]}, "unknown_tag", "tags"),
    ({"tags": "NOT A TAG"}, "invalid_tag", "name"),
    ({"weekdays": {"a": 1}}, "invalid_field", "weekdays"),
])
async def test_bad_fields_are_a_precise_400_and_change_nothing(people, pool, patch, code,
                                                                field):
    hana = people["hana"]
    r = await hana.api_post("/api/recurring", {**GOOD, **patch})
    body = await r.json()
    assert r.status == 400 and body["error"]["code"] == code, body
    assert field in body["error"].get("fields", {}), body
    assert await _count(pool, "recurring_templates") == 0
    # the same on an edit: the template stays as it was
    tid = (await (await hana.api_post("/api/recurring", GOOD)).json())["template"]["id"]
    before = await pool.fetchrow("SELECT * FROM recurring_templates WHERE id = $1", tid)
    r = await hana.client.post(f"/recurring/{tid}", json={**GOOD, **patch},
                               headers={"X-CSRF-Token": hana.csrf,
                                        "Accept": "application/json"})
    assert r.status == 400 and (await r.json())["error"]["code"] == code
    assert await pool.fetchrow("SELECT * FROM recurring_templates WHERE id = $1", tid) == before


async def test_a_bad_form_is_shown_again_with_its_errors(people, pool):
    hana = people["hana"]
    r = await hana.post("/recurring", {**GOOD, "weekdays": "", "time_of_day": "25:00"})
    assert r.status == 400
    page = await r.text()
    assert "Choose at least one day" in page and "A time of day" in page
    assert 'value="Bins out"' in page and "invalid_weekdays" in page
    assert await _count(pool, "recurring_templates") == 0


async def test_public_scope_passes_the_same_gate(people, pool, node_client):
    hana = people["hana"]
    await pool.execute("UPDATE node_public_scope SET mode = 'off'")
    r = await hana.api_post("/api/recurring", {**GOOD, "sync_scope": "public"})
    assert r.status == 403 and (await r.json())["error"]["code"] == "public_scope_off"
    assert await _count(pool, "recurring_templates") == 0
    # mode admins: a house manager's public template files a publication request each time
    await pool.execute("UPDATE node_public_scope SET mode = 'admins'")
    r = await hana.api_post("/api/recurring", {**GOOD, "cadence": "daily", "mode": "publish",
                                               "sync_scope": "public"})
    assert r.status == 201
    anchor = await pool.fetchval("SELECT anchor_at FROM recurring_templates")
    await S.materialise_due(pool, node_client.server.app[T.config_key],
                            anchor + dt.timedelta(days=1))
    req = await pool.fetchrow("SELECT * FROM requests")
    assert req["sync_scope"] == "private"
    assert await pool.fetchval("SELECT count(*) FROM publication_requests WHERE "
                               "record_id = $1 AND status = 'pending'", req["id"]) == 1
    # turned off later: the occurrence is made private, and the log says so
    await pool.execute("UPDATE node_public_scope SET mode = 'off'")
    await S.materialise_due(pool, node_client.server.app[T.config_key],
                            anchor + dt.timedelta(days=2))
    notes = [r["note"] for r in await pool.fetch("SELECT note FROM recurring_occurrences "
                                                 "ORDER BY occurrence_start")]
    assert "SYNC_PUBLIC_SCOPE=off" in notes[-1]
    assert await pool.fetchval("SELECT count(*) FROM requests WHERE sync_scope = 'public'") == 0


async def test_a_template_never_leaves_the_node(people, pool, node_client):
    hana = people["hana"]
    await pool.execute("UPDATE users SET sync_scope = 'public' WHERE id = $1", hana.user_id)
    r = await hana.api_post("/api/recurring", {**GOOD, "title": f"Weekly {MARKER}",
                                               "description": f"body {MARKER}",
                                               "sync_scope": "public", "mode": "draft"})
    assert r.status == 201
    r = await hana.api_post("/api/requests", {"title": "Public ladder", "description": "x",
                                              "sync_scope": "public"})
    assert r.status == 201
    app = node_client.server.app
    res = await run_export(pool, app[T.config_key], snapshot=True)
    blob = res.envelope + to_targz(res.bundle)
    assert b"Public ladder" in blob and MARKER.encode() not in blob
    for path in ("/feeds/requests.atom", "/", "/api/requests?status=all", "/members"):
        body = await (await hana.client.get(path)).text()
        assert MARKER not in body, path
    # a draft made from it stays private to its owner until published
    anchor = await pool.fetchval("SELECT anchor_at FROM recurring_templates")
    await S.materialise_due(pool, app[T.config_key], anchor + dt.timedelta(days=8))
    assert await pool.fetchval("SELECT count(*) FROM request_drafts WHERE title LIKE $1",
                               f"%{MARKER}%") == 1
    res = await run_export(pool, app[T.config_key], snapshot=True)
    assert MARKER.encode() not in res.envelope + to_targz(res.bundle)
    # nor do the copilot's read tools see the template (or the draft it made)
    ctx = copilot.ToolContext(pool, app[T.config_key], people["ada"].user_id, "web")
    for tool in ("triage_requests", "suggest_scope_changes", "sync_preview"):
        result = await copilot.run_tool(ctx, tool, {}, rate_limited=False)
        assert MARKER not in json.dumps(result, default=str), tool


@pytest.mark.parametrize("raw, code", [
    (b"{not json", "invalid_json"), (b"[1, 2]", "invalid_json"),
    (b'{"title": "a\\u0000b", "description": "x", "cadence": "daily", '
     b'"time_of_day": "08:00"}', "invalid_characters"),
])
async def test_malformed_bodies_are_a_clear_400(people, pool, raw, code):
    hana = people["hana"]
    r = await hana.client.post("/api/recurring", data=raw,
                               headers={"X-CSRF-Token": hana.csrf,
                                        "Content-Type": "application/json"})
    assert r.status == 400 and (await r.json())["error"]["code"] == code
    assert await _count(pool, "recurring_templates") == 0
