"""Talking to the mail relay with aiosmtplib.

``WB_SMTP_URL`` names the relay: ``smtp://host:587`` upgrades with STARTTLS whenever the
relay offers it, ``smtps://host:465`` speaks TLS from the first byte. Credentials come
from the URL or ``WB_SMTP_USERNAME`` / ``WB_SMTP_PASSWORD`` (environment or ``.env``
only) and never appear in logs or errors.

``deliver`` splits the conversation so the caller can record, in the database, the
moment the relay is about to receive the body: before it a crash is safe to retry,
after it the outcome is unknown (see ``mail_outbox`` in the migration).
"""

from __future__ import annotations

import email.utils
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

from service.settings import Config


class MailError(Exception):
    """A failed attempt: ``permanent`` when the relay refused for good (5xx)."""

    def __init__(self, reason: str, *, permanent: bool = False, after_body: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        # the body was handed over and no verdict came back: the relay may have it
        self.after_body = after_body


@dataclass(frozen=True)
class Relay:
    host: str
    port: int
    use_tls: bool
    username: str | None
    password: str | None
    timeout: float
    sender: str  # the From header, "Name <addr>" allowed

    @property
    def envelope_from(self) -> str:
        return email.utils.parseaddr(self.sender)[1]

    def describe(self) -> str:
        """Safe to print: scheme, host and port, never the credentials."""
        auth = ", authenticated" if self.username else ""
        return f"{'smtps' if self.use_tls else 'smtp'}://{self.host}:{self.port}{auth}"


def relay_from(config: Config) -> Relay | None:
    """The configured relay, or None when WB_SMTP_URL is empty. Bad URLs raise ValueError."""
    raw = config["WB_SMTP_URL"].strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("WB_SMTP_URL must look like smtp://host:587 or smtps://host:465")
    use_tls = parts.scheme == "smtps"
    try:
        port = parts.port or (465 if use_tls else 587)
    except ValueError:
        raise ValueError("WB_SMTP_URL has an invalid port") from None
    username = unquote(parts.username) if parts.username else (
        config["WB_SMTP_USERNAME"] or None)
    password = unquote(parts.password) if parts.password else (
        config["WB_SMTP_PASSWORD"] or None)
    sender = config["WB_MAIL_FROM"].strip()
    if not sender:
        host = urlsplit(config.site_url).hostname or "localhost"
        sender = f"{config['SITE_NAME']} <noreply@{host}>"
    return Relay(parts.hostname, port, use_tls, username, password,
                 float(config.get_int("WB_SMTP_TIMEOUT")), sender)


def relay_configured(config: Config) -> bool:
    """True when mail can go out (WB_SMTP_URL set and readable)."""
    try:
        return relay_from(config) is not None
    except ValueError:
        return False


def _client(relay: Relay) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname=relay.host, port=relay.port, use_tls=relay.use_tls,
        start_tls=None if not relay.use_tls else False,  # None: STARTTLS when offered
        username=relay.username, password=relay.password, timeout=relay.timeout,
        tls_context=ssl.create_default_context())


async def deliver(relay: Relay, message: EmailMessage,
                  before_body: Callable[[], Awaitable[None]] | None = None) -> None:
    """Hand ``message`` to the relay; ``before_body`` runs just before DATA."""
    recipient = message["To"]
    smtp = _client(relay)
    body_sent = False
    try:
        await smtp.connect()
        await smtp.mail(relay.envelope_from)
        await smtp.rcpt(email.utils.parseaddr(recipient)[1])
        if before_body is not None:
            await before_body()
        body_sent = True
        await smtp.data(message.as_bytes())
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise MailError(f"relay refused the login ({exc.code})") from None
    except aiosmtplib.SMTPResponseException as exc:
        text = " ".join(str(exc.message).split())[:200]
        raise MailError(f"relay answered {exc.code}: {text}",
                        permanent=exc.code >= 500) from None
    except aiosmtplib.SMTPTimeoutError:
        raise MailError(f"relay did not answer within {relay.timeout:g} s",
                        after_body=body_sent) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailError(f"cannot talk to the relay: {type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:200]}", after_body=body_sent) from None
    finally:
        if smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()
