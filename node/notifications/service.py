"""Notifications: who hears what by e-mail, the outbox job, and Atom feeds.

Other features call one hook per event (``comment_posted``, ``request_status_changed``,
``signin_waiting``, ``member_waiting``) on their own connection, inside the transaction
that records the event: the message is queued exactly when the event commits.

A queued row is an intent, not a rendered mail. The outbox job renders it when it sends,
from the database as it is then, and skips it when the recipient turned the switch off,
lost their confirmed address, or the thing it tells of is gone (a deleted comment, an
approved sign-in). So a mail never tells more than the recipient may see at send time,
and never carries a verification code.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import hmac
import logging
import re
import secrets
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import aiohttp_jinja2
import asyncpg
import jinja2
from aiohttp import web
from itsdangerous import BadSignature, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from node import typedefs as T
from node.canonical import link_base
from node.errors import AppError, bad_request, conflict, not_found
from node.i18n import plural
from node.notifications import mailer
from node.notifications import queries as Q
from service import atom
from service.settings import Config

log = logging.getLogger("wb.node.notifications")

EMAIL_MAX = 254
_EMAIL = re.compile(r"^[^@\s<>,;:\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
CONFIRM_RESEND_SECONDS = 60
BACKOFF_FIRST = 30.0
BACKOFF_MAX = 3600.0
FEED_ENTRIES = 50
RUN_SECONDS = 60.0  # an outbox run starts no new message after this long

# The switch each kind of message answers to; what its unsubscribe link turns off.
SWITCH_OF = {"comment": "on_comment", "status": "on_status", "signin": "on_signin",
             "member_waiting": "on_member_waiting", "digest": "digest"}
SWITCH_LABELS = {
    "on_comment": "Someone comments on my request",
    "on_status": "My request is completed or reopened by someone else",
    "on_signin": "A sign-in to my account waits for my approval",
    "on_member_waiting": "A new member waits for approval (admins)",
    "digest": "A daily digest of new open requests",
}


# --------------------------------------------------------------------------- hooks

async def comment_posted(conn: Q.Conn, comment_id: str) -> None:
    await Q.queue_comment(conn, comment_id)


async def request_status_changed(conn: Q.Conn, request_id: str, actor_id: str | None) -> None:
    await Q.queue_status(conn, request_id, actor_id)


async def signin_waiting(conn: Q.Conn, auth_request_id: str) -> None:
    await Q.queue_signin(conn, auth_request_id)


async def member_waiting(conn: Q.Conn, user_id: str) -> None:
    await Q.queue_member_waiting(conn, user_id)


# --------------------------------------------------------------------------- tokens

def _secret(secret: bytes) -> bytes:
    return hmac.new(secret, b"wb-notifications", hashlib.sha256).digest()


def confirm_token(secret: bytes, user_id: str, address: str) -> str:
    return URLSafeTimedSerializer(_secret(secret), salt="confirm").dumps([user_id, address])


def read_confirm_token(secret: bytes, token: str, max_age_s: int) -> tuple[str, str]:
    try:
        user_id, address = URLSafeTimedSerializer(_secret(secret), salt="confirm").loads(
            token, max_age=max_age_s)
    except SignatureExpired:
        raise AppError(410, "confirm_link_expired",
                       "This confirmation link has expired; ask for a new one in your "
                       "notification settings.") from None
    except (BadSignature, ValueError, TypeError):
        raise not_found("bad_confirm_link", "This confirmation link is not valid.") from None
    return str(user_id), str(address)


def unsubscribe_token(secret: bytes, user_id: str, kind: str) -> str:
    return URLSafeSerializer(_secret(secret), salt="unsubscribe").dumps([user_id, kind])


def read_unsubscribe_token(secret: bytes, token: str) -> tuple[str, str]:
    try:
        user_id, kind = URLSafeSerializer(_secret(secret), salt="unsubscribe").loads(token)
    except (BadSignature, ValueError, TypeError):
        raise not_found("bad_unsubscribe_link", "This unsubscribe link is not valid.") from None
    if kind not in SWITCH_OF and kind not in ("address", "all"):
        raise not_found("bad_unsubscribe_link", "This unsubscribe link is not valid.")
    return str(user_id), str(kind)


def feed_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --------------------------------------------------------------------------- settings

@dataclass
class Settings:
    email: str | None
    confirmed: bool
    switches: dict[str, bool]
    has_feed: bool


async def settings_of(pool: asyncpg.Pool, user_id: str) -> Settings:
    row = await Q.ensure_prefs(pool, user_id)
    return Settings(row["email"], row["email_confirmed_at"] is not None,
                    {name: row[name] for name in Q.SWITCHES}, row["feed_token_hash"] is not None)


async def save_switches(pool: asyncpg.Pool, user_id: str, form: Any) -> None:
    values = {name: form.get(name) in ("on", "true", "1", True) for name in Q.SWITCHES}
    await Q.set_switches(pool, user_id, values)


def clean_email(value: Any) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        return None
    if len(text) > EMAIL_MAX or not _EMAIL.match(text):
        raise bad_request("invalid_email", "That does not look like an e-mail address.",
                          email="like name@example.org")
    return text


async def set_address(pool: asyncpg.Pool, user_id: str, value: Any) -> str | None:
    """Store a new address (unconfirmed) and queue its confirmation link; None forgets it."""
    address = clean_email(value)
    async with pool.acquire() as conn, conn.transaction():
        current = await Q.ensure_prefs(conn, user_id)
        if address is not None and current["email"] == address \
                and current["email_confirmed_at"] is not None:
            return address
        if address is not None and await Q.recent_confirmation(conn, user_id,
                                                               CONFIRM_RESEND_SECONDS):
            raise AppError(429, "confirm_too_soon",
                           "A confirmation link was sent less than a minute ago; "
                           "check your inbox first.")
        await Q.set_email(conn, user_id, address)
        if address is not None:
            await Q.queue_confirmation(conn, user_id, address, secrets.token_hex(8))
    return address


async def confirm(pool: asyncpg.Pool, secret: bytes, config: Config, token: str) -> str:
    user_id, address = read_confirm_token(secret, token,
                                          config.get_int("WB_MAIL_CONFIRM_HOURS") * 3600)
    if not await Q.confirm_email(pool, user_id, address):
        raise conflict("address_changed", "This address is no longer the one in your "
                       "notification settings.")
    log.info("notification address confirmed", extra={"user_id": user_id})
    return address


async def unsubscribe(pool: asyncpg.Pool, secret: bytes, token: str) -> str:
    user_id, kind = read_unsubscribe_token(secret, token)
    if kind == "address":
        await Q.set_email(pool, user_id, None)
    elif kind == "all":
        await Q.switch_off(pool, user_id, Q.SWITCHES)
    else:
        await Q.switch_off(pool, user_id, (SWITCH_OF[kind],))
    log.info("unsubscribed", extra={"user_id": user_id, "kind": kind})
    return kind


async def new_feed_token(pool: asyncpg.Pool, user_id: str) -> str:
    token = secrets.token_urlsafe(24)
    await Q.set_feed_token(pool, user_id, feed_token_hash(token))
    return token


async def revoke_feed_token(pool: asyncpg.Pool, user_id: str) -> None:
    await Q.set_feed_token(pool, user_id, None)


# --------------------------------------------------------------------------- rendering

@dataclass(frozen=True)
class Draft:
    to: str
    subject: str
    template: str
    context: dict[str, Any]
    unsubscribe_kind: str


async def _draft(conn: asyncpg.Connection, row: Any) -> Draft | str:
    """What to send for an outbox row, or why nothing is sent any more."""
    kind, params = row["kind"], Q.params_of(row)
    if kind == "confirm":
        prefs = await Q.prefs(conn, row["user_id"])
        if prefs is None or prefs["email"] != params["email"]:
            return "the address was changed before the link went out"
        if prefs["email_confirmed_at"] is not None:
            return "the address is already confirmed"
        return Draft(params["email"], "Confirm your address for notifications",
                     "confirm", {"address": params["email"]}, "address")
    who = await Q.recipient(conn, row["user_id"])
    if who is None:
        return "no confirmed address any more"
    if not who[SWITCH_OF[kind]]:
        return "the member turned this notification off"
    ctx: dict[str, Any] = {"member": who["display_name"] or who["username"]}
    if kind == "comment":
        c = await Q.comment_for_mail(conn, params["comment_id"])
        if c is None or c["deleted_at"] or c["request_deleted_at"] \
                or c["owner"] != row["user_id"]:
            return "the comment or its request is gone"
        ctx.update(title=c["title"] or "(untitled)", author=c["author"] or "someone",
                   body=c["body"][:1000], request_id=c["request_id"])
        return Draft(who["email"], f"New comment on “{_short(c['title'])}”", "comment", ctx,
                     kind)
    if kind == "status":
        r = await Q.request_for_mail(conn, params["request_id"])
        if r is None or r["deleted_at"] or r["created_by"] != row["user_id"]:
            return "the request is gone"
        ctx.update(title=r["title"] or "(untitled)", status=params["status"],
                   request_id=r["id"])
        verb = "completed" if params["status"] == "completed" else "reopened"
        return Draft(who["email"], f"Your request “{_short(r['title'])}” was {verb}",
                     "status", ctx, kind)
    if kind == "signin":
        a = await Q.auth_request_for_mail(conn, params["auth_request_id"])
        if a is None or a["status"] != "pending" or a["user_id"] != row["user_id"] \
                or a["expires_at"] <= dt.datetime.now(dt.UTC):
            return "the sign-in is no longer waiting"
        ctx.update(user_agent=(a["user_agent"] or "an unknown browser")[:120],
                   at=a["created_at"], expires_at=a["expires_at"])
        return Draft(who["email"], "A sign-in to your account is waiting for approval",
                     "signin", ctx, kind)
    if kind == "member_waiting":
        m = await Q.waiting_member(conn, params["member_id"])
        if not who["is_admin"]:
            return "the recipient is no longer an admin"
        if m is None or not m["waiting"]:
            return "the member is no longer waiting"
        ctx.update(username=m["username"], display_name=m["display_name"] or m["username"],
                   member_id=m["id"])
        return Draft(who["email"], f"@{m['username']} is waiting for approval",
                     "member_waiting", ctx, kind)
    if kind == "digest":
        items = await Q.open_requests_since(conn, dt.datetime.fromisoformat(params["since"]))
        if not items:
            return "no new open requests"
        ctx.update(items=[dict(i) for i in items])
        subject = plural(len(items), "%(num)d new open request", "%(num)d new open requests")
        return Draft(who["email"], subject, "digest", ctx, kind)
    return f"unknown kind {kind!r}"


def _short(title: str | None, n: int = 60) -> str:
    t = title or "(untitled)"
    return t if len(t) <= n else t[: n - 1] + "…"


def compose(env: jinja2.Environment, config: Config, secret: bytes, relay: mailer.Relay,
            draft: Draft, *, user_id: str | None, key: str) -> EmailMessage:
    """Plain text plus simple HTML from ``web_templates/node/notifications/mail/``."""
    site = link_base(config)
    unsubscribe_url = None
    if user_id is not None:
        unsubscribe_url = (f"{site}/notifications/unsubscribe?token="
                           f"{unsubscribe_token(secret, user_id, draft.unsubscribe_kind)}")
    ctx = dict(draft.context, site_url=site, site_name=config["SITE_NAME"],
               unsubscribe_url=unsubscribe_url, subject=draft.subject)
    if draft.template == "confirm" and user_id is not None:
        ctx["confirm_url"] = (f"{site}/notifications/confirm?token="
                              f"{confirm_token(secret, user_id, draft.to)}")
    text = env.get_template(f"node/notifications/mail/{draft.template}.txt").render(ctx)
    html = env.get_template(f"node/notifications/mail/{draft.template}.html").render(ctx)
    msg = EmailMessage()
    msg["From"] = relay.sender
    msg["To"] = draft.to
    msg["Subject"] = f"[{config['SITE_NAME']}] {draft.subject}"
    msg["Date"] = email.utils.formatdate(usegmt=True)
    host = relay.envelope_from.rpartition("@")[2] or "localhost"
    msg["Message-ID"] = f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{host}>"
    msg["Auto-Submitted"] = "auto-generated"
    if unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    return msg


# --------------------------------------------------------------------------- the outbox job

def backoff_seconds(attempts: int) -> float:
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** max(0, attempts - 1))


def stale_after(config: Config) -> float:
    return config.get_int("WB_SMTP_TIMEOUT") * 2.0 + 30.0


async def deliver_due(app: web.Application) -> str:
    """Send what is due, within the per-minute limit. The ``mail:outbox`` job."""
    config = app[T.config_key]
    relay = mailer.relay_from(config)
    if relay is None:
        return "no relay configured (WB_SMTP_URL)"
    pool = app[T.pool_key]
    requeued, uncertain = await Q.recover_stale(pool, stale_after(config))
    if uncertain:
        log.warning("mail outcome unknown after a crash", extra={"messages": uncertain})
    budget = config.get_int("WB_MAIL_PER_MINUTE") - await Q.in_flight_last_minute(pool)
    tally = {"sent": 0, "retry": 0, "dropped": 0, "skipped": 0, "uncertain": 0}
    env = aiohttp_jinja2.get_env(app)
    secret = app[T.csrf_secret_key]
    max_attempts = config.get_int("WB_MAIL_MAX_ATTEMPTS")
    started = time.monotonic()
    while budget > 0 and time.monotonic() - started < RUN_SECONDS:
        async with pool.acquire() as conn:
            row = await Q.claim_next(conn)
            if row is None:
                break
            budget -= 1
            outcome = await _send_one(conn, env, config, secret, relay, row, max_attempts)
        tally[outcome] += 1
    parts = [f"{n} {k}" for k, n in tally.items() if n]
    if requeued:
        parts.append(f"{requeued} resumed")
    if budget <= 0:
        parts.append("per-minute limit reached")
    return ", ".join(parts) or "nothing due"


async def _send_one(conn: asyncpg.Connection, env: jinja2.Environment, config: Config,
                    secret: bytes, relay: mailer.Relay, row: Any, max_attempts: int) -> str:
    try:
        draft = await _draft(conn, row)
    except Exception:
        log.exception("mail could not be rendered", extra={"message_id": row["id"]})
        draft = "could not be rendered (see the node's log)"
        await Q.mark(conn, row["id"], "dropped", error=draft)
        return "dropped"
    if isinstance(draft, str):
        await Q.mark(conn, row["id"], "skipped", error=draft)
        return "skipped"
    message = compose(env, config, secret, relay, draft, user_id=row["user_id"],
                      key=row["idempotency_key"])

    async def committing() -> None:
        await Q.mark(conn, row["id"], "committing", to_addr=draft.to)

    try:
        await mailer.deliver(relay, message, before_body=committing)
    except mailer.MailError as exc:
        if exc.after_body:
            why = f"the relay may have it: {exc.reason} after the message body was sent"
            await Q.mark(conn, row["id"], "uncertain", error=why, to_addr=draft.to)
            log.warning("mail outcome unknown", extra={"message_id": row["id"], "reason": why})
            return "uncertain"
        if exc.permanent or row["attempts"] >= max_attempts:
            why = exc.reason if exc.permanent else \
                f"gave up after {row['attempts']} attempts: {exc.reason}"
            await Q.mark(conn, row["id"], "dropped", error=why, to_addr=draft.to)
            log.warning("mail dropped", extra={"message_id": row["id"], "kind": row["kind"],
                                               "reason": why})
            return "dropped"
        await Q.retry_later(conn, row["id"], backoff_seconds(row["attempts"]), exc.reason)
        log.info("mail will be retried", extra={"message_id": row["id"], "reason": exc.reason})
        return "retry"
    await Q.mark(conn, row["id"], "sent", error=None)
    log.info("mail sent", extra={"message_id": row["id"], "kind": row["kind"]})
    return "sent"


async def queue_digests(app: web.Application) -> str:
    """The ``mail:digest`` job: one digest per member who wants it, once a day."""
    async with app[T.pool_key].acquire() as conn, conn.transaction():
        n = await Q.queue_digests(conn, dt.datetime.now(dt.UTC).date())
    return plural(n, "%(num)d digest queued", "%(num)d digests queued")


async def send_test(env: jinja2.Environment, config: Config, secret: bytes,
                    address: str) -> str:
    """Send one test message straight to the relay (no outbox); return the relay used."""
    relay = mailer.relay_from(config)
    if relay is None:
        raise AppError(409, "no_relay", "No mail relay is configured: set WB_SMTP_URL.")
    to = clean_email(address)
    if to is None:
        raise bad_request("invalid_email", "Give an address to send the test to.")
    draft = Draft(to, "Test message", "test", {}, "none")
    message = compose(env, config, secret, relay, draft, user_id=None,
                      key=f"test:{secrets.token_hex(8)}")
    try:
        await mailer.deliver(relay, message)
    except mailer.MailError as exc:
        raise AppError(502, "relay_failed", exc.reason) from None
    return relay.describe()


@dataclass
class Status:
    relay: str | None
    relay_error: str | None
    counts: dict[str, int]
    problems: list[asyncpg.Record]


async def status(pool: asyncpg.Pool, config: Config) -> Status:
    relay_error = None
    try:
        relay = mailer.relay_from(config)
    except ValueError as exc:
        relay, relay_error = None, str(exc)
    return Status(relay.describe() if relay else None, relay_error, await Q.counts(pool),
                  await Q.problems(pool))


async def retry(pool: asyncpg.Pool, ids: list[str] | None, *, uncertain: bool) -> int:
    return await Q.requeue(pool, ids=ids or None, uncertain=uncertain)


# --------------------------------------------------------------------------- feeds

def _entries(site: str, rows: list[asyncpg.Record]) -> list[atom.Entry]:
    return [atom.Entry(
        id=f"{site}/requests/{r['id']}", title=r["title"] or "(untitled)",
        link=f"{site}/requests/{r['id']}", updated=r["updated_at"],
        published=r["created_at"], content=f"[{r['status']}] {r['description']}",
        author=r["author"]) for r in rows]


async def public_feed(pool: asyncpg.Pool, config: Config) -> tuple[bytes, dt.datetime]:
    site = link_base(config)
    rows = await Q.public_requests(pool, FEED_ENTRIES)
    return atom.build(feed_id=f"{site}/feeds/requests.atom",
                      title=f"{config['SITE_NAME']}: public requests",
                      self_url=f"{site}/feeds/requests.atom", site_url=site,
                      entries=_entries(site, rows),
                      subtitle="Help requests this community chose to make public.")


async def member_feed(pool: asyncpg.Pool, config: Config, token: str
                      ) -> tuple[bytes, dt.datetime]:
    if not token or len(token) > 128:
        raise not_found("unknown_feed", "No such feed.")
    owner = await Q.feed_owner(pool, feed_token_hash(token))
    if owner is None:
        raise not_found("unknown_feed", "No such feed.")
    site = link_base(config)
    rows = await Q.member_requests(pool, owner["id"], owner["is_admin"], FEED_ENTRIES)
    return atom.build(feed_id=f"{site}/feeds/member/{owner['id']}",
                      title=f"{config['SITE_NAME']}: requests for @{owner['username']}",
                      self_url=f"{site}/feeds/mine.atom", site_url=site,
                      entries=_entries(site, rows))
