"""The node's housekeeping jobs, wired to the feature modules that do the work."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import typedefs as T
from node.auth import service as auth_service
from node.profiles import invite_map
from node.scheduler import Job, register_job


async def expire_auth(app: web.Application) -> str:
    return summarize(await auth_service.expire_stale(app[T.pool_key]))


async def refresh_invite_maps(app: web.Application) -> str:
    return summarize(await invite_map.refresh_stale(app[T.pool_key]))


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
