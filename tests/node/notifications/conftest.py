"""A real SMTP relay (aiosmtpd) inside the tests, and helpers to drive the outbox."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from node import typedefs as T
from node.app import create_app
from node.notifications import service as S
from node.scheduler import jobs_key, run_job
from tests.conftest import make_node_config
from tests.factories import create_user, sign_in

RELAY_PASSWORD = "relay-pass-7f3a"  # noqa: S105 (a test relay's password)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    """What the relay does on RCPT and DATA: ok, refuse (550), tempfail (451),
    hang_rcpt / hang_data (never answer; ``reached`` is set when it gets there)."""

    def __init__(self, mode: str = "ok"):
        self.mode = mode
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.reached = threading.Event()
        self.port = free_port()
        self.logins: list[bytes] = []
        self.tls: list[bool] = []  # per message: did it arrive over TLS?

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.mode == "refuse":
            return "550 5.1.1 mailbox unavailable"
        if self.mode == "tempfail":
            return "451 4.3.0 try again later"
        if self.mode == "hang_rcpt":
            self.reached.set()
            await asyncio.sleep(3600)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(msg)
        self.tls.append(server.transport.get_extra_info("ssl_object") is not None)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        if self.mode == "hang_data":
            self.reached.set()
            await asyncio.sleep(3600)
        return "250 OK queued"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            self.logins.append(auth_data.login)
            if auth_data.login == b"node" and auth_data.password == RELAY_PASSWORD.encode():
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def of_kind(self, to: str | None = None) -> list[EmailMessage]:
        return [m for m in self.messages if to is None or m["To"] == to]


def start_relay(mode: str = "ok", *, auth: bool = False,
                **tls: object) -> tuple[Relay, Controller]:
    """``tls``: ``ssl_context=`` (smtps, TLS from the first byte) or ``tls_context=`` and
    ``require_starttls=True`` (STARTTLS offered and required)."""
    relay = Relay(mode)
    kwargs: dict[str, object] = dict(tls)
    if auth:
        kwargs.update(authenticator=relay.authenticate, auth_required=True,
                      auth_require_tls=False)
    controller = Controller(relay, hostname="127.0.0.1", port=relay.port, **kwargs)
    controller.start()
    return relay, controller


@pytest.fixture
def relay_factory():
    started: list[Controller] = []

    def make(mode: str = "ok", *, auth: bool = False, **tls: object) -> Relay:
        relay, controller = start_relay(mode, auth=auth, **tls)
        started.append(controller)
        return relay

    yield make
    for c in started:
        c.stop()


@pytest.fixture
def relay(relay_factory) -> Relay:
    return relay_factory()


def mail_config(node_db_url: str, tmp_path, relay: Relay | None, **extra: str):
    values = {"WB_MAIL_FROM": "Test Node <noreply@node.test>", "WB_SMTP_TIMEOUT": "2"}
    if relay is not None:
        values["WB_SMTP_URL"] = f"smtp://127.0.0.1:{relay.port}"
    values.update(extra)
    return make_node_config(node_db_url, tmp_path / "node", **values)


@pytest.fixture
async def app_client(aiohttp_client, node_db_url, tmp_path, relay):
    return await aiohttp_client(create_app(mail_config(node_db_url, tmp_path, relay)))


async def run_outbox(app) -> str:
    return await run_job(app, app[jobs_key]["mail:outbox"], force=True)


async def make_member(client, username: str, *, address: str | None = None,
                      admin: bool = False, **switches: bool) -> str:
    """A local member whose notification address is confirmed (when given)."""
    pool = client.server.app[T.pool_key]
    user_id = await create_user(pool, username, admin=admin)
    if address:
        await pool.execute(
            "INSERT INTO notification_prefs (user_id, email, email_confirmed_at) "
            "VALUES ($1, $2, now())", user_id, address)
        for name, value in switches.items():
            await pool.execute(f"UPDATE notification_prefs SET {name} = $2 "  # noqa: S608
                               "WHERE user_id = $1", user_id, value)
    return user_id


async def signed_in(aiohttp_client, client, user_id: str):
    """A second client of the same app, signed in as ``user_id``; returns (client, csrf)."""
    other = await aiohttp_client(client.server)
    csrf = await sign_in(other, user_id)
    return other, csrf


def wait_for(event: threading.Event, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not event.is_set():
        assert time.monotonic() < deadline, "the relay was never reached"
        event.wait(0.05)


__all__ = ["S", "RELAY_PASSWORD", "Relay", "mail_config", "make_member", "run_outbox",
           "signed_in", "wait_for", "start_relay"]
