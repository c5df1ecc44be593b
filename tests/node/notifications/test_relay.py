"""The outbox against relays that refuse, time out, want a login, or are absent; and a
node killed mid-delivery (a real `wb jobs run mail:outbox` process, SIGKILLed)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from node import typedefs as T
from node.app import create_app
from node.notifications import queries as Q
from ops.cli import root
from tests.node.notifications.conftest import (
    RELAY_PASSWORD,
    free_port,
    mail_config,
    run_outbox,
    wait_for,
)

WT = Path(__file__).resolve().parents[3]


async def _queue_comment(app) -> str:
    """A member with a confirmed address and a comment on their request: one message."""
    pool = app[T.pool_key]
    owner = await pool.fetchval(
        "INSERT INTO users (id, username) VALUES ('U1', 'olga') RETURNING id")
    await pool.execute("INSERT INTO users (id, username) VALUES ('U2', 'hugo')")
    await pool.execute("INSERT INTO notification_prefs (user_id, email, email_confirmed_at) "
                       "VALUES ($1, 'olga@example.org', now())", owner)
    await pool.execute("INSERT INTO requests (id, title, description, created_by) "
                       "VALUES ('R1', 'Soup', 'hot soup', 'U1')")
    from node.requests import service as RS
    actor = RS.Actor("U2", False, True)
    await RS.post_comment(pool, actor, "R1", "on my way")
    return await pool.fetchval("SELECT id FROM mail_outbox")


async def _app(aiohttp_client, node_db_url, tmp_path, relay, **extra):
    client = await aiohttp_client(create_app(mail_config(node_db_url, tmp_path, relay, **extra)))
    return client.server.app


async def _due_now(pool) -> None:
    """Skip the back-off wait (the test plays the clock, not a sleep)."""
    await pool.execute("UPDATE mail_outbox SET next_attempt_at = now()")


async def test_refusing_relay_drops_with_the_reason_for_admins(aiohttp_client, node_db_url,
                                                               tmp_path, relay_factory):
    relay = relay_factory("refuse")
    app = await _app(aiohttp_client, node_db_url, tmp_path, relay)
    pool = app[T.pool_key]
    await _queue_comment(app)
    assert await run_outbox(app) == "ok: 1 dropped"
    row = await pool.fetchrow("SELECT * FROM mail_outbox")
    assert row["state"] == "dropped" and row["attempts"] == 1
    assert "550" in row["last_error"] and "mailbox unavailable" in row["last_error"]
    assert relay.messages == []
    assert await run_outbox(app) == "ok: nothing due"  # a dropped message is not retried

    env = {"WB_DATABASE_URL": node_db_url, "WB_DATA_DIR": str(tmp_path / "node"),
           "SESSION_SECRET": "x", "WB_SMTP_URL": f"smtp://127.0.0.1:{relay.port}"}
    r = await asyncio.to_thread(CliRunner().invoke, root, ["mail", "status"], env=env)
    assert r.exit_code == 0, r.output
    assert f"relay: smtp://127.0.0.1:{relay.port}" in r.output
    assert "dropped 1" in r.output and "550" in r.output and "@olga" in r.output
    r = await asyncio.to_thread(CliRunner().invoke, root, ["mail", "retry"], env=env)
    assert r.exit_code == 0 and "1 message queued again" in r.output
    assert await pool.fetchval("SELECT state FROM mail_outbox") == "queued"


async def test_temporary_failures_back_off_then_drop_after_max(aiohttp_client, node_db_url,
                                                               tmp_path, relay_factory):
    relay = relay_factory("tempfail")
    app = await _app(aiohttp_client, node_db_url, tmp_path, relay, WB_MAIL_MAX_ATTEMPTS="3")
    pool = app[T.pool_key]
    await _queue_comment(app)
    assert await run_outbox(app) == "ok: 1 retry"
    row = await pool.fetchrow("SELECT *, next_attempt_at - now() AS wait FROM mail_outbox")
    assert row["state"] == "queued" and "451" in row["last_error"]
    assert row["wait"].total_seconds() > 20  # backing off, not hammering the relay
    assert await run_outbox(app) == "ok: nothing due"
    await _due_now(pool)
    assert await run_outbox(app) == "ok: 1 retry"
    await _due_now(pool)
    assert await run_outbox(app) == "ok: 1 dropped"
    row = await pool.fetchrow("SELECT * FROM mail_outbox")
    assert row["state"] == "dropped" and row["attempts"] == 3
    assert row["last_error"].startswith("gave up after 3 attempts: relay answered 451")
    relay.mode = "ok"
    assert await Q.requeue(pool, ids=[row["id"]], uncertain=False) == 1
    assert await run_outbox(app) == "ok: 1 sent"
    assert len(relay.messages) == 1


async def test_per_minute_limit(aiohttp_client, node_db_url, tmp_path, relay):
    app = await _app(aiohttp_client, node_db_url, tmp_path, relay, WB_MAIL_PER_MINUTE="2")
    pool = app[T.pool_key]
    await _queue_comment(app)
    from node.requests import service as RS
    for body in ("two", "three"):
        await RS.post_comment(pool, RS.Actor("U2", False, True), "R1", body)
    assert await pool.fetchval("SELECT count(*) FROM mail_outbox") == 3
    assert await run_outbox(app) == "ok: 2 sent, per-minute limit reached"
    assert await run_outbox(app) == "ok: per-minute limit reached"
    assert len(relay.messages) == 2
    await pool.execute("UPDATE mail_outbox SET sent_at = sent_at - interval '61 seconds'")
    assert await run_outbox(app) == "ok: 1 sent"
    assert len(relay.messages) == 3


async def test_timing_out_relay(aiohttp_client, node_db_url, tmp_path, relay_factory):
    relay = relay_factory("hang_rcpt")
    app = await _app(aiohttp_client, node_db_url, tmp_path, relay, WB_SMTP_TIMEOUT="1")
    pool = app[T.pool_key]
    await _queue_comment(app)
    assert await run_outbox(app) == "ok: 1 retry"
    row = await pool.fetchrow("SELECT * FROM mail_outbox")
    assert row["state"] == "queued" and row["last_error"] == "relay did not answer within 1 s"

    # silent after the body was sent: the relay may have it, so it is never sent again
    relay.mode = "hang_data"
    await _due_now(pool)
    assert await run_outbox(app) == "ok: 1 uncertain"
    row = await pool.fetchrow("SELECT * FROM mail_outbox")
    assert row["state"] == "uncertain" and "may have it" in row["last_error"]
    await _due_now(pool)
    assert await run_outbox(app) == "ok: nothing due"
    assert len(relay.messages) == 1


async def test_authenticating_relay(aiohttp_client, node_db_url, tmp_path, relay_factory,
                                    caplog):
    relay = relay_factory("ok", auth=True)
    wrong = await _app(aiohttp_client, node_db_url, tmp_path, relay,
                       WB_SMTP_USERNAME="node", WB_SMTP_PASSWORD="wrong-password")
    pool = wrong[T.pool_key]
    await _queue_comment(wrong)
    assert await run_outbox(wrong) == "ok: 1 retry"
    row = await pool.fetchrow("SELECT * FROM mail_outbox")
    assert row["last_error"].startswith("relay refused the login")
    assert relay.messages == [] and set(relay.logins) == {b"node"}

    right = await _app(aiohttp_client, node_db_url, tmp_path / "2", relay,
                       WB_SMTP_URL=f"smtp://node:{RELAY_PASSWORD}@127.0.0.1:{relay.port}")
    await _due_now(pool)
    assert await run_outbox(right) == "ok: 1 sent"
    assert len(relay.messages) == 1
    for text in [r.getMessage() + str(vars(r)) for r in caplog.records] + [row["last_error"]]:
        assert RELAY_PASSWORD not in text and "wrong-password" not in text


async def test_no_relay_no_mail_and_admins_are_told(aiohttp_client, node_db_url, tmp_path):
    from tests.factories import create_user, sign_in

    client = await aiohttp_client(create_app(mail_config(node_db_url, tmp_path, None)))
    app = client.server.app
    pool = app[T.pool_key]
    await _queue_comment(app)
    assert await run_outbox(app) == "ok: no relay configured (WB_SMTP_URL)"
    assert await pool.fetchval("SELECT state FROM mail_outbox") == "queued"  # kept for later
    admin = await create_user(pool, "ada", admin=True)
    await sign_in(client, admin)
    r = await client.get("/admin/mail")
    assert r.status == 200 and "No mail relay is configured" in await r.text()
    r = await client.get("/admin")
    assert r.status == 200 and "No mail relay is configured" in await r.text()
    r = await client.get("/admin/mail", headers={"Accept": "application/json"})
    assert (await r.json())["relay"] is None
    r = await client.get("/settings/notifications")
    assert "No mail relay is configured" in await r.text()
    member = await create_user(pool, "mo")
    other = await aiohttp_client(client.server)
    await sign_in(other, member)
    r = await other.get("/admin/mail", headers={"Accept": "application/json"})
    assert r.status == 403
    env = {"WB_DATABASE_URL": node_db_url, "WB_DATA_DIR": str(tmp_path / "node"),
           "SESSION_SECRET": "x"}
    r = await asyncio.to_thread(CliRunner().invoke, root, ["mail", "send-test",
                                                           "ops@example.org"], env=env)
    assert r.exit_code == 1 and "(no_relay)" in r.output


async def test_send_test_through_the_relay(node_db_url, tmp_path, relay):
    env = {"WB_DATABASE_URL": node_db_url, "WB_DATA_DIR": str(tmp_path / "node"),
           "SESSION_SECRET": "x", "WB_SMTP_URL": f"smtp://127.0.0.1:{relay.port}",
           "WB_MAIL_FROM": "ops@node.test"}
    r = await asyncio.to_thread(CliRunner().invoke, root, ["mail", "send-test",
                                                           "ops@example.org"], env=env)
    assert r.exit_code == 0, r.output
    assert "sent a test message to ops@example.org" in r.output
    [m] = relay.messages
    assert m["To"] == "ops@example.org" and "Test message" in m["Subject"]
    r = await asyncio.to_thread(CliRunner().invoke, root, ["mail", "send-test",
                                                           "bad\naddress"], env=env)
    assert r.exit_code == 1 and "(invalid_email)" in r.output


# --------------------------------------------------------------------------- crashes

def _job_process(node_db_url: str, tmp_path: Path, relay_port: int) -> subprocess.Popen:
    env = dict(os.environ, WB_DATABASE_URL=node_db_url, WB_DATA_DIR=str(tmp_path / "node"),
               SESSION_SECRET="test-secret-not-for-production", SITE_URL="http://node.test",
               WB_SMTP_URL=f"smtp://127.0.0.1:{relay_port}", WB_SMTP_TIMEOUT="600",
               WB_LOG_LEVEL="WARNING")
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "ops.cli", "jobs", "run", "mail:outbox"], cwd=WT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _kill_at(node_db_url, tmp_path, relay) -> None:
    proc = _job_process(node_db_url, tmp_path, relay.port)
    try:
        await asyncio.to_thread(wait_for, relay.reached)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def _age_claims(pool) -> None:
    """The dead worker's claim is older than the stale limit (the test moves the clock)."""
    await _age_job_claim(pool)
    await pool.execute("UPDATE mail_outbox SET claimed_at = now() - interval '1 hour' "
                       "WHERE claimed_at IS NOT NULL")


async def _age_job_claim(pool) -> None:
    await pool.execute("UPDATE scheduler_jobs SET running_since = now() - interval '1 hour' "
                       "WHERE running_since IS NOT NULL")


async def test_killed_between_queuing_and_sending_delivers_exactly_once(
        aiohttp_client, node_db_url, tmp_path, relay_factory):
    hanging = relay_factory("hang_rcpt")
    app = await _app(aiohttp_client, node_db_url, tmp_path, hanging)
    pool = app[T.pool_key]
    await _queue_comment(app)  # committed with the comment; nothing sent yet
    await _kill_at(node_db_url, tmp_path, hanging)  # claimed, talking to the relay: SIGKILL
    assert await pool.fetchval("SELECT state FROM mail_outbox") == "sending"
    assert hanging.messages == []

    good = relay_factory("ok")
    app2 = await _app(aiohttp_client, node_db_url, tmp_path / "2", good)
    assert await run_outbox(app2) == "skipped: already running"  # the dead run's claim
    await _age_job_claim(pool)
    assert await run_outbox(app2) == "ok: nothing due"  # a fresh message claim is left alone
    await _age_claims(pool)
    assert await run_outbox(app2) == "ok: 1 sent, 1 resumed"
    assert await run_outbox(app2) == "ok: nothing due"
    assert len(good.messages) == 1
    assert await pool.fetchval("SELECT state FROM mail_outbox") == "sent"


async def test_killed_while_the_relay_takes_the_body_is_never_sent_twice(
        aiohttp_client, node_db_url, tmp_path, relay_factory):
    relay = relay_factory("hang_data")
    app = await _app(aiohttp_client, node_db_url, tmp_path, relay)
    pool = app[T.pool_key]
    message_id = await _queue_comment(app)
    await _kill_at(node_db_url, tmp_path, relay)  # the relay has the body; no 250 yet
    assert await pool.fetchval("SELECT state FROM mail_outbox") == "committing"
    assert len(relay.messages) == 1

    relay.mode = "ok"
    await _age_claims(pool)
    assert await run_outbox(app) == "ok: nothing due"
    row = await pool.fetchrow("SELECT * FROM mail_outbox")
    assert row["state"] == "uncertain" and "may or may not" in row["last_error"]
    assert len(relay.messages) == 1  # never a second copy on the node's own initiative

    assert await Q.requeue(pool, ids=None, uncertain=False) == 0  # plain retry leaves it
    assert await Q.requeue(pool, ids=[message_id], uncertain=True) == 1  # the operator's call
    assert await run_outbox(app) == "ok: 1 sent"
    assert len(relay.messages) == 2
    # the same Message-ID both times, so a mailbox can fold the copies
    assert relay.messages[0]["Message-ID"] == relay.messages[1]["Message-ID"]


# --------------------------------------------------------------------------- a real node

def _serve(node_db_url: str, tmp_path: Path, port: int, relay_port: int, *,
           scheduler: bool) -> subprocess.Popen:
    env = dict(os.environ, WB_DATABASE_URL=node_db_url, WB_DATA_DIR=str(tmp_path / "node"),
               SESSION_SECRET="test-secret-not-for-production", SITE_URL="http://node.test",
               WB_SMTP_URL=f"smtp://127.0.0.1:{relay_port}", WB_SMTP_TIMEOUT="5",
               WB_SCHEDULER="true" if scheduler else "false", WB_MAIL_INTERVAL="1",
               WB_LOG_LEVEL="WARNING")
    return subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "ops.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=WT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _until(what: str, predicate, limit: float = 60.0):
    deadline = asyncio.get_running_loop().time() + limit
    while True:
        value = await predicate()
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_serve_killed_after_queuing_then_restarted_sends_once(node_db_url, tmp_path,
                                                                   relay):
    import aiohttp
    import asyncpg

    from node.web import SESSION_COOKIE
    from tests.factories import create_session

    conn = await asyncpg.connect(node_db_url)
    procs: list[subprocess.Popen] = []
    try:
        await conn.execute("INSERT INTO users (id, username) VALUES ('U1', 'olga'), "
                           "('U2', 'hugo')")
        await conn.execute("INSERT INTO notification_prefs (user_id, email, "
                           "email_confirmed_at) VALUES ('U1', 'olga@example.org', now())")
        await conn.execute("INSERT INTO requests (id, title, description, created_by) "
                           "VALUES ('R1', 'Soup', 'hot soup', 'U1')")
        cookie = await create_session(conn, "U2")

        async def healthy(base: str) -> bool:
            try:
                async with aiohttp.ClientSession() as s, s.get(base + "/healthz") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        port = free_port()
        base = f"http://127.0.0.1:{port}"
        procs.append(_serve(node_db_url, tmp_path, port, relay.port, scheduler=False))
        await _until("the node", lambda: healthy(base))
        async with aiohttp.ClientSession(cookies={SESSION_COOKIE: cookie}) as s:
            async with s.get(base + "/api/csrf") as r:
                csrf = (await r.json())["csrf_token"]
            async with s.post(base + "/requests/R1/comments",
                              data={"csrf_token": csrf, "body": "on my way"},
                              headers={"Accept": "application/json"}) as r:
                assert r.status == 201, await r.text()
        procs[0].send_signal(signal.SIGKILL)  # queued, committed, never sent
        procs[0].wait(timeout=30)
        assert await conn.fetchval("SELECT state FROM mail_outbox") == "queued"
        assert relay.messages == []

        procs.append(_serve(node_db_url, tmp_path, port, relay.port, scheduler=True))

        async def sent() -> int | None:
            return await conn.fetchval(
                "SELECT runs FROM scheduler_jobs WHERE id = 'mail:outbox' "
                "AND EXISTS (SELECT 1 FROM mail_outbox WHERE state = 'sent')")

        runs = await _until("the message to be sent", sent)

        async def two_more_runs() -> bool:
            n = await conn.fetchval("SELECT runs FROM scheduler_jobs WHERE id = 'mail:outbox'")
            return n >= runs + 2

        await _until("two more outbox runs", two_more_runs)
        assert len(relay.messages) == 1
        assert relay.messages[0]["Subject"] == "[WhiteBalloon] New comment on “Soup”"
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        await conn.close()
