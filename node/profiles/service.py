"""Profile domain logic shared by the handlers, the CLI and later the copilot.

Visibility: admins see every local account; a member sees themself and other live
accounts that are public, that they invited, or that invited them. Contact email is
shown to the member and admins, to others only when the member chose to share it.
Pending requests are shown only to their author and admins.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from node.errors import AppError, bad_request, conflict, not_found
from node.profiles import avatars
from node.profiles import queries as Q
from node.requests import service as requests_service
from node.sync.outbox_scrub import scrub_outbox

log = logging.getLogger("wb.node.profiles")

MAX_DISPLAY_NAME = 80
MAX_BIO = 2000
MAX_EMAIL = 254
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PAGE_SIZE = 25


@dataclass(frozen=True)
class Actor:
    """Who acts: a member (id, admin flag) or an operator at the CLI (id None)."""

    user_id: str | None
    is_admin: bool
    ip: str | None = None


# --------------------------------------------------------------------------- reading

def contact_visible(target: asyncpg.Record, *, viewer_id: str, is_admin: bool) -> bool:
    return is_admin or target["id"] == viewer_id or bool(target["share_contact"])


async def person(pool: asyncpg.Pool, username: str, *, viewer_id: str, is_admin: bool
                 ) -> dict[str, Any]:
    """Everything /people/{username} shows this viewer; 404 when they may not see it.

    A member that exists but is hidden answers exactly like one that does not, so the
    page cannot be used to probe who is a member.
    """
    target = await Q.user_by_username(pool, username)
    if target is None or not await Q.can_see(pool, viewer_id=viewer_id, is_admin=is_admin,
                                             user_id=target["id"]):
        raise not_found("member_not_found", "No member with that name is visible to you.")
    own = target["id"] == viewer_id
    inviter = await Q.visible_user(pool, viewer_id=viewer_id, is_admin=is_admin,
                                   user_id=target["invited_by"])
    return {
        "person": target,
        "own": own,
        "show_contact": contact_visible(target, viewer_id=viewer_id, is_admin=is_admin),
        "inviter": inviter,
        "requests": await Q.requests_by(pool, target["id"], include_pending=own or is_admin,
                                        limit=20),
        "comments": await Q.comments_by(pool, target["id"], viewer_id=viewer_id,
                                        is_admin=is_admin, limit=20),
    }


def person_json(ctx: dict[str, Any]) -> dict[str, Any]:
    p = ctx["person"]
    inviter = ctx["inviter"]
    return {
        "username": p["username"], "display_name": p["display_name"] or p["username"],
        "bio": p["bio"], "scope": p["sync_scope"], "is_admin": p["is_admin"],
        "avatar": f"/avatars/{p['avatar_path']}" if p["avatar_path"] else None,
        "contact_email": p["contact_email"] if ctx["show_contact"] else None,
        "invited_by": (None if inviter is None else
                       inviter["username"] if inviter["visible"] else "member"),
        "requests": [{"id": r["id"], "title": r["title"], "status": r["status"],
                      "created_at": r["created_at"]} for r in ctx["requests"]],
        "comments": [{"id": c["id"], "request_id": c["request_id"], "body": c["body"],
                      "created_at": c["created_at"]} for c in ctx["comments"]],
    }


def parse_page(value: str | None) -> int:
    if not value:
        return 1
    if not value.isdigit() or not 1 <= int(value) <= 100000:
        raise AppError(400, "invalid_page", "The page number must be a positive integer.",
                       fields={"page": "must be a positive integer"})
    return int(value)


def choice(value: str | None, allowed: tuple[str, ...], name: str) -> str:
    value = value or ""
    if value and value not in allowed:
        raise AppError(400, f"invalid_{name}", f"Unknown {name} filter.",
                       fields={name: "one of " + ", ".join(allowed)})
    return value


# --------------------------------------------------------------------------- account

def _clean_line(value: str) -> str:
    return " ".join(value.split())


def _has_controls(value: str, *, allow_newlines: bool) -> bool:
    for ch in value:
        if allow_newlines and ch in "\n\r\t":
            continue
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co"):
            return True
    return False


def validate_account(form: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Clean the account form; return (values, field errors)."""
    errors: dict[str, str] = {}
    display_name = _clean_line(form.get("display_name", ""))
    bio = form.get("bio", "").replace("\r\n", "\n").strip()
    email = form.get("contact_email", "").strip()
    scope = form.get("scope", "private")
    if len(display_name) > MAX_DISPLAY_NAME:
        errors["display_name"] = f"At most {MAX_DISPLAY_NAME} characters."
    elif _has_controls(display_name, allow_newlines=False):
        errors["display_name"] = "Contains characters that cannot be shown."
    if len(bio) > MAX_BIO:
        errors["bio"] = f"At most {MAX_BIO} characters."
    elif _has_controls(bio, allow_newlines=True):
        errors["bio"] = "Contains characters that cannot be shown."
    if email and (len(email) > MAX_EMAIL or not EMAIL_RE.match(email)):
        errors["contact_email"] = "Enter an address like name@example.org, or leave it empty."
    if scope not in ("private", "public"):
        errors["scope"] = "Choose private or public."
    share = form.get("share_contact") in ("on", "1", "true", "yes")
    values = {"display_name": display_name, "bio": bio, "contact_email": email or None,
              "share_contact": share and bool(email), "scope": scope}
    return values, errors


async def update_account(pool: asyncpg.Pool, user_id: str, values: dict[str, Any],
                         actor: requests_service.Actor | None = None
                         ) -> requests_service.ScopeChange:
    """Save the account form. Its scope goes through the one scope service (audited,
    SYNC_PUBLIC_SCOPE gate), like every other scope change."""
    me = await Q.user_by_id(pool, user_id)
    if me is None:
        raise not_found()
    async with pool.acquire() as conn, conn.transaction():
        await Q.update_account(conn, user_id, **dict(values, scope=me["sync_scope"]))
        await scrub_outbox(conn)  # contact withdrawn: old bundles forget it
    actor = actor or requests_service.Actor(user_id, False, True, None, "account")
    result = requests_service.ScopeChange(0)
    if values["scope"] != me["sync_scope"]:
        result = await requests_service.change_scope(pool, actor, [("user", user_id)],
                                                     values["scope"])
    log.info("account updated", extra={"user_id": user_id, "scope": values["scope"]})
    return result


async def upload_avatar(pool: asyncpg.Pool, data_dir: Path, user_id: str, data: bytes,
                        max_bytes: int) -> str:
    """Validate, store, point the member at it, delete the old file. Raise AvatarError."""
    info = avatars.inspect(data, max_bytes)
    name = avatars.store(data_dir, info)
    try:
        old = await Q.set_avatar(pool, user_id, name)
    except BaseException:
        avatars.remove(data_dir, name)
        raise
    if old and old != name:
        avatars.remove(data_dir, old)
    log.info("avatar stored", extra={"user_id": user_id, "kind": info.kind,
                                     "width": info.width, "height": info.height})
    return name


async def reset_avatar(pool: asyncpg.Pool, data_dir: Path, target_id: str, actor: Actor
                       ) -> bool:
    """Remove a member's avatar (own, or anyone's for an admin/operator); audited."""
    async with pool.acquire() as conn, conn.transaction():
        old = await Q.set_avatar(conn, target_id, None)
        if actor.user_id != target_id:
            await Q.audit(conn, "profile.avatar_reset", actor_id=actor.user_id,
                          target=target_id, ip=actor.ip, details={"had_avatar": bool(old)})
    avatars.remove(data_dir, old)
    return bool(old)


# --------------------------------------------------------------------------- admin

#: designations an admin grants on top of membership (migration 0239): a reviewer may
#: approve other members' waiting sign-ins; a house manager may keep recurring requests.
#: Admins hold every role. Local state, never exported.
ROLES = {"reviewer": "Reviewer", "house_manager": "House manager"}
ROLE_ACTIONS = {f"{verb}-{role.replace('_', '-')}": (verb == "grant", role)
                for role in ROLES for verb in ("grant", "revoke")}
ADMIN_ACTIONS = ("promote", "demote", "disable", "enable", "reset-avatar", *ROLE_ACTIONS)


def parse_role(value: str) -> str:
    role = value.strip().lower().replace("-", "_")
    if role not in ROLES:
        raise bad_request("unknown_role", f"The role is one of {', '.join(ROLES)}.",
                          role=f"One of {', '.join(ROLES)}.")
    return role


async def set_role(pool: asyncpg.Pool, *, target_id: str, role: str, grant: bool,
                   actor: Actor) -> bool:
    """Grant or revoke ``role`` (audited as ``profile.role-grant`` / ``profile.role-revoke``);
    True when something changed. Only live accounts receive a role."""
    role = parse_role(role)
    async with pool.acquire() as conn, conn.transaction():
        target = await Q.user_by_id(conn, target_id)
        if target is None:
            raise not_found("member_not_found", "No such local member.")
        if grant and (target["disabled"] or target["deleted_at"]):
            raise conflict("account_disabled", "Enable the account before giving it a role.")
        if grant:
            changed = await Q.grant_role(conn, target_id, role, actor.user_id)
        else:
            changed = await Q.revoke_role(conn, target_id, role)
        if changed:
            await Q.audit(conn, f"profile.role-{'grant' if grant else 'revoke'}",
                          actor_id=actor.user_id, target=target_id, ip=actor.ip,
                          details={"username": target["username"], "role": role})
    return changed


async def admin_action(pool: asyncpg.Pool, data_dir: Path, *, action: str, target_id: str,
                       actor: Actor) -> str:
    """Apply one admin action in one transaction with its audit row; return a message."""
    if action not in ADMIN_ACTIONS:
        raise not_found("unknown_action", "Unknown action.")
    target = await Q.user_by_id(pool, target_id)
    if target is None:
        raise not_found("member_not_found", "No such local member.")
    if action == "reset-avatar":
        had = await reset_avatar(pool, data_dir, target_id, actor)
        return "Avatar removed." if had else "That member had no avatar."
    if action in ROLE_ACTIONS:
        grant, role = ROLE_ACTIONS[action]
        if not await set_role(pool, target_id=target_id, role=role, grant=grant, actor=actor):
            return "Nothing to change."
        return f"{ROLES[role]} role {'given' if grant else 'removed'}."
    async with pool.acquire() as conn, conn.transaction():
        admins = await Q.lock_admins(conn)
        removes_admin = target_id in admins and action in ("demote", "disable")
        if removes_admin and len(admins) <= 1:
            raise conflict("last_admin",
                           "This is the last admin of the node: promote another member "
                           "first, then try again.")
        if action == "promote" and (target["disabled"] or target["deleted_at"]):
            raise conflict("account_disabled", "Enable the account before promoting it.")
        if action in ("promote", "demote"):
            changed = await Q.set_admin(conn, target_id, action == "promote")
        else:
            changed = await Q.set_disabled(conn, target_id, action == "disable")
            if action == "disable" and changed:
                await Q.revoke_sessions(conn, target_id)
                await scrub_outbox(conn)
        if changed:
            await Q.audit(conn, f"profile.{action}", actor_id=actor.user_id,
                          target=target_id, ip=actor.ip,
                          details={"username": target["username"]})
    log.info("admin action", extra={"action": action, "target": target_id,
                                    "changed": changed})
    if not changed:
        return "Nothing to change."
    return {"promote": "Now an admin.", "demote": "No longer an admin.",
            "disable": "Account disabled; its sessions were signed out.",
            "enable": "Account enabled."}[action]
