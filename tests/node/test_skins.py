"""Skins (#20): every shipped skin passes the check, a broken one fails it, build writes
the fingerprinted files the pages link, WB_SKIN / member choice / admin preview decide
which one a page uses."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from click.testing import CliRunner

from node import typedefs as T
from node.skins import catalog
from ops.cli import root
from tests.conftest import make_node_config
from tests.factories import create_user, sign_in


def test_at_least_four_skins_ship_and_all_pass_the_check():
    skins = catalog.catalog()
    assert {"default", "dark", "high-contrast", "warm"} <= set(skins)
    for skin in skins.values():
        report = catalog.check(skin)
        assert report.ok, (skin.name, report.errors)
        assert all(c["ratio"] >= 4.5 for c in report.contrast)
    # the default and high contrast follow the device's colour scheme
    for name in ("default", "high-contrast"):
        schemes = {c["scheme"] for c in catalog.check(skins[name]).contrast}
        assert "dark" in schemes and "light" in schemes


@pytest.mark.parametrize("css, expected", [
    (":root { --fg: #000; } .x { color: red; ", "does not parse"),
    (":root { --fg: #000; --bg: #fff; }", "--surface is used but not defined"),
    (":root { --fg: #777777; --bg: #888888; }", "below WCAG AA"),
    (":root { --fg: #000; --bg: #fff; } @media (prefers-color-scheme: dark) "
     "{ :root { --fg: #111111; --bg: #000000; } }", "dark: --fg on --bg"),
    (":root { --fg: banana; --bg: #fff; }", "not a colour"),
])
def test_check_refuses_a_broken_skin(tmp_path, css, expected):
    path = tmp_path / "broken.css"
    path.write_text(css)
    result = CliRunner().invoke(root, ["skins", "check", "--file", str(path), "--json"])
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert body["ok"] is False
    assert any(expected in e for e in body["skins"][0]["errors"]), body


def test_build_writes_the_fingerprinted_files_the_node_links(tmp_path):
    result = CliRunner().invoke(root, ["skins", "build", "-o", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    files = json.loads(result.output)["files"]
    for name, skin in catalog.catalog().items():
        assert files[name] == skin.file_name and re.fullmatch(rf"{name}\.[0-9a-f]{{12}}\.css",
                                                               skin.file_name)
        assert (tmp_path / skin.file_name).read_bytes() == skin.css
    assert json.loads((tmp_path / "manifest.json").read_text()) == files


@pytest.fixture
async def skin_client(aiohttp_client, node_db_url, tmp_path):
    from node.app import create_app

    config = make_node_config(node_db_url, tmp_path / "node", WB_SKIN="warm")
    return await aiohttp_client(create_app(config))


def _href(html: str) -> str:
    return re.search(r'href="(/skins/[^"]+)" id="skin-css"', html).group(1)


async def test_wb_skin_member_choice_and_admin_preview(skin_client, aiohttp_client):
    skins = catalog.catalog()
    pool = skin_client.server.app[T.pool_key]
    ann = await create_user(pool, "ann")
    csrf = await sign_in(skin_client, ann)
    html = await (await skin_client.get("/")).text()
    assert _href(html) == skins["warm"].href  # WB_SKIN
    r = await skin_client.get(skins["warm"].href)
    assert r.status == 200 and r.headers["Cache-Control"].endswith("immutable")
    assert await r.read() == skins["warm"].css
    r = await skin_client.get("/skins/warm.000000000000.css")
    assert r.status == 404  # a stale fingerprint is never served as fresh

    # a member's choice (form, then JSON); unknown names are a 400 and change nothing
    r = await skin_client.post("/settings/skin", data={"skin": "dark", "csrf_token": csrf},
                               allow_redirects=False)
    assert r.status == 303
    assert _href(await (await skin_client.get("/")).text()) == skins["dark"].href
    r = await skin_client.post("/settings/skin", json={"skin": "../../etc/passwd"},
                               headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
    assert r.status == 400 and (await r.json())["error"]["code"] == "unknown_skin"
    assert await pool.fetchval("SELECT skin FROM member_skins WHERE user_id=$1", ann) == "dark"
    settings = await (await skin_client.get("/settings/account")).text()
    assert 'value="dark" checked' in settings
    # a member cannot "preview" (the query is ignored), an admin can, without saving it
    assert _href(await (await skin_client.get("/?skin=high-contrast")).text()) == \
        skins["dark"].href
    boss_client = await aiohttp_client(skin_client.server)
    boss = await create_user(pool, "boss", admin=True)
    await sign_in(boss_client, boss)
    html = await (await boss_client.get("/?skin=high-contrast")).text()
    assert _href(html) == skins["high-contrast"].href and 'id="skin-preview"' in html
    assert _href(await (await boss_client.get("/")).text()) == skins["warm"].href
    body = await (await boss_client.get("/admin/skins",
                                        headers={"Accept": "application/json"})).json()
    assert body["default"] == "warm"
    assert {r["name"]: r["members"] for r in body["skins"]}["dark"] == 1
    assert all(r["ok"] for r in body["skins"])
    # back to the node's default
    await skin_client.post("/settings/skin", json={"skin": "node"},
                           headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
    assert _href(await (await skin_client.get("/")).text()) == skins["warm"].href


async def test_wb_skins_set_for_a_member_and_for_the_node(node_db_url, tmp_path):
    env = {"WB_DATABASE_URL": node_db_url, "WB_DATA_DIR": str(tmp_path / "node"),
           "SESSION_SECRET": "x"}
    import asyncpg
    conn = await asyncpg.connect(node_db_url)
    try:
        await conn.execute("INSERT INTO users (id, username) VALUES ('u1', 'ann')")
        r = await asyncio.to_thread(CliRunner().invoke, root,
                                    ["skins", "set", "dark", "--user", "ann"], env=env)
        assert r.exit_code == 0, r.output
        assert await conn.fetchval("SELECT skin FROM member_skins") == "dark"
        r = await asyncio.to_thread(CliRunner().invoke, root,
                                    ["skins", "set", "nope", "--user", "ann"], env=env)
        assert r.exit_code == 1 and "unknown_skin" in r.output
    finally:
        await conn.close()
    env_file = tmp_path / "node.env"
    env_file.write_text("SITE_NAME=Ours\nWB_SKIN=dark\n")
    r = CliRunner().invoke(root, ["skins", "set", "high-contrast", "--env-file",
                                  str(env_file)])
    assert r.exit_code == 0, r.output
    assert env_file.read_text() == "SITE_NAME=Ours\nWB_SKIN=high-contrast\n"
    r = CliRunner().invoke(root, ["skins", "set", "neon", "--env-file", str(env_file)])
    assert r.exit_code == 1 and "unknown_skin" in r.output


def test_wb_skins_list_and_check_the_shipped_skins():
    """`wb skins list` names every shipped skin with WB_SKIN marked; `wb skins check`
    (no name: all of them) passes with the contrast coloraide computed; an unknown name
    is refused."""
    skins = catalog.catalog()
    r = CliRunner().invoke(root, ["skins", "list", "--json"], env={"WB_SKIN": "dark"})
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert body["default"] == "dark"
    assert {s["name"]: s["file"] for s in body["skins"]} == {
        n: s.file_name for n, s in skins.items()}
    assert [s["name"] for s in body["skins"] if s["default"]] == ["dark"]
    r = CliRunner().invoke(root, ["skins", "list"], env={"WB_SKIN": "dark"})
    assert r.exit_code == 0 and re.search(r"^\* dark\b", r.output, re.M)

    r = CliRunner().invoke(root, ["skins", "check", "--json"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.output)
    assert body["ok"] and {s["name"] for s in body["skins"]} == set(skins)
    for s in body["skins"]:
        assert s["contrast"] and all(c["ratio"] >= 4.5 for c in s["contrast"])
    r = CliRunner().invoke(root, ["skins", "check", "high-contrast"])
    assert r.exit_code == 0 and r.output.startswith("high-contrast: ok (lowest contrast")
    r = CliRunner().invoke(root, ["skins", "check", "neon"])
    assert r.exit_code == 1 and "unknown_skin" in r.output
