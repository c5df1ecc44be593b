"""Typed application state: every key hung on the node app, declared in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from node.metrics import NodeMetrics
from protocol.limits import Limits
from service.ratelimit import RateLimiter
from service.settings import Config
from service.tablecache import TableWatch


@dataclass(frozen=True)
class Viewer:
    """Who is asking: resolved from the session cookie by the session middleware."""

    user_id: str
    username: str
    display_name: str
    is_admin: bool
    status: str  # "pending" (half-authenticated) or "active"
    session_hash: str
    #: designations an admin granted (node.profiles.service.ROLES): "reviewer", "house_manager"
    roles: frozenset[str] = frozenset()

    def has_role(self, role: str) -> bool:
        """An active member holding ``role`` (admins hold every role)."""
        return self.active and (self.is_admin or role in self.roles)

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def role(self) -> str:
        if not self.active:
            return "pending"
        return "admin" if self.is_admin else "member"


config_key = web.AppKey("config", Config)
limits_key = web.AppKey("limits", Limits)  # built once from WB_MAX_BUNDLE_BYTES
pool_key = web.AppKey("pool", asyncpg.Pool)
client_key = web.AppKey("client", aiohttp.ClientSession)
csrf_secret_key = web.AppKey("csrf_secret", bytes)
rate_limiter_key = web.AppKey("rate_limiter", RateLimiter)
metrics_key = web.AppKey("metrics", NodeMetrics)
# change counters of the tables the caches read (LISTEN/NOTIFY; service.tablecache)
table_watch_key = web.AppKey("table_watch", TableWatch)
# feature modules may park their own state here
extras_key: web.AppKey[dict[str, Any]] = web.AppKey("extras", dict)

# Per-request state (request[...]), typed like the app keys.
VIEWER: web.RequestKey[Viewer | None] = web.RequestKey("wb_viewer")
CSRF_TOKEN = web.RequestKey("wb_csrf_token", str)
WAITING_APPROVALS = web.RequestKey("wb_waiting_approvals", int)  # admins: for the nav badge
SKIN: web.RequestKey[str | None] = web.RequestKey("wb_skin")
# SYNC_PUBLIC_SCOPE in force (read with the session; an admin may change it at any time)
PUBLIC_SCOPE: web.RequestKey[str | None] = web.RequestKey("wb_public_scope")
UNREAD_MESSAGES = web.RequestKey("wb_unread_messages", int)  # direct messages: the nav badge
# time.monotonic() by which something this request read ends (node.caches.valid_until)
VALID_UNTIL = web.RequestKey("wb_valid_until", float)
