"""The auth CLI: create-admin, create-invite, session list|approve|deny|expire."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest
from click.testing import CliRunner

from node import typedefs as T
from ops.cli import root
from service.tablecache import CHANNEL
from tests.node.auth.helpers import bootstrap_admin


async def heard_so_far(node_client) -> None:
    """Return once the app's table watch has heard every change committed so far: its
    caches (#24) learn of another process's writes (this CLI's) by NOTIFY, delivered in
    commit order, so a sentinel sent now arrives after them."""
    watch = node_client.server.app[T.table_watch_key]
    sentinel = f"test_sentinel_{uuid.uuid4().hex}"
    await node_client.server.app[T.pool_key].execute("SELECT pg_notify($1, $2)", CHANNEL,
                                                     sentinel)
    async with asyncio.timeout(30):
        while (watch.stamp((sentinel,)) or (0, 0))[1] == 0:  # noqa: ASYNC110 - a counter
            await asyncio.sleep(0.005)


@pytest.fixture
def wb(node_db_url, node_client, tmp_path, monkeypatch):
    monkeypatch.setenv("WB_DATABASE_URL", node_db_url)
    monkeypatch.setenv("WB_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("SITE_URL", "https://example.org")
    monkeypatch.chdir(tmp_path)  # no stray .env

    async def run(*args: str):
        result = await asyncio.to_thread(CliRunner().invoke, root, list(args))
        await heard_so_far(node_client)  # what the CLI wrote reaches the app's caches
        return result

    return run


async def test_create_admin_creates_then_promotes(wb, node_pool, devices):
    result = await wb("create-admin", "root")
    assert result.exit_code == 0, result.output
    assert "created admin root" in result.output
    assert await node_pool.fetchval("SELECT is_admin FROM users WHERE username='root'")
    # the node is no longer open to a first registrant
    status, body = await devices().register("eve")
    assert status == 403 and body["error"]["code"] == "invite_required"
    # the CLI-made admin signs in and the operator approves it from the shell
    laptop = devices()
    _, login = await laptop.login("root")
    result = await wb("session", "approve", login["request_id"])
    assert result.exit_code == 0, result.output
    status, _ = await laptop.get_json("/admin")
    assert status == 200


async def test_create_admin_promotes_existing_member(wb, node_pool, devices):
    admin = await bootstrap_admin(devices)
    invite = await admin.invite()
    _, bob = await devices().register("bob", token=invite["token"])
    result = await wb("create-admin", "Bob")
    assert result.exit_code == 0 and "bob is now an admin" in result.output.lower()
    assert await node_pool.fetchval("SELECT is_admin FROM users WHERE id=$1", bob["user_id"])
    assert await node_pool.fetchval("SELECT count(*) FROM users") == 2
    result = await wb("create-admin", "bad name")
    assert result.exit_code == 1 and "username" in result.output.lower()


async def test_create_invite_prints_a_working_link(wb, node_pool, devices):
    await bootstrap_admin(devices)
    result = await wb("create-invite", "--max-uses", "2", "--by", "ada")
    assert result.exit_code == 0, result.output
    link = result.stdout.strip().splitlines()[0]
    m = re.fullmatch(r"https://example\.org/register/([A-Za-z0-9_-]{40,})", link)
    assert m, link
    status, body = await devices().register("bob", token=m.group(1))
    assert status == 201
    ada = await node_pool.fetchval("SELECT id FROM users WHERE username='ada'")
    assert await node_pool.fetchval("SELECT invited_by FROM users WHERE username='bob'") == ada
    result = await wb("create-invite", "--by", "nobody")
    assert result.exit_code == 1 and "no local member called 'nobody'" in result.output
    assert await node_pool.fetchval("SELECT count(*) FROM invites") == 1


async def test_session_list_approve_deny(wb, node_pool, devices):
    await bootstrap_admin(devices)
    laptop, tablet = devices(), devices()
    _, one = await laptop.login("ada")
    _, two = await tablet.login("ada")
    result = await wb("session", "list")
    assert result.exit_code == 0
    assert one["request_id"] in result.output and two["request_id"] in result.output
    assert one["code"] not in result.output
    result = await wb("session", "approve", one["request_id"])
    assert result.exit_code == 0 and "approved" in result.output
    assert await laptop.whoami() == "active"
    result = await wb("session", "deny", two["request_id"])
    assert result.exit_code == 0 and "denied" in result.output
    assert await tablet.whoami() == "anonymous"
    result = await wb("session", "approve", two["request_id"])
    assert result.exit_code == 1 and "denied" in result.output
    result = await wb("session", "deny", "NOPE")
    assert result.exit_code == 1 and "No sign-in request 'NOPE'" in result.output
    result = await wb("session", "list", "--all")
    assert "no sign-in requests waiting" in result.output and "active" in result.output
    actions = [r["action"] for r in await node_pool.fetch(
        "SELECT action FROM audit_log WHERE details->>'via' = 'cli' ORDER BY id")]
    assert actions == ["login.approve", "login.deny"]


async def test_session_approve_checks_a_given_code(wb, devices):
    await bootstrap_admin(devices)
    laptop = devices()
    _, login = await laptop.login("ada")
    wrong = "000000" if login["code"] != "000000" else "111111"
    result = await wb("session", "approve", login["request_id"], "--code", wrong)
    assert result.exit_code == 1 and "not right" in result.output
    assert await laptop.whoami() == "pending"
    result = await wb("session", "approve", login["request_id"], "--code", login["code"])
    assert result.exit_code == 0
    assert await laptop.whoami() == "active"


async def test_session_expire(wb, node_pool, devices):
    await bootstrap_admin(devices)
    await devices().login("ada")
    await node_pool.execute("UPDATE auth_requests SET expires_at = now() - interval '1 s'")
    await node_pool.execute(
        "UPDATE sessions SET expires_at = now() - interval '1 s' WHERE status='pending'")
    result = await wb("session", "expire")
    assert result.exit_code == 0
    assert "expired 1 request, deleted 1 session" in result.output
    assert await node_pool.fetchval("SELECT count(*) FROM sessions") == 1


async def test_session_list_shows_what_each_waiting_device_wrote(wb, devices):
    await bootstrap_admin(devices)
    stranger = devices()
    _, login = await stranger.login("ada")
    status, _ = await stranger.post_json("/api/requests", {
        "title": "Send money to this account", "description": "urgent", "sync_scope": "public"})
    assert status == 201
    result = await wb("session", "list")
    assert result.exit_code == 0 and login["request_id"] in result.output
    assert "this device also wrote (public): 'Send money to this account'" in result.output
