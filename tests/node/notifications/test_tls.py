"""The relay over TLS: smtps:// from the first byte, and STARTTLS whenever offered.

The relay's certificate comes from a throw-away CA (trustme) that the node trusts through
SSL_CERT_FILE, exactly as an operator with a private CA would do it."""

from __future__ import annotations

import ssl

import pytest
import trustme

from node import typedefs as T
from node.app import create_app
from node.notifications import service as S
from tests.node.notifications.conftest import RELAY_PASSWORD, mail_config, run_outbox


@pytest.fixture
def ca(tmp_path, monkeypatch):
    authority = trustme.CA()
    path = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    return authority


def _server_context(authority: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx


async def _comment(pool) -> None:
    await pool.execute("INSERT INTO users (id, username) VALUES ('U1', 'olga'), ('U2', 'hugo')")
    await pool.execute("INSERT INTO notification_prefs (user_id, email, email_confirmed_at) "
                       "VALUES ('U1', 'olga@example.org', now())")
    await pool.execute("INSERT INTO requests (id, title, description, created_by) "
                       "VALUES ('R1', 'Soup', 'hot soup', 'U1')")
    from node.requests import service as RS
    await RS.post_comment(pool, RS.Actor("U2", False, True), "R1", "on my way")


async def test_starttls_is_used_when_offered(aiohttp_client, node_db_url, tmp_path, ca,
                                             relay_factory):
    relay = relay_factory("ok", auth=True, tls_context=_server_context(ca),
                          require_starttls=True)
    config = mail_config(node_db_url, tmp_path, relay,
                         WB_SMTP_URL=f"smtp://node:{RELAY_PASSWORD}@127.0.0.1:{relay.port}")
    app = (await aiohttp_client(create_app(config))).server.app
    await _comment(app[T.pool_key])
    assert await run_outbox(app) == "ok: 1 sent"
    assert relay.tls == [True]


async def test_smtps_from_the_first_byte(aiohttp_client, node_db_url, tmp_path, ca,
                                         relay_factory):
    relay = relay_factory("ok", ssl_context=_server_context(ca))
    config = mail_config(node_db_url, tmp_path, relay,
                         WB_SMTP_URL=f"smtps://127.0.0.1:{relay.port}")
    app = (await aiohttp_client(create_app(config))).server.app
    await _comment(app[T.pool_key])
    assert await run_outbox(app) == "ok: 1 sent"
    assert relay.tls == [True]


async def test_untrusted_certificate_is_refused(aiohttp_client, node_db_url, tmp_path, ca,
                                                relay_factory):
    relay = relay_factory("ok", ssl_context=_server_context(trustme.CA()))  # unknown CA
    config = mail_config(node_db_url, tmp_path, relay,
                         WB_SMTP_URL=f"smtps://127.0.0.1:{relay.port}")
    app = (await aiohttp_client(create_app(config))).server.app
    pool = app[T.pool_key]
    await _comment(pool)
    assert await run_outbox(app) == "ok: 1 retry"
    assert "CERTIFICATE_VERIFY_FAILED" in await pool.fetchval(
        "SELECT last_error FROM mail_outbox")
    assert relay.messages == []


def test_bad_relay_urls_are_refused_with_a_clear_message(node_db_url, tmp_path):
    from node.notifications import mailer

    for url in ("http://mail.example.org", "smtp://", "smtp://host:notaport"):
        config = mail_config(node_db_url, tmp_path, None, WB_SMTP_URL=url)
        with pytest.raises(ValueError, match="WB_SMTP_URL"):
            mailer.relay_from(config)
    relay = mailer.relay_from(mail_config(node_db_url, tmp_path, None,
                                          WB_SMTP_URL="smtp://u:p%40ss@h"))
    assert relay is not None and relay.port == 587 and relay.password == "p@ss"
    assert "p@ss" not in relay.describe() and relay.describe() == "smtp://h:587, authenticated"
    assert S.backoff_seconds(1) == 30 and S.backoff_seconds(20) == 3600
