"""Who may do what with a help request: the actor, and one check per action, shared by the
request service (which re-exports every name here), drafts, tags and recurring requests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node import typedefs as T


@dataclass(frozen=True)
class Actor:
    """Who acts: a signed-in viewer, or an operator at the CLI (admin, no user id)."""

    user_id: str | None
    is_admin: bool
    active: bool
    ip: str | None = None
    via: str = "web"
    #: designations an admin granted (``T.Viewer.roles``); admins hold every role
    roles: frozenset[str] = frozenset()

    @classmethod
    def of(cls, viewer: T.Viewer | None, ip: str | None = None) -> Actor | None:
        if viewer is None:
            return None
        return cls(viewer.user_id, viewer.is_admin, viewer.active, ip, roles=viewer.roles)

    def has_role(self, role: str) -> bool:
        """An active member holding ``role`` (admins, the CLI included, hold every role)."""
        return self.active and (self.is_admin or role in self.roles)

    @classmethod
    def cli(cls) -> Actor:
        return cls(None, True, True, None, "cli")


#: A member who neither wrote a record nor is an admin: how a shared cache encodes it.
MEMBER = Actor(None, False, True)


# --------------------------------------------------------------------------- permissions

def is_owner(actor: Actor | None, row: Any) -> bool:
    return actor is not None and actor.user_id is not None and row["created_by"] == actor.user_id


def can_view(actor: Actor | None, req: Any) -> bool:
    """Members-only: an unapproved device sees nothing here (its own writing is listed
    from its sign-in request, never through this check)."""
    if actor is None or not actor.active:
        return False
    if req["deleted_at"] is not None:
        return actor.is_admin
    if req["status"] == "pending":
        return is_owner(actor, req) or actor.is_admin
    return True


def can_complete(actor: Actor | None, req: Any) -> bool:
    return (actor is not None and actor.active and req["status"] == "open"
            and req["origin"] is None and req["deleted_at"] is None
            and (actor.is_admin or is_owner(actor, req)))


def can_comment(actor: Actor | None, req: Any) -> bool:
    return (actor is not None and actor.active and actor.user_id is not None
            and req["deleted_at"] is None and req["status"] != "pending")


def can_change_scope(actor: Actor | None, owner: str | None, origin: str | None) -> bool:
    if actor is None or not actor.active or origin is not None:
        return False
    return actor.is_admin or (actor.user_id is not None and owner == actor.user_id)


def can_see_contact(actor: Actor | None, req: Any) -> bool:
    return (actor is not None and actor.active
            and (is_owner(actor, req) or actor.is_admin))


def can_moderate(actor: Actor | None) -> bool:
    return actor is not None and actor.active and actor.is_admin


def permissions(actor: Actor | None, req: Any) -> dict[str, bool]:
    return {
        "can_complete": can_complete(actor, req),
        "can_comment": can_comment(actor, req),
        "can_change_scope": can_change_scope(actor, req["created_by"], req["origin"]),
        "can_see_contact": can_see_contact(actor, req),
        "can_reopen": (can_moderate(actor) or (is_owner(actor, req) and actor is not None
                                               and actor.active))
                      and req["status"] == "completed" and req["origin"] is None,
        "can_moderate": can_moderate(actor),
        "is_owner": is_owner(actor, req),
    }
