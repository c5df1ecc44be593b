"""Trust onboarding: first-admin bootstrap, invites, registration, device-approved login.

Shared by the web handlers, the ``wb`` CLI and (later) the copilot. Every operation
that writes several rows runs in one transaction; failures raise ``AppError`` with a
stable code and change nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from node.auth import queries as q
from node.auth.approval import (  # noqa: F401 (re-exported: handlers, CLI, tests)
    Decision,
    Voucher,
    WrongCode,
    approve,
    deny,
    session_lifetime,
)
from node.errors import AppError, bad_request, conflict, not_found
from node.notifications import service as notifications
from node.web import session_hash
from service.ids import new_token, token_hash, ulid
from service.settings import Config

log = logging.getLogger("wb.node.auth")

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,31}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{1,63}$")
INVITE_TEXT_FIELDS = {  # name -> max length
    "suggested_username": 32, "suggested_bio": 2000, "gratitude": 2000,
    "support_message": 2000, "help_examples": 2000, "fun_details": 2000,
}
MAX_INVITE_USES = 1000
MAX_INVITE_DAYS = 365
PHOTO_TYPES = {  # extension -> magic-bytes test
    "png": lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"),
    "jpg": lambda b: b.startswith(b"\xff\xd8\xff"),
    "gif": lambda b: b[:6] in (b"GIF87a", b"GIF89a"),
    "webp": lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP",
}
PHOTO_NAME = re.compile(r"^[A-Za-z0-9_-]{20,64}\.(png|jpg|gif|webp)$")


def request_lifetime(config: Config) -> dt.timedelta:
    return dt.timedelta(minutes=config.get_int("WB_AUTH_REQUEST_MINUTES"))


def new_code() -> str:
    """A six-digit verification code from the system's CSPRNG."""
    return f"{secrets.randbelow(1_000_000):06d}"


def _text(data: dict[str, Any], name: str, limit: int, *, single_line: bool = False) -> str:
    value = data.get(name) or ""
    if not isinstance(value, str):
        raise bad_request("invalid_field", f"{name} must be text.", **{name: "must be text"})
    value = value.strip()
    if len(value) > limit:
        raise bad_request("invalid_field", f"{name} is too long.",
                          **{name: f"at most {limit} characters"})
    if single_line and ("\n" in value or "\r" in value):
        raise bad_request("invalid_field", f"{name} must be a single line.",
                          **{name: "must be a single line"})
    return value


def clean_username(value: Any) -> str:
    username = (value or "").strip() if isinstance(value, str) else ""
    if not USERNAME.match(username):
        raise bad_request("invalid_username",
                          "Choose a username of 2-32 letters, digits, '.', '_' or '-'.",
                          username="2-32 letters, digits, '.', '_' or '-', starting with a "
                                   "letter or digit")
    return username


# --------------------------------------------------------------------------- registration

@dataclass(frozen=True)
class Registration:
    user_id: str
    username: str
    cookie: str
    status: str  # "active" or "pending"
    is_admin: bool
    request_id: str | None  # the initial help request, if any
    auth_request_id: str | None  # set when the session awaits approval
    code: str | None


def clean_registration(data: dict[str, Any]) -> dict[str, Any]:
    username = clean_username(data.get("username"))
    email = _text(data, "contact_email", 254, single_line=True)
    if email and not EMAIL.match(email):
        raise bad_request("invalid_email", "That contact email does not look right.",
                          contact_email="not an email address")
    title = _text(data, "request_title", 200, single_line=True)
    description = _text(data, "request_description", 5000)
    if title and not description:
        raise bad_request("invalid_request", "Describe what you need help with.",
                          request_description="required when a title is given")
    return {
        "username": username,
        "display_name": _text(data, "display_name", 80, single_line=True) or username,
        "bio": _text(data, "bio", 2000),
        "contact_email": email or None,
        "request_title": title,
        "request_description": description,
    }


def invite_problem(invite: asyncpg.Record | None) -> AppError:
    """Why an invite could not be used, as a clear error."""
    if invite is None:
        return not_found("invite_unknown", "This invite link is not valid. Ask for a new one.")
    if invite["disabled"]:
        return AppError(410, "invite_disabled", "This invite was withdrawn by its creator.")
    if invite["expires_at"] is not None and invite["expires_at"] <= dt.datetime.now(dt.UTC):
        return AppError(410, "invite_expired", "This invite has expired. Ask for a new one.")
    if invite["use_count"] >= invite["max_uses"]:
        return AppError(410, "invite_used_up", "This invite has already been used up.")
    return AppError(409, "invite_busy", "This invite could not be used just now; try again.")


async def invite_for_token(pool: q.Conn, token: str) -> asyncpg.Record:
    """The invite behind a share-link token, if it can still be used."""
    if not token or len(token) > 128:
        raise invite_problem(None)
    invite = await q.invite_by_token_hash(pool, token_hash(token))
    if invite is None or invite["disabled"] or invite["use_count"] >= invite["max_uses"] or (
            invite["expires_at"] is not None
            and invite["expires_at"] <= dt.datetime.now(dt.UTC)):
        raise invite_problem(invite)
    return invite


async def register(pool: asyncpg.Pool, config: Config, data: dict[str, Any], *,
                   invite_token: str | None, ip: str | None, user_agent: str = ""
                   ) -> Registration:
    """Create a member and a session. The first local member becomes admin (race-safe)."""
    clean = clean_registration(data)
    cookie = new_token()
    sess_hash = session_hash(cookie)
    user_id = ulid()
    async with pool.acquire() as conn, conn.transaction():
        first = False
        if not await q.has_local_users(conn):
            await q.lock_bootstrap(conn)
            first = not await q.has_local_users(conn)
        invite = None
        if first:
            status = "active"
        else:
            if not invite_token:
                raise AppError(403, "invite_required",
                               "This node is invite-only: open the invite link you were given.")
            if len(invite_token) > 128:
                raise invite_problem(None)
            invite = await q.use_invite(conn, token_hash(invite_token))
            if invite is None:
                raise invite_problem(await q.invite_by_token_hash(conn, token_hash(invite_token)))
            status = "active" if invite["auto_approve"] else "pending"
        try:
            async with conn.transaction():
                await q.insert_user(
                    conn, user_id=user_id, username=clean["username"],
                    display_name=clean["display_name"], bio=clean["bio"],
                    contact_email=clean["contact_email"], is_admin=first,
                    invited_by=invite["created_by"] if invite else None,
                    invite_id=invite["id"] if invite else None)
        except asyncpg.UniqueViolationError:
            raise conflict("username_taken",
                           f"The username {clean['username']!r} is taken; choose another."
                           ) from None
        lifetime = session_lifetime(config)
        await q.insert_session(conn, id_hash=sess_hash, user_id=user_id, status=status,
                               lifetime=lifetime, ip=ip, user_agent=user_agent)
        auth_request_id = code = None
        if status == "pending":
            auth_request_id, code = ulid(), new_code()
            await q.insert_auth_request(conn, request_id=auth_request_id, user_id=user_id,
                                        session_hash=sess_hash, code=code, lifetime=lifetime,
                                        ip=ip, user_agent=user_agent)
            await notifications.member_waiting(conn, user_id)
        request_id = None
        if clean["request_description"]:
            request_id = ulid()
            await q.insert_request(conn, request_id=request_id, title=clean["request_title"],
                                   description=clean["request_description"],
                                   created_by=user_id,
                                   status="open" if status == "active" else "pending",
                                   auth_request_id=auth_request_id)
        await q.audit(conn, "user.register", actor_id=user_id, target=user_id, ip=ip,
                      details={"invite_id": invite["id"] if invite else None,
                               "invited_by": invite["created_by"] if invite else None,
                               "session": status, "admin": first})
        if first:
            await q.audit(conn, "admin.bootstrap", actor_id=user_id, target=user_id, ip=ip,
                          details={"username": clean["username"]})
    log.info("member registered", extra={"user_id": user_id, "session_status": status,
                                         "first_admin": first})
    return Registration(user_id=user_id, username=clean["username"], cookie=cookie,
                        status=status, is_admin=first, request_id=request_id,
                        auth_request_id=auth_request_id, code=code)


# --------------------------------------------------------------------------- login

@dataclass(frozen=True)
class LoginStart:
    user_id: str
    cookie: str
    request_id: str
    code: str
    expires_at: dt.datetime


async def start_login(pool: asyncpg.Pool, config: Config, username: Any, *, ip: str | None,
                      user_agent: str = "", replaces: str | None = None) -> LoginStart:
    """Username-only login: a half-authenticated session plus a verification request."""
    if not isinstance(username, str) or not username.strip() or len(username) > 64:
        raise bad_request("invalid_username", "Enter your username.", username="required")
    user = await q.user_by_username(pool, username.strip())
    if user is None or user["disabled"]:
        raise not_found("unknown_user", f"There is no member called {username.strip()!r} "
                        "on this node.")
    cookie = new_token()
    sess_hash = session_hash(cookie)
    request_id, code = ulid(), new_code()
    lifetime = request_lifetime(config)
    async with pool.acquire() as conn, conn.transaction():
        if replaces:
            await q.cancel_requests_of_session(conn, replaces)
            await q.revoke_session(conn, replaces)
        await q.insert_session(conn, id_hash=sess_hash, user_id=user["id"], status="pending",
                               lifetime=lifetime, ip=ip, user_agent=user_agent)
        await q.insert_auth_request(conn, request_id=request_id, user_id=user["id"],
                                    session_hash=sess_hash, code=code, lifetime=lifetime,
                                    ip=ip, user_agent=user_agent)
        await notifications.signin_waiting(conn, request_id)
        await q.audit(conn, "login.request", actor_id=user["id"], target=request_id, ip=ip,
                      details={"user_agent": user_agent[:120]})
        expires_at = await q.auth_request_expiry(conn, request_id)
    log.info("login requested", extra={"user_id": user["id"], "request_id": request_id})
    return LoginStart(user_id=user["id"], cookie=cookie, request_id=request_id, code=code,
                      expires_at=expires_at)


async def logout(pool: asyncpg.Pool, sess_hash: str, *, actor_id: str | None,
                 ip: str | None) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await q.cancel_requests_of_session(conn, sess_hash)
        if await q.revoke_session(conn, sess_hash) is not None:
            await q.audit(conn, "session.logout", actor_id=actor_id, target=None, ip=ip)


async def revoke(pool: asyncpg.Pool, sess_hash: str, *, actor_id: str | None,
                 ip: str | None) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await q.cancel_requests_of_session(conn, sess_hash)
        row = await q.revoke_session(conn, sess_hash)
        if row is None:
            raise not_found("unknown_session", "That session is already closed.")
        await q.audit(conn, "session.revoke", actor_id=actor_id, target=row["user_id"], ip=ip)


async def expire_stale(pool: q.Conn) -> dict[str, int]:
    """Clean up overdue login requests and dead sessions (scheduler job and CLI)."""
    result = await q.expire_stale(pool)
    log.info("stale sessions cleaned", extra=result)
    return result


# --------------------------------------------------------------------------- invites

@dataclass(frozen=True)
class NewInvite:
    id: str
    token: str
    max_uses: int
    expires_at: dt.datetime | None
    auto_approve: bool


def _int(data: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = data.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise bad_request("invalid_field", f"{name} must be a whole number.",
                          **{name: "a whole number"}) from None
    if not low <= value <= high:
        raise bad_request("invalid_field", f"{name} must be between {low} and {high}.",
                          **{name: f"between {low} and {high}"})
    return value


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def clean_invite(data: dict[str, Any]) -> dict[str, Any]:
    fields = {name: _text(data, name, limit, single_line=name == "suggested_username")
              for name, limit in INVITE_TEXT_FIELDS.items()}
    if fields["suggested_username"]:
        fields["suggested_username"] = clean_username(fields["suggested_username"])
    days = _int(data, "expires_days", 14, 0, MAX_INVITE_DAYS)
    return {
        "max_uses": _int(data, "max_uses", 1, 1, MAX_INVITE_USES),
        "expires_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)) if days else None,
        "auto_approve": _bool(data.get("auto_approve"), True),
        "fields": fields,
    }


def save_photo(config: Config, content: bytes) -> str:
    """Check an uploaded photo's size and type; store it under a random name."""
    limit = config.get_int("WB_MAX_UPLOAD_BYTES")
    if len(content) > limit:
        raise AppError(413, "photo_too_large", f"The photo is larger than {limit} bytes.",
                       fields={"photo": f"at most {limit} bytes"})
    ext = next((e for e, test in PHOTO_TYPES.items() if test(content)), None)
    if ext is None:
        raise bad_request("photo_type", "The photo must be a PNG, JPEG, GIF or WebP image.",
                          photo="PNG, JPEG, GIF or WebP")
    directory = uploads_dir(config)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{new_token(18)}.{ext}"
    (directory / name).write_bytes(content)
    return name


def uploads_dir(config: Config) -> Path:
    return config.path("WB_DATA_DIR") / "uploads" / "invites"


def photo_file(config: Config, name: str | None) -> Path | None:
    if not name or not PHOTO_NAME.match(name):
        return None
    path = uploads_dir(config) / name
    return path if path.is_file() else None


async def create_invite(pool: asyncpg.Pool, config: Config, data: dict[str, Any], *,
                        created_by: str | None, ip: str | None, photo: bytes | None = None,
                        via: str = "web") -> NewInvite:
    clean = clean_invite(data)
    photo_path = save_photo(config, photo) if photo else None
    token = new_token()
    invite_id = ulid()
    async with pool.acquire() as conn, conn.transaction():
        await q.insert_invite(conn, invite_id=invite_id, token_hash=token_hash(token),
                              created_by=created_by, max_uses=clean["max_uses"],
                              expires_at=clean["expires_at"],
                              auto_approve=clean["auto_approve"], fields=clean["fields"],
                              photo_path=photo_path)
        await q.audit(conn, "invite.create", actor_id=created_by, target=invite_id, ip=ip,
                      details={"max_uses": clean["max_uses"],
                               "auto_approve": clean["auto_approve"], "via": via,
                               "expires_at": clean["expires_at"].isoformat()
                               if clean["expires_at"] else None})
    log.info("invite created", extra={"invite_id": invite_id, "via": via})
    return NewInvite(id=invite_id, token=token, max_uses=clean["max_uses"],
                     expires_at=clean["expires_at"], auto_approve=clean["auto_approve"])


async def disable_invite(pool: asyncpg.Pool, invite_id: str, *, actor_id: str | None,
                         is_admin: bool, ip: str | None) -> None:
    async with pool.acquire() as conn, conn.transaction():
        row = await q.disable_invite(conn, invite_id, None if is_admin else actor_id)
        if row is None:
            raise not_found("unknown_invite", "No such invite of yours.")
        await q.audit(conn, "invite.disable", actor_id=actor_id, target=invite_id, ip=ip)


def invite_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/register/{token}"


# --------------------------------------------------------------------------- admins

async def create_admin(pool: asyncpg.Pool, username: str, *, via: str = "cli") -> tuple[str, bool]:
    """Create a local admin, or promote an existing member; returns (user_id, created)."""
    username = clean_username(username)
    async with pool.acquire() as conn, conn.transaction():
        await q.lock_bootstrap(conn)
        user = await q.user_by_username(conn, username)
        if user is not None:
            await q.set_admin(conn, user["id"], True)
            await q.audit(conn, "admin.promote", actor_id=None, target=user["id"], ip=None,
                          details={"via": via})
            return user["id"], False
        user_id = ulid()
        await q.insert_user(conn, user_id=user_id, username=username, display_name=username,
                            bio="", contact_email=None, is_admin=True, invited_by=None,
                            invite_id=None)
        await q.audit(conn, "admin.create", actor_id=None, target=user_id, ip=None,
                      details={"via": via})
        return user_id, True
