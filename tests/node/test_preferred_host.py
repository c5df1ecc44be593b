"""PREFERRED_HOST (#20): one canonical address. Links use it; a page asked for under
another host answers 308 to it (health, metrics and the peer inbox excepted); no cookie is
set under another name; behind a proxy only a trusted X-Forwarded-Host counts."""

from __future__ import annotations

import asyncio
import re

import pytest
from click.testing import CliRunner

from node import typedefs as T
from node.auth import qr
from node.copilot import service as copilot
from ops.cli import root
from tests.conftest import make_node_config
from tests.factories import create_user, sign_in

PREF = "wb.example.org"


@pytest.fixture
def make_client(aiohttp_client, node_db_url, tmp_path):
    async def make(**overrides: str):
        from node.app import create_app

        config = make_node_config(node_db_url, tmp_path / "node", **overrides)
        return await aiohttp_client(create_app(config), headers={"Host": PREF})
    return make


async def _admin(client) -> tuple[str, str]:
    pool = client.server.app[T.pool_key]
    uid = await create_user(pool, "ada", admin=True)
    return uid, await sign_in(client, uid)


async def test_pages_under_another_host_redirect_308_keeping_path_and_method(make_client):
    client = await make_client(PREFERRED_HOST=PREF)
    _uid, csrf = await _admin(client)
    r = await client.get("/requests/abc?x=1&y=2", headers={"Host": "alias.example:8080"},
                         allow_redirects=False)
    assert r.status == 308 and r.headers["Location"] == f"http://{PREF}/requests/abc?x=1&y=2"
    # a POST keeps its method (308), and nothing is done or set under the alias
    r = await client.post("/auth/login", data={"username": "ada", "csrf_token": csrf},
                          headers={"Host": "alias.example"}, allow_redirects=False)
    assert r.status == 308 and "Set-Cookie" not in r.headers
    r = await client.post("/requests", data={"description": "x", "csrf_token": csrf},
                          headers={"Host": "ALIAS.example"}, allow_redirects=False)
    assert r.status == 308
    pool = client.server.app[T.pool_key]
    assert await pool.fetchval("SELECT count(*) FROM requests") == 0
    # the preferred host, in any case and with its default port, is served
    for host in (PREF, "WB.Example.org", f"{PREF}:80"):
        r = await client.get("/", headers={"Host": host}, allow_redirects=False)
        assert r.status == 200, host


async def test_health_metrics_and_peer_inbox_answer_under_any_host(make_client):
    client = await make_client(PREFERRED_HOST=PREF)
    for path in ("/healthz", "/readyz", "/metrics"):
        r = await client.get(path, headers={"Host": "10.0.0.7:8080"}, allow_redirects=False)
        assert r.status != 308, path
    r = await client.post("/sync/inbox", data=b"x", headers={"Host": "10.0.0.7"},
                          allow_redirects=False)
    assert r.status == 401  # reached the inbox (no hub token), not redirected


async def test_behind_a_proxy_only_a_trusted_forwarded_host_counts(make_client):
    trusted = await make_client(PREFERRED_HOST=PREF, WB_TRUST_PROXY="true",
                                SITE_URL="https://wb.example.org")
    r = await trusted.get("/", headers={"Host": "127.0.0.1:8080", "X-Forwarded-Host": PREF,
                                        "X-Forwarded-Proto": "https"}, allow_redirects=False)
    assert r.status == 200
    r = await trusted.get("/x", headers={"Host": "127.0.0.1:8080",
                                         "X-Forwarded-Host": "old.example.org"},
                          allow_redirects=False)
    assert r.status == 308 and r.headers["Location"] == f"https://{PREF}/x"
    untrusted = await make_client(PREFERRED_HOST=PREF)
    r = await untrusted.get("/", headers={"Host": "alias.example", "X-Forwarded-Host": PREF},
                            allow_redirects=False)
    assert r.status == 308  # a spoofed header does not make the alias canonical


async def test_invite_link_qr_shown_addresses_cli_and_copilot_use_the_preferred_host(
        make_client, node_db_url, tmp_path):
    client = await make_client(PREFERRED_HOST=PREF, SITE_URL="http://node.test")
    uid, csrf = await _admin(client)
    # the page's Origin (an address the creator happened to use) loses to PREFERRED_HOST
    r = await client.post("/auth/invites", data={"csrf_token": csrf, "max_uses": "1"},
                          headers={"Origin": f"http://{PREF}", "Host": PREF})
    html = await r.text()
    link = re.search(r'href="(http://[^"]+/register/[^"]+)"', html).group(1)
    assert link.startswith(f"http://{PREF}/register/")
    assert qr.svg_data_uri(link) in html  # the QR code encodes the same link
    r = await client.post("/auth/invites", json={"max_uses": 1},
                          headers={"X-CSRF-Token": csrf, "Origin": "http://192.168.1.5"})
    assert (await r.json())["link"].startswith(f"http://{PREF}/register/")
    # copilot tool
    app = client.server.app
    ctx = copilot.ToolContext(app[T.pool_key], app[T.config_key], uid, "web")
    res = await copilot.run_tool(ctx, "create_invite", {}, rate_limited=False)
    assert res["link"].startswith(f"http://{PREF}/register/")
    # CLI
    env = {"WB_DATABASE_URL": node_db_url, "WB_DATA_DIR": str(tmp_path / "node"),
           "SESSION_SECRET": "x", "SITE_URL": "http://node.test", "PREFERRED_HOST": PREF}
    out = await asyncio.to_thread(CliRunner().invoke, root,
                                  ["create-invite", "--by", "ada"], env=env)
    assert out.exit_code == 0, out.output
    assert out.output.strip().splitlines()[0].startswith(f"http://{PREF}/register/")


async def test_a_preferred_url_with_its_own_scheme_and_no_setting_keeps_todays_links(
        make_client):
    client = await make_client(PREFERRED_HOST="https://wb.example.org:8443")
    r = await client.get("/x", headers={"Host": "alias"}, allow_redirects=False)
    assert r.headers["Location"] == "https://wb.example.org:8443/x"
    plain = await make_client()
    _uid, csrf = await _admin(plain)
    r = await plain.post("/auth/invites", json={"max_uses": 1},
                         headers={"X-CSRF-Token": csrf, "Origin": "http://192.168.1.5:8080"})
    assert (await r.json())["link"].startswith("http://192.168.1.5:8080/register/")
    r = await plain.get("/", headers={"Host": "alias"}, allow_redirects=False)
    assert r.status == 200


async def test_feed_links_and_llms_txt_use_the_preferred_host(make_client):
    """Links that leave the site (a member's feed URL, /llms.txt, e-mails built from the
    same base) name the preferred host, not SITE_URL."""
    client = await make_client(PREFERRED_HOST=PREF)
    pool = client.server.app[T.pool_key]
    uid = await create_user(pool, "olga")
    csrf = await sign_in(client, uid)
    r = await client.post("/settings/notifications/feed", data={"csrf_token": csrf},
                          headers={"Accept": "application/json"})
    assert r.status == 200
    assert (await r.json())["feed_url"].startswith(f"http://{PREF}/feeds/mine.atom?token=")
    text = await (await client.get("/llms.txt")).text()
    assert f"http://{PREF}/feeds/requests.atom" in text and "node.test" not in text


def test_every_bearer_and_metrics_route_is_exempt_from_the_redirect():
    """A peer API route added later must answer under any host too."""
    from node.canonical import EXEMPT_ROUTES
    from node.policy import ROUTES
    from service.policy import Policy

    machine = {name for name, p in ROUTES.items() if p in (Policy.PEER, Policy.METRICS)}
    assert machine <= EXEMPT_ROUTES
    assert EXEMPT_ROUTES - machine <= {"healthz", "readyz", "mcp_get", "mcp_delete"}


async def test_the_mcp_endpoint_answers_under_any_host(make_client):
    client = await make_client(PREFERRED_HOST=PREF)
    r = await client.post("/mcp", json={}, headers={"Host": "10.0.0.7"},
                          allow_redirects=False)
    assert r.status == 401  # reached the bearer check, not redirected


async def test_cookies_exist_for_the_preferred_host_only(make_client):
    """No cookie is ever set under another name (it answers 308 first), and the cookies
    set under the preferred host are host-only (no Domain attribute)."""
    client = await make_client(PREFERRED_HOST=PREF)
    r = await client.get("/api/csrf", headers={"Host": "alias.example"},
                         allow_redirects=False)
    assert r.status == 308 and "Set-Cookie" not in r.headers
    r = await client.get("/login", headers={"Host": "alias.example"}, allow_redirects=False)
    assert r.status == 308 and "Set-Cookie" not in r.headers
    r = await client.get("/api/csrf")
    csrf = (await r.json())["csrf_token"]
    cookies = r.headers.getall("Set-Cookie")
    assert cookies and all("domain=" not in c.lower() for c in cookies)
    r = await client.post("/auth/register", json={"username": "ada"},
                          headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
    assert r.status == 201, await r.text()
    cookies = r.headers.getall("Set-Cookie")
    assert any(c.startswith("wb_session_id=") for c in cookies)
    assert all("domain=" not in c.lower() for c in cookies)


async def test_e_mails_link_to_the_preferred_host(aiohttp_client, node_db_url, tmp_path):
    from node.app import create_app
    from node.notifications import service as NS
    from tests.node.notifications.conftest import mail_config, run_outbox, start_relay

    relay, controller = start_relay()
    try:
        config = mail_config(node_db_url, tmp_path, relay, PREFERRED_HOST=PREF,
                             SITE_URL="http://node.test")
        client = await aiohttp_client(create_app(config), headers={"Host": PREF})
        app = client.server.app
        pool = app[T.pool_key]
        olga = await create_user(pool, "olga")
        await pool.execute("INSERT INTO notification_prefs (user_id, email, "
                           "email_confirmed_at, on_status) VALUES ($1, 'olga@example.org', "
                           "now(), true)", olga)
        await pool.execute("INSERT INTO requests (id, title, description, created_by, status) "
                           "VALUES ('R1', 'Ladder', 'roof', $1, 'completed')", olga)
        async with pool.acquire() as conn:
            await NS.request_status_changed(conn, "R1", None)
        await run_outbox(app)
        [msg] = relay.messages
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        for body in (text, html):
            assert f"http://{PREF}/requests/R1" in body and "node.test" not in body
        assert msg["List-Unsubscribe"].startswith(
            f"<http://{PREF}/notifications/unsubscribe?token=")
    finally:
        controller.stop()


async def test_without_a_preferred_host_the_cli_falls_back_to_site_url(node_db_url,
                                                                      tmp_path):
    env = {"WB_DATABASE_URL": node_db_url, "WB_DATA_DIR": str(tmp_path / "node"),
           "SESSION_SECRET": "x", "SITE_URL": "http://node.test"}
    runner = CliRunner()
    out = await asyncio.to_thread(runner.invoke, root, ["create-admin", "ada"], env=env)
    assert out.exit_code == 0, out.output
    out = await asyncio.to_thread(runner.invoke, root, ["create-invite", "--by", "ada"],
                                  env=env)
    assert out.exit_code == 0, out.output
    assert out.output.strip().splitlines()[0].startswith("http://node.test/register/")
