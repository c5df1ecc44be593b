"""The node's housekeeping jobs, wired to the feature modules that do the work."""

from __future__ import annotations

from aiohttp import web

from node import typedefs as T
from node.auth import service as auth_service
from node.profiles import invite_map
from node.scheduler import Job, register_job


async def expire_auth(app: web.Application) -> str:
    return str(await auth_service.expire_stale(app[T.pool_key]))


async def refresh_invite_maps(app: web.Application) -> str:
    return str(await invite_map.refresh_stale(app[T.pool_key]))


HOUSEKEEPING = (
    Job("housekeeping:expire-auth", expire_auth, interval=60.0),
    Job("housekeeping:invite-maps", refresh_invite_maps, interval=300.0),
)


def register_housekeeping(app: web.Application) -> None:
    for job in HOUSEKEEPING:
        register_job(app, job)
