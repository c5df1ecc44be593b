"""wb doctor: findings on real data directories, databases and a local hub."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import os
from pathlib import Path

import asyncpg
from aiohttp import web

from ops import doctor as D
from service.ids import ulid
from tests.ops.conftest import node_env, wb


def healthy_data_dir(data_dir: Path) -> None:
    keys = data_dir / "keys"
    keys.mkdir(mode=0o700)
    fd = os.open(keys / "node.key", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"seed")
    os.close(fd)
    (keys / "node.key.pub").write_text("public half, readable by design\n")
    fd = os.open(data_dir / "session_secret", os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"0" * 64)
    os.close(fd)


def by_name(report: dict) -> dict[str, dict]:
    return {c["name"]: c for c in report["checks"]}


async def test_healthy_node_passes(node_db_url, data_dir):
    healthy_data_dir(data_dir)
    r = await wb(["doctor", "--json"], node_env(node_db_url, data_dir))
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["ok"] is True
    checks = by_name(report)
    assert checks["database"]["status"] == "ok"
    assert checks["migrations"]["status"] == "ok"
    assert checks["key files"]["status"] == "ok"
    assert "1 private key file(s), all owner-only" in checks["key files"]["message"]
    assert checks["session secret"]["status"] == "ok"
    assert checks["mail relay"]["status"] == "warn"  # no WB_SMTP_URL: no e-mail, said so
    assert not [c for c in report["checks"] if c["status"] == "fail"]


async def test_world_readable_key_fails_with_a_fix(node_db_url, data_dir):
    healthy_data_dir(data_dir)
    (data_dir / "keys" / "node.key").chmod(0o644)
    (data_dir / "old.key").write_bytes(b"x")
    (data_dir / "old.key").chmod(0o640)
    r = await wb(["doctor"], node_env(node_db_url, data_dir))
    assert r.exit_code == 1
    line = next(x for x in r.output.splitlines() if "key files" in x)
    assert line.startswith("fail")
    assert "keys/node.key (0o644)" in line and "old.key (0o640)" in line
    assert "chmod 600" in line
    assert "node.key.pub" not in line


async def test_unreachable_database_fails_and_explains(data_dir):
    env = node_env("postgresql://nobody@127.0.0.1:1/none", data_dir)
    r = await wb(["doctor", "--json"], env)
    assert r.exit_code == 1
    checks = by_name(json.loads(r.output))
    assert checks["database"]["status"] == "fail"
    assert "WB_DATABASE_URL" in checks["database"]["hint"]
    assert checks["migrations"]["status"] == "n/a"


async def test_migration_drift_is_reported(node_db_url, data_dir):
    conn = await asyncpg.connect(node_db_url)
    try:
        await conn.execute("DELETE FROM schema_migrations WHERE component = 'node' AND "
                           "version = (SELECT max(version) FROM schema_migrations "
                           "WHERE component = 'node')")
        r = await wb(["doctor", "--json"], node_env(node_db_url, data_dir))
        check = by_name(json.loads(r.output))["migrations"]
        assert check["status"] == "warn" and "1 pending" in check["message"]
        assert "wb init-db" in check["hint"]
        await conn.execute("INSERT INTO schema_migrations (component, version, name, checksum) "
                           "VALUES ('node', 9999, 'future', 'x')")
        r = await wb(["doctor", "--json"], node_env(node_db_url, data_dir))
        assert r.exit_code == 1
        check = by_name(json.loads(r.output))["migrations"]
        assert check["status"] == "fail" and "[9999]" in check["message"]
    finally:
        await conn.close()


def test_site_url_and_secret_checks(tmp_path):
    from tests.conftest import make_node_config

    def cfg(**kw: str):
        return make_node_config("postgresql://unused", tmp_path, **kw)

    assert D.check_site_url(cfg(SITE_URL="http://help.example.org")).status == "warn"
    assert D.check_mail_relay(cfg()).status == "warn"
    assert D.check_mail_relay(cfg(WB_SMTP_URL="http://mail.example.org")).status == "fail"
    ok = D.check_mail_relay(cfg(WB_SMTP_URL="smtps://u:hunter2@mail.example.org"))
    assert ok.status == "ok" and "hunter2" not in ok.message
    assert ok.message.startswith("smtps://mail.example.org:465, authenticated")
    assert D.check_site_url(cfg(SITE_URL="http://localhost:8080")).status == "ok"
    assert D.check_site_url(cfg(SITE_URL="https://help.example.org",
                                WB_TRUST_PROXY="true")).status == "ok"
    assert D.check_site_url(cfg(SITE_URL="help.example.org")).status == "fail"
    assert D.check_session_secret(cfg(SESSION_SECRET="short")).status == "warn"
    secret = tmp_path / "session_secret"
    secret.write_text("x" * 64)
    secret.chmod(0o644)
    check = D.check_session_secret(cfg(SESSION_SECRET=""))
    assert check.status == "fail" and "chmod 600" in check.hint
    assert D.check_disk_space(tmp_path, minimum=1 << 60).status == "warn"
    assert D.check_disk_space(tmp_path / "not" / "yet", minimum=1).status == "ok"


async def test_hubs_reachable_tokens_and_clock_skew(aiohttp_server, node_db_url, data_dir):
    skew = {"seconds": 0}
    good_token = "node-token-0123456789abcdef"

    async def healthz(request: web.Request) -> web.Response:
        when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=skew["seconds"])
        return web.json_response({"status": "ok"},
                                 headers={"Date": email.utils.format_datetime(when, usegmt=True)})

    async def subscriptions(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {good_token}":
            return web.json_response({"error": {"code": "unauthorized"}}, status=401)
        return web.json_response({"subscriptions": []})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v2/subscriptions", subscriptions)
    server = await aiohttp_server(app)
    hub_url = str(server.make_url("/")).rstrip("/")

    conn = await asyncpg.connect(node_db_url)
    try:
        # The sync engine's migration creates this table; a minimal stand-in keeps the test
        # meaningful on a checkout where that migration has not landed yet.
        await conn.execute("CREATE TABLE IF NOT EXISTS sync_peers (id text PRIMARY KEY, "
                           "name text NOT NULL, kind text NOT NULL, location text NOT NULL, "
                           "api text NOT NULL DEFAULT 'v2', token text)")
        cols = {r["column_name"] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'sync_peers'")}
        assert {"name", "kind", "location", "token"} <= cols, "sync_peers changed: update doctor"
        await conn.execute(
            "INSERT INTO sync_peers (id, name, kind, location, token) VALUES "
            "($1, 'main', 'hub', $2, $3), ($4, 'stale', 'hub', $2, 'old-token-0123456789'), "
            "($5, 'gone', 'hub', 'http://127.0.0.1:9', $3), "
            "($6, 'folder', 'dir', '/srv/bundles', NULL)",
            ulid(), hub_url, good_token, ulid(), ulid(), ulid())
    finally:
        await conn.close()

    env = node_env(node_db_url, data_dir)
    r = await wb(["doctor", "--json"], env)
    assert good_token not in r.output and "old-token" not in r.output
    checks = json.loads(r.output)["checks"]
    hubs = {c["name"]: c for c in checks if c["name"].startswith("hub ") and
            c["name"] != "hub token"}
    assert {n: c["status"] for n, c in hubs.items()} == {
        "hub main": "ok", "hub stale": "ok", "hub gone": "fail"}
    assert "unreachable" in hubs["hub gone"]["message"]
    tokens = sorted((c["status"], c["message"]) for c in checks if c["name"] == "hub token")
    assert tokens == [("fail", "stale does not know this node's token"),
                      ("ok", "main accepts this node's token")]
    skews = [c for c in checks if c["name"] == "clock skew"]
    assert [c["status"] for c in skews] == ["ok", "ok"]

    skew["seconds"] = -600
    checks = json.loads((await wb(["doctor", "--json"], env)).output)["checks"]
    skews = [c for c in checks if c["name"] == "clock skew"]
    assert {c["status"] for c in skews} == {"fail"}
    assert "ahead of main" in " ".join(c["message"] for c in skews)
    assert "NTP" in skews[0]["hint"]


async def test_v1_hub_peers_are_checked_through_their_status(aiohttp_server):
    """A peer on the original API (no /healthz) is checked with the same care: reachable,
    token, peer name, answer shape; against the fake original hub."""
    import aiohttp

    from tests.fakes.v1hub import FakeV1Hub

    fake = FakeV1Hub(tokens={"origa": "origa-token-0123456789"})
    url = str((await aiohttp_server(fake.app())).make_url("")).rstrip("/")
    cases = {
        D.HubPeer("origa", url, "origa-token-0123456789", False): ("ok", "ok", "holds no"),
        D.HubPeer("origa", url, "wrong-token-0123456789", False): ("ok", "fail", "token"),
        D.HubPeer("nobody", url, "origa-token-0123456789", False): ("ok", "fail",
                                                                    "no peer named"),
        D.HubPeer("origa", "http://127.0.0.1:9", "x" * 20, False): ("fail", None, "unreachable"),
    }
    async with aiohttp.ClientSession() as session:
        for peer, (reach, token, words) in cases.items():
            checks = await D.check_hub(session, peer)
            assert checks[0].status == reach, checks
            got = [c for c in checks if c.name == "hub token"]
            assert (got[0].status if got else None) == token, checks
            assert words in " ".join(c.message for c in checks), checks
    assert {s["route"] for s in fake.seen} == {"status"}
