"""The node's housekeeping jobs, wired to the feature modules that do the work."""

from __future__ import annotations

import importlib
from typing import Any

from aiohttp import web

from node import typedefs as T
from node.scheduler import Job, register_job


def _feature_fn(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name, None)
    except ModuleNotFoundError:
        return None


async def expire_auth(app: web.Application) -> str:
    fn = _feature_fn("node.auth.service", "expire_stale") or _feature_fn(
        "node.auth.queries", "expire_stale")
    if fn is None:
        return "auth module not installed"
    return summarize(await fn(app[T.pool_key]))


async def refresh_invite_maps(app: web.Application) -> str:
    fn = _feature_fn("node.profiles.invite_map", "refresh_stale")
    if fn is None:
        return "profiles module not installed"
    return summarize(await fn(app[T.pool_key]))


def summarize(result: Any) -> str:
    """A job's result as people read it: ``expired requests 0, deleted sessions 2``."""
    if result is None:
        return ""
    if isinstance(result, dict):
        return ", ".join(f"{str(k).replace('_', ' ')} {v}" for k, v in result.items())
    return str(result)


HOUSEKEEPING = (
    Job("housekeeping:expire-auth", expire_auth, interval=60.0),
    Job("housekeeping:invite-maps", refresh_invite_maps, interval=300.0),
)


def register_housekeeping(app: web.Application) -> None:
    for job in HOUSEKEEPING:
        register_job(app, job)
