"""Direct messages never leave the node (#23): a unique marker written into messages (and a
report's reason) is absent from sync exports, from what a real hub on loopback stores and
serves, from the public and member feeds, from every copilot tool's raw result and from the
captured log records; the admin CLI shows only the reported message."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets

from click.testing import CliRunner

from hub import queries as HQ
from hub import typedefs as HT
from hub.app import create_app as create_hub_app
from node import typedefs as T
from node.copilot import service as CS
from node.sync import peers as P
from node.sync import transport as TR
from node.sync.identity import load_or_create_key
from node.sync.service import our_origin, run_export
from ops.cli import root
from protocol.containers import to_targz
from service.ids import token_hash
from tests.hub.conftest import make_hub_config
from tests.node.copilot.helpers import ctx_of

MARKER = "DM-NEVER-LEAVES-7b2e"
REPORTED = "DM-REPORTED-ONLY-3f1a"


def _everything(record: logging.LogRecord) -> str:
    return record.getMessage() + " " + " ".join(repr(v) for v in vars(record).values())


async def _seed(member_factory, pool):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    await pool.execute("UPDATE users SET sync_scope = 'public'")
    r = await ann.api_post("/api/requests", {"title": "Public ladder", "description": "x",
                                             "sync_scope": "public"})
    assert r.status == 201
    r = await ann.api_post("/api/messages", {"to": "bob", "body": f"hello {MARKER}"})
    assert r.status == 201
    tid = (await r.json())["message"]["conversation_id"]
    r = await bob.api_post(f"/messages/{tid}", {"body": f"reply {MARKER}"})
    assert r.status == 201
    r = await ann.api_post(f"/messages/{tid}", {"body": f"rude {REPORTED}"})
    mid = (await r.json())["message"]["id"]
    r = await bob.post("/messages/report", {"message_id": mid, "reason": f"why {MARKER}"},
                       json_reply=True)
    assert r.status == 201
    return ann, bob, tid


async def test_exports_the_hub_feeds_and_copilot_never_see_a_message(
        member_factory, pool, node_client, aiohttp_client, hub_db_url, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    ann, bob, tid = await _seed(member_factory, pool)
    app = node_client.server.app
    config = app[T.config_key]
    markers = (MARKER.encode(), REPORTED.encode())

    # sync exports: a snapshot and a delta
    for snapshot in (True, False):
        res = await run_export(pool, config, snapshot=snapshot)
        if res.bundle is None:
            continue
        blob = res.envelope + to_targz(res.bundle)
        assert all(m not in blob for m in markers), snapshot
        if snapshot:
            assert b"Public ladder" in blob  # the export did run over this community

    # a real hub on loopback, pushed to
    hub = await aiohttp_client(create_hub_app(make_hub_config(hub_db_url, tmp_path / "hub")))
    hub_pool = hub.server.app[HT.pool_key]
    token = secrets.token_urlsafe(16)
    key = load_or_create_key(config)
    origin = await our_origin(pool, config)
    await HQ.add_peer(hub_pool, "alpha", "node", token_hash(token))
    await HQ.trust_key(hub_pool, origin, key.key_id, key.public_key, "alpha")
    await P.add_peer(pool, "hub", "hub", str(hub.make_url("")).rstrip("/"), token=token)
    out = await TR.push(pool, config, "hub")
    assert out.bundles >= 1
    stored = await hub_pool.fetch("SELECT container FROM hub_bundles")
    index = await hub_pool.fetch("SELECT body FROM hub_records")
    everything = b"".join(bytes(r["container"]) for r in stored) + "".join(
        r["body"] or "" for r in index).encode()
    assert b"Public ladder" in everything
    assert all(m not in everything for m in markers)
    for path in ("/api/v2/records", "/"):
        text = (await (await hub.get(path)).text()).encode()
        assert all(m not in text for m in markers), path

    # feeds: the public one and a member's secret one; the public pages
    r = await ann.post("/settings/notifications/feed", json_reply=True)
    feed_url = (await r.json())["feed_url"]
    for path in ("/feeds/requests.atom", feed_url.split("node.test", 1)[1], "/llms.txt",
                 "/", "/api/requests?status=all", f"/people/{ann.username}"):
        for who in (ann, bob):
            text = await (await who.client.get(path)).text()
            assert MARKER not in text and REPORTED not in text, path

    # every copilot tool, raw (before its egress gate), as the admin
    admin = await member_factory("ada", admin=True)
    ctx = ctx_of(app, admin.user_id)
    ran = 0
    for name, tool in CS.TOOLS.items():
        if tool.mutating:
            continue
        for args in ({}, {"snapshot": True} if name == "sync_preview" else {"limit": 100}):
            raw = await CS.run_tool(ctx, name, args, rate_limited=False)
            text = json.dumps(raw, default=str)
            assert MARKER not in text and REPORTED not in text, name
            ran += 1
    assert ran >= 6

    # no log record carries a body (or a report's reason)
    assert caplog.records
    assert any(r.getMessage() == "message sent" for r in caplog.records)
    for record in caplog.records:
        text = _everything(record)
        assert MARKER not in text and REPORTED not in text, record.getMessage()


async def test_the_admin_cli_shows_the_reported_message_only(member_factory, pool, node_db_url,
                                                             tmp_path):
    await _seed(member_factory, pool)
    env = {"WB_DATABASE_URL": node_db_url, "WB_DATA_DIR": str(tmp_path / "cli"),
           "SESSION_SECRET": "x"}

    async def wb(*args: str):
        return await asyncio.to_thread(CliRunner().invoke, root, list(args), env=env)

    r = await wb("messages", "reports", "list")
    assert r.exit_code == 0, r.output
    assert REPORTED in r.output and f"hello {MARKER}" not in r.output
    assert f"reply {MARKER}" not in r.output
    r = await wb("messages", "reports", "list", "--json")
    [report] = json.loads(r.output)["reports"]
    assert report["body"] == f"rude {REPORTED}" and report["reporter"] == "bob"
    r = await wb("messages", "reports", "resolve", report["id"], "--note", "warned")
    assert r.exit_code == 0 and report["id"] in r.output
    r = await wb("messages", "reports", "resolve", report["id"])
    assert r.exit_code != 0 and "report_resolved" in r.output
    r = await wb("messages", "reports", "list")
    assert "No open reports." in r.output
    r = await wb("messages", "reports", "list", "--all")
    assert REPORTED in r.output and "resolved by" in r.output
    # there is no command that reads a conversation
    r = await wb("messages", "--help")
    assert r.exit_code == 0 and set(_commands(r.output)) == {"reports"}


def _commands(help_text: str) -> list[str]:
    lines = help_text.split("Commands:", 1)[1].strip().splitlines()
    return [line.split()[0] for line in lines if line.strip()]


async def test_a_backup_keeps_messages_in_its_dump_only(member_factory, pool, node_client,
                                                        tmp_path):
    """A backup must restore messages, so its database dump holds them; nothing else in
    the archive (manifest, keys, uploads) carries a body."""
    import tarfile

    from ops.backup import create_backup

    await _seed(member_factory, pool)
    archive = tmp_path / "backup.tar.gz"
    await create_backup(node_client.server.app[T.config_key], archive)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        assert "database.dump" in {m.name for m in members}
        for member in members:
            if member.name == "database.dump":
                continue
            data = tar.extractfile(member).read()
            assert MARKER.encode() not in data and REPORTED.encode() not in data, member.name
