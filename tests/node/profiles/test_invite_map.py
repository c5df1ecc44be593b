"""Invite map: graph walk, anonymous nodes, depth validation, caching and invalidation."""

from __future__ import annotations

import re

import pytest

from node.profiles import invite_map
from tests.factories import create_user, sign_in

JSON = {"Accept": "application/json"}


async def _chain(pool):
    """g0(admin) → g1(public) → me → kid → grandkid → great(public);
    g1 → aunt → cousin(public); me → kid2; loner(public, unrelated). Others private;
    aunt and grandkid are disabled."""
    ids = {}
    ids["g0"] = await create_user(pool, "g0", admin=True)
    ids["g1"] = await create_user(pool, "g1", scope="public", invited_by=ids["g0"])
    ids["me"] = await create_user(pool, "me", invited_by=ids["g1"])
    ids["kid"] = await create_user(pool, "kid", invited_by=ids["me"])
    ids["kid2"] = await create_user(pool, "kid2", invited_by=ids["me"])
    ids["grandkid"] = await create_user(pool, "grandkid", invited_by=ids["kid"])
    ids["great"] = await create_user(pool, "great", scope="public",
                                   invited_by=ids["grandkid"])
    ids["aunt"] = await create_user(pool, "aunt", invited_by=ids["g1"])
    ids["cousin"] = await create_user(pool, "cousin", scope="public", invited_by=ids["aunt"])
    ids["loner"] = await create_user(pool, "loner", scope="public")
    # every live member is named to every member; disabled ones are drawn anonymously
    await pool.execute("UPDATE users SET disabled = true WHERE id = ANY($1)",
                       [ids["aunt"], ids["grandkid"]])
    return ids


def _names(body):
    return sorted(n["name"] for n in body["nodes"])


async def test_map_walks_both_directions_to_depth(node_client, node_pool):
    ids = await _chain(node_pool)
    await sign_in(node_client, ids["me"])
    body = await (await node_client.get("/invite/map?depth=1", headers=JSON)).json()
    assert body["depth"] == 1
    assert _names(body) == ["G1", "Kid", "Kid2", "Me"]
    body = await (await node_client.get("/invite/map", headers=JSON)).json()
    assert body["depth"] == 2
    # depth 2 adds g0 (up, up), aunt (up, down) and grandkid (down, down): every live
    # member is named to every member; a disabled one (aunt, grandkid) is anonymous.
    assert _names(body) == ["G0", "G1", "Kid", "Kid2", "Me", "member", "member"]
    body = await (await node_client.get("/invite/map?depth=3", headers=JSON)).json()
    names = _names(body)
    assert "Great" in names and "Cousin" in names and "Loner" not in names
    gens = {n["name"]: n["gen"] for n in body["nodes"] if n["username"]}
    assert gens["Me"] == 0 and gens["G1"] == -1 and gens["Great"] == 3
    assert gens["Cousin"] == 1  # g1 → aunt → cousin: three hops, one generation below me


async def test_anonymous_nodes_leak_nothing(node_client, node_pool):
    ids = await _chain(node_pool)
    await sign_in(node_client, ids["me"])
    body = await (await node_client.get("/invite/map?depth=3", headers=JSON)).json()
    anon = [n for n in body["nodes"] if n["username"] is None]
    assert len(anon) == 2 and {a["name"] for a in anon} == {"member"}
    assert sorted(a["gen"] for a in anon) == [0, 2]  # aunt, grandkid (disabled)
    assert set(anon[0]) == {"n", "gen", "dist", "parent", "self", "username", "name"}
    html = await (await node_client.get("/invite/map?depth=3")).text()
    svg = await (await node_client.get("/invite/map.svg?depth=3")).text()
    for text in (html, svg, str(body)):
        for hidden in ("aunt", "grandkid"):
            assert hidden not in text.lower()
            assert ids[hidden] not in text
    assert '<g class="anon">' in svg and ">member</text>" in svg
    assert 'href="/people/cousin"' in svg and 'href="/people/aunt"' not in svg


async def test_admin_map_names_everyone(node_client, node_pool):
    ids = await _chain(node_pool)
    await sign_in(node_client, ids["g0"])
    body = await (await node_client.get("/invite/map?depth=3", headers=JSON)).json()
    assert "member" not in _names(body)
    assert "Aunt" in _names(body)


async def test_svg_response_and_inline_page(node_client, node_pool):
    ids = await _chain(node_pool)
    await sign_in(node_client, ids["me"])
    r = await node_client.get("/invite/map.svg")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("image/svg+xml")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    svg = await r.text()
    assert svg.startswith("<svg xmlns=") and svg.endswith("</svg>")
    assert "<script" not in svg and "style=" not in svg
    html = await (await node_client.get("/invite/map")).text()
    assert "<svg xmlns=" in html and 'href="/people/kid"' in html
    # edges: one line per drawn parent link (7 nodes at depth 2, root g0 has no parent)
    assert len(re.findall(r"<line ", svg)) == 6


async def test_markup_in_names_is_escaped(node_client, node_pool):
    me = await create_user(node_pool, "me")
    kid = await create_user(node_pool, "kid", invited_by=me)
    await node_pool.execute(
        "UPDATE users SET display_name = '<script>alert(1)</script>' WHERE id = $1", kid)
    await sign_in(node_client, me)
    svg = await (await node_client.get("/invite/map.svg")).text()
    assert "<script" not in svg and "&lt;script&gt;" in svg


@pytest.mark.parametrize("bad", ["0", "4", "-1", "two", "1.5", "99999999999999999999"])
async def test_bad_depth_is_400(node_client, node_pool, bad):
    ids = await _chain(node_pool)
    await sign_in(node_client, ids["me"])
    r = await node_client.get(f"/invite/map?depth={bad}", headers=JSON)
    assert r.status == 400
    assert (await r.json())["error"]["code"] == "invalid_depth"
    r = await node_client.get(f"/invite/map.svg?depth={bad}")
    assert r.status == 400


async def test_cache_is_used_then_invalidated_by_new_invitee(node_client, node_pool):
    ids = await _chain(node_pool)
    await sign_in(node_client, ids["me"])
    first = await (await node_client.get("/invite/map?depth=1", headers=JSON)).json()
    assert first["cached"] is False
    again = await (await node_client.get("/invite/map?depth=1", headers=JSON)).json()
    assert again["cached"] is True and again["nodes"] == first["nodes"]
    assert await node_pool.fetchval(
        "SELECT count(*) FROM invite_map_cache WHERE viewer_id = $1", ids["me"]) == 1
    await create_user(node_pool, "newbie", invited_by=ids["me"])
    after = await (await node_client.get("/invite/map?depth=1", headers=JSON)).json()
    assert after["cached"] is False
    assert "Newbie" in _names(after)


async def test_cache_invalidated_by_visibility_change_but_not_bio(node_client, node_pool):
    ids = await _chain(node_pool)
    await sign_in(node_client, ids["me"])
    body = await (await node_client.get("/invite/map", headers=JSON)).json()
    assert _names(body).count("member") == 2
    await node_pool.execute("UPDATE users SET bio = 'hello' WHERE id = $1", ids["aunt"])
    assert (await (await node_client.get("/invite/map", headers=JSON)).json())["cached"]
    await node_pool.execute("UPDATE users SET disabled = false WHERE id = $1", ids["aunt"])
    body = await (await node_client.get("/invite/map", headers=JSON)).json()
    assert body["cached"] is False
    assert "Aunt" in _names(body) and _names(body).count("member") == 1
    await node_pool.execute("UPDATE users SET sync_scope = 'public' WHERE id = $1",
                            ids["aunt"])
    assert (await (await node_client.get("/invite/map", headers=JSON)).json())["cached"] \
        is False  # a scope change still rebuilds the map


async def test_cache_is_per_viewer(node_client, node_pool):
    ids = await _chain(node_pool)
    await sign_in(node_client, ids["g0"])
    admin_view = await (await node_client.get("/invite/map", headers=JSON)).json()
    node_client.session.cookie_jar.clear()
    await sign_in(node_client, ids["kid"])
    kid_view = await (await node_client.get("/invite/map", headers=JSON)).json()
    assert kid_view["cached"] is False
    assert _names(kid_view) != _names(admin_view)


async def test_refresh_stale_rebuilds_only_stale_maps(node_pool):
    ids = await _chain(node_pool)
    await invite_map.get_map(node_pool, viewer_id=ids["me"], is_admin=False, depth=1)
    await invite_map.get_map(node_pool, viewer_id=ids["g0"], is_admin=True, depth=2)
    assert await invite_map.refresh_stale(node_pool) == {"rebuilt": 0, "dropped": 0}
    await create_user(node_pool, "newbie", invited_by=ids["me"])
    await node_pool.execute("UPDATE users SET disabled = true WHERE id = $1", ids["g0"])
    assert await invite_map.refresh_stale(node_pool) == {"rebuilt": 1, "dropped": 1}
    cached = await invite_map.get_map(node_pool, viewer_id=ids["me"], is_admin=False, depth=1)
    assert cached["cached"] is True
    assert "Newbie" in [n["name"] for n in cached["nodes"]]


async def test_cli_refresh_and_clear(node_pool, node_config):
    import asyncio

    from click.testing import CliRunner

    from ops.cli import root

    ids = await _chain(node_pool)
    await invite_map.get_map(node_pool, viewer_id=ids["me"], is_admin=False, depth=1)
    await create_user(node_pool, "newbie", invited_by=ids["me"])

    env = {"WB_DATABASE_URL": node_config["WB_DATABASE_URL"],
           "WB_DATA_DIR": node_config["WB_DATA_DIR"]}
    def invoke(*args):
        return CliRunner().invoke(root, list(args), env=env, catch_exceptions=False)

    result = await asyncio.to_thread(invoke, "invite-map", "refresh")
    assert result.exit_code == 0, result.output
    assert "rebuilt: 1" in result.output
    result = await asyncio.to_thread(invoke, "invite-map", "refresh", "--clear")
    assert "cleared: 1" in result.output
    assert await node_pool.fetchval("SELECT count(*) FROM invite_map_cache") == 0


async def test_graph_version_bumps_once_per_changing_transaction(node_pool):
    ids = await _chain(node_pool)
    before = await node_pool.fetchval("SELECT version FROM invite_graph_version")
    async with node_pool.acquire() as conn, conn.transaction():
        await create_user(conn, "x1", invited_by=ids["me"])
        await create_user(conn, "x2", invited_by=ids["me"])
        await conn.execute("UPDATE users SET display_name = 'Kiddo' WHERE id = $1", ids["kid"])
        # not committed yet: readers still see the old version
        assert await node_pool.fetchval("SELECT version FROM invite_graph_version") == before
    assert await node_pool.fetchval("SELECT version FROM invite_graph_version") == before + 1
    # a no-op update of a drawn column and a bio edit do not invalidate maps
    await node_pool.execute("UPDATE users SET display_name = display_name, bio = 'x'")
    assert await node_pool.fetchval("SELECT version FROM invite_graph_version") == before + 1
    # a rolled back change does not bump either
    with pytest.raises(RuntimeError):
        async with node_pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE users SET sync_scope = 'public'")
            raise RuntimeError
    assert await node_pool.fetchval("SELECT version FROM invite_graph_version") == before + 1


async def test_refresh_stale_drops_idle_maps_instead_of_rebuilding(node_pool):
    ids = await _chain(node_pool)
    await invite_map.get_map(node_pool, viewer_id=ids["me"], is_admin=False, depth=2)
    await invite_map.get_map(node_pool, viewer_id=ids["kid"], is_admin=False, depth=2)
    await node_pool.execute("UPDATE invite_map_cache SET computed_at = now() - interval '8 days' "
                            "WHERE viewer_id = $1", ids["kid"])
    await create_user(node_pool, "newbie", invited_by=ids["me"])
    assert await invite_map.refresh_stale(node_pool) == {"rebuilt": 1, "dropped": 1}
    assert await node_pool.fetchval("SELECT array_agg(viewer_id) FROM invite_map_cache") == [
        ids["me"]]
