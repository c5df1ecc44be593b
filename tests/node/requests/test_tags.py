"""Tags (#23): admins keep the list with contrast-checked colours, a request's author or
an admin tags it from the list, the feed filters by tag, bad input is a precise 400."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner

from node.tags import service as TS
from ops.cli import root
from service.ids import ulid


async def _request(pool, owner: str, title: str) -> str:
    rid = ulid()
    await pool.execute("INSERT INTO requests (id, title, description, created_by) "
                       "VALUES ($1, $2, 'x', $3)", rid, title, owner)
    return rid


@pytest.mark.parametrize("colour, text", [("#000080", "#ffffff"), ("#ffd700", "#000000"),
                                          ("#1F6FEB", "#ffffff")])
def test_text_colour_is_the_readable_one(colour, text):
    assert TS.parse_colour(colour) == (colour.lower(), text)


def test_every_colour_gets_text_reaching_aa():
    """Black or white, whichever is better, reaches 4.5:1 on any colour (the worst case,
    a mid grey, is about 4.58:1); a grid over the RGB cube checks the choice."""
    steps = range(0, 256, 17)
    worst = min(TS.text_colour_for(f"#{r:02x}{g:02x}{b:02x}")[1]
                for r in steps for g in steps for b in steps)
    assert worst >= TS.MIN_CONTRAST


async def test_admin_list_and_who_may_tag(member_factory, pool, aiohttp_client, node_client):
    admin = await member_factory("ada", admin=True)
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    waiting = await member_factory("wes", status="pending")
    anon = await aiohttp_client(node_client.server)
    token = (await (await anon.get("/api/csrf")).json())["csrf_token"]
    for client, csrf in ((anon, token), (waiting.client, waiting.csrf), (ann.client, ann.csrf)):
        r = await client.post("/admin/tags", data={"csrf_token": csrf, "name": "food",
                                                   "colour": "#000080"},
                              headers={"Accept": "application/json"}, allow_redirects=False)
        assert r.status in (401, 403)
    for client in (anon, waiting.client):
        for path in ("/api/tags", "/tags.css"):
            r = await client.get(path, headers={"Accept": "application/json"},
                                 allow_redirects=False)
            assert r.status in (401, 403), path
    assert await pool.fetchval("SELECT count(*) FROM community_tags") == 0

    r = await admin.post("/admin/tags", {"name": "food", "colour": "#000080"})
    assert r.status == 303
    r = await admin.post("/admin/tags", {"name": "transport", "colour": "#ffd700"},
                         json_reply=True)
    assert (await r.json())["tag"]["text_colour"] == "#000000"
    css = await (await ann.client.get("/tags.css")).text()
    assert ".tag-food{background:#000080;color:#ffffff}" in css

    rid = await _request(pool, ann.user_id, "Soup")
    r = await bob.post(f"/requests/{rid}/tags", {"tags": "food"}, json_reply=True)
    assert r.status == 403 and (await r.json())["error"]["code"] == "cannot_tag"
    r = await ann.post(f"/requests/{rid}/tags", {"tags": ["food", "transport"]})
    assert r.status == 303
    r = await admin.post(f"/requests/{rid}/tags", {"tags": ["food"]}, json_reply=True)
    assert (await r.json())["tags"] == ["food"]
    page = await (await ann.client.get(f"/requests/{rid}")).text()
    assert '<a class="tag tag-food" href="/?tag=food">' in page
    assert '<a class="tag tag-transport"' not in page  # only in the form's choices
    assert 'value="food" checked' in page and 'value="transport">' in page


async def test_feed_filters_by_tag(member_factory, pool):
    admin = await member_factory("ada", admin=True)
    for name, colour in (("food", "#000080"), ("garden", "#006400")):
        await admin.post("/admin/tags", {"name": name, "colour": colour})
    soup = await _request(pool, admin.user_id, "Soup")
    hoe = await _request(pool, admin.user_id, "Hoe")
    await admin.post(f"/requests/{soup}/tags", {"tags": "food"})
    await admin.post(f"/requests/{hoe}/tags", {"tags": "garden"})
    body = await (await admin.client.get("/api/requests?tag=food")).json()
    assert [r["id"] for r in body["requests"]] == [soup] and body["requests"][0]["tags"] == [
        "food"]
    html = await (await admin.client.get("/?tag=garden")).text()
    assert "Hoe" in html and "Soup" not in html
    html = await (await admin.client.get("/")).text()  # the shared cache keys on the tag
    assert "Hoe" in html and "Soup" in html


@pytest.mark.parametrize("form, code", [
    ({"name": "Bad Name", "colour": "#000080"}, "invalid_tag"),
    ({"name": "ok", "colour": "red"}, "invalid_colour"),
    ({"name": "ok", "colour": "#12345"}, "invalid_colour"),
])
async def test_bad_tags_are_a_precise_400(member_factory, pool, form, code):
    admin = await member_factory("ada", admin=True)
    r = await admin.post("/admin/tags", form, json_reply=True)
    assert r.status == 400 and (await r.json())["error"]["code"] == code
    r = await admin.post("/admin/tags", form)
    assert r.status == 400 and code in await r.text()
    assert await pool.fetchval("SELECT count(*) FROM community_tags") == 0


async def test_unknown_or_too_many_tags_write_nothing(member_factory, pool):
    admin = await member_factory("ada", admin=True)
    for i in range(6):
        await admin.post("/admin/tags", {"name": f"t{i}", "colour": "#000080"})
    rid = await _request(pool, admin.user_id, "Soup")
    r = await admin.post(f"/requests/{rid}/tags", {"tags": ["t0", "nope"]}, json_reply=True)
    assert r.status == 400 and (await r.json())["error"]["code"] == "unknown_tag"
    r = await admin.post(f"/requests/{rid}/tags", {"tags": [f"t{i}" for i in range(6)]},
                         json_reply=True)
    assert r.status == 400 and (await r.json())["error"]["code"] == "too_many_tags"
    assert await pool.fetchval("SELECT count(*) FROM request_tags") == 0


async def test_cli(node_db_url, tmp_path, pool):
    env = {"WB_DATABASE_URL": node_db_url, "WB_DATA_DIR": str(tmp_path / "n"),
           "SESSION_SECRET": "x"}

    def wb(*args):
        return CliRunner().invoke(root, list(args), env=env)

    r = await asyncio.to_thread(wb, "tags", "set", "food", "#000080", "--json")
    assert r.exit_code == 0, r.output
    r = await asyncio.to_thread(wb, "tags", "set", "grey", "grey")
    assert r.exit_code == 1 and "invalid_colour" in r.output
    r = await asyncio.to_thread(wb, "tags", "list")
    assert "food" in r.output and "grey" not in r.output
    r = await asyncio.to_thread(wb, "tags", "remove", "food")
    assert r.exit_code == 0
    assert await pool.fetchval("SELECT count(*) FROM community_tags") == 0


async def test_tags_travel_with_public_requests_as_a_header(member_factory, pool,
                                                           node_client):
    from node import typedefs as T
    from node.sync.service import run_export
    from protocol.containers import to_targz

    config = node_client.server.app[T.config_key]
    admin = await member_factory("ada", admin=True)
    await pool.execute("UPDATE users SET sync_scope = 'public' WHERE id = $1", admin.user_id)
    for name in ("food", "transport"):
        await admin.post("/admin/tags", {"name": name, "colour": "#000080"})
    public = await _request(pool, admin.user_id, "Soup run")
    await pool.execute("UPDATE requests SET sync_scope = 'public' WHERE id = $1", public)
    private = await _request(pool, admin.user_id, "Private soup")
    await admin.post(f"/requests/{public}/tags", {"tags": ["transport", "food"]})
    await admin.post(f"/requests/{private}/tags", {"tags": ["transport"]})
    res = await run_export(pool, config, snapshot=True)
    blob = res.envelope + to_targz(res.bundle)
    assert b"\nTags: food transport\n" in blob and b"Private soup" not in blob

    # a change of tags raises the revision, so the next delta carries it
    before = await pool.fetchval("SELECT revision FROM requests WHERE id = $1", public)
    await admin.post(f"/requests/{public}/tags", {"tags": ["food"]})
    assert await pool.fetchval("SELECT revision FROM requests WHERE id = $1", public) \
        == before + 1
    # re-saving the same set changes nothing
    await admin.post(f"/requests/{public}/tags", {"tags": ["food"]})
    assert await pool.fetchval("SELECT revision FROM requests WHERE id = $1", public) \
        == before + 1
    res = await run_export(pool, config)
    blob = res.envelope + to_targz(res.bundle)
    assert b"\nTags: food\n" in blob
    # deleting a tag from the list takes it off the header too
    await admin.post("/admin/tags/food/delete")
    assert await pool.fetchval("SELECT tags FROM requests WHERE id = $1", public) == ""
    res = await run_export(pool, config)
    assert b"Tags:" not in res.envelope + to_targz(res.bundle)
