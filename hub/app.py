"""The hub application factory.

``create_app(config)`` does no I/O: the database pool, the outbound HTTP client, the
log broadcaster (LISTEN/NOTIFY) and the push-delivery worker are each opened by one
``cleanup_ctx`` when the app starts, so tests build the real app.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import WSCloseCode, web

import web_templates
from hub import admin, api, feeds, openapi, policy, public, tlog, v1
from hub import queries as Q
from hub import typedefs as T
from hub import web as W
from hub.cache import ResponseCache
from hub.delivery import Delivery
from hub.follow import Follower
from hub.ingest_pool import IngestPool, WorkerSetup
from hub.metrics import HubMetrics
from hub.priority import WritesFirst
from hub.retention import Pruner
from hub.stream import Broadcaster
from service import db, malloc_trim, outage
from service.limits import limits_from_config
from service.ratelimit import RateLimiter
from service.settings import Config
from service.web import SharedTemplateCode, client_session_ctx

log = logging.getLogger("wb.hub")

MIGRATIONS = Path(__file__).parent / "migrations"
TEMPLATES = Path(web_templates.__file__).parent
# Every hub app of this process shares its compiled templates (not with the node's:
# their Environments differ).
TEMPLATE_CODE = SharedTemplateCode()

# Route modules, each with ``setup(app)``; in the order their routes are added.
FEATURES = (api, v1, public, feeds, admin, tlog, openapi)


async def bounded(what: str, step: Awaitable[None],
                  fallback: Callable[[], None] | None = None, seconds: float = 10.0) -> None:
    """Run one shutdown step; a step that hangs is logged and abandoned (or forced)."""
    try:
        await asyncio.wait_for(step, seconds)
    except TimeoutError:
        log.error("shutdown step timed out", extra={"step": what})
        if fallback is not None:
            fallback()


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[T.config_key]
    url, pool = await db.open_migrated(config["WB_HUB_DATABASE_URL"],
                                       config.path("WB_HUB_DATA_DIR"), "hub", MIGRATIONS,
                                       max_size=config.get_int("WB_DB_POOL_MAX"),
                                       reset_session=False)
    # public reads (records API, stream catch-up) on connections of their own: under a
    # burst of pushes every pool connection is inside an ingest transaction, and a
    # reader queued behind them waited for seconds
    # (neither pool leaves session state behind: the follower's advisory lock and the
    # stream's LISTEN have connections of their own; ingest's hub_stage empties at commit)
    read_pool = await db.create_pool(url, max_size=config.get_int("WB_HUB_READ_POOL_MAX"),
                                     reset_session=False)
    async with pool.acquire() as conn:  # pushes stored by a killed process, never logged
        await Q.sequence_pending(conn)
    app[T.database_url_key] = url
    app[T.pool_key] = pool
    app[T.read_pool_key] = read_pool
    yield
    await bounded("read pool", read_pool.close(), read_pool.terminate)
    await bounded("database pool", pool.close(), pool.terminate)


async def broadcaster_ctx(app: web.Application) -> AsyncIterator[None]:
    bc = Broadcaster(app[T.read_pool_key], app[T.database_url_key],
                     app[T.options_key].stream_cache_entries,
                     app[T.options_key].stream_cache_bytes,
                     batch_seconds=app[T.options_key].stream_batch_ms / 1000)
    await bc.start()
    app[T.broadcaster_key] = bc
    yield
    await bounded("broadcaster", bc.stop())


async def delivery_ctx(app: web.Application) -> AsyncIterator[None]:
    delivery = Delivery(app[T.pool_key], app[T.client_key], app[T.options_key],
                        app[T.metrics_key])
    app[T.delivery_key] = delivery
    delivery.start()
    yield
    await bounded("delivery", delivery.stop())


async def follower_ctx(app: web.Application) -> AsyncIterator[None]:
    follower = Follower(app[T.pool_key], app[T.database_url_key], app[T.client_key],
                        partial(W.logged, app), app[T.limits_key])
    if app[T.options_key].follow:
        follower.start()
    yield
    await bounded("follower", follower.stop())


async def pruner_ctx(app: web.Application) -> AsyncIterator[None]:
    pruner = Pruner(app[T.pool_key], app[T.options_key])
    pruner.start()
    yield
    await bounded("prune job", pruner.stop())


async def executor_ctx(app: web.Application) -> AsyncIterator[None]:
    """Processes that verify and store pushes (hub.ingest_pool) when configured, else
    threads that verify them (stored by this process). After ``database_ctx``: the
    processes connect to the same database."""
    n = app[T.options_key].verify_processes
    config = app[T.config_key]
    pool = IngestPool(n, WorkerSetup(
        owner=os.getpid(), database_url=app[T.database_url_key],
        log_level=config["WB_LOG_LEVEL"], log_format=config["WB_LOG_FORMAT"],
        event_loop=config["WB_EVENT_LOOP"].strip().lower())) if n > 0 else None
    if pool is not None:
        try:
            await asyncio.wait_for(pool.warm(), 60)
        except (TimeoutError, OSError):
            log.warning("ingest processes were slow to start; continuing")
    app[T.executor_key] = pool
    yield
    if pool is not None:
        await pool.close()


async def _close_streams(app: web.Application) -> None:
    """Close every live stream ("going away"): a stream's handler only returns when its
    subscriber closes, so a stopping hub otherwise waited aiohttp's whole shutdown timeout
    (60 s) for subscribers that never would. The writers are woken to notice."""
    bc = app.get(T.broadcaster_key)
    if bc is not None:
        bc.advance(bc.head)
    await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=b"hub stopping")
                           for ws in list(app[T.streams_key])), return_exceptions=True)


def create_app(config: Config | None = None, options: T.HubOptions | None = None
               ) -> web.Application:
    config = config or Config()
    options = options or T.HubOptions.from_config(config)
    limits = limits_from_config(config)
    app = web.Application(
        client_max_size=limits.envelope_bytes + 1024 * 1024,
        middlewares=[W.headers_middleware, W.error_middleware, outage.middleware,
                     W.admin_middleware, policy.middleware],
    )
    outage.setup(app, T.pool_key, W.wants_json, retry_after=config.get_int("WB_DB_RETRY_AFTER"),
                 quiet=("wb.hub.delivery", "wb.hub.stream", "wb.hub.retention",
                        "wb.hub.tlog"))
    app[T.config_key] = config
    app[T.options_key] = options
    app[T.streams_key] = set()
    app[T.limits_key] = limits
    app[T.metrics_key] = HubMetrics()
    app[T.rate_limiter_key] = RateLimiter(max_keys=10_000)
    app[T.records_cache_key] = ResponseCache(options.api_cache_entries,
                                             options.api_cache_seconds)
    app[T.writes_first_key] = WritesFirst(options.read_defer_ms / 1000)
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "xml"]), bytecode_cache=TEMPLATE_CODE)
    env.globals["hub_url"] = config["WB_HUB_URL"].rstrip("/")
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(executor_ctx)
    app.cleanup_ctx.append(client_session_ctx(T.client_key, "WhiteBalloon-hub"))
    app.cleanup_ctx.append(broadcaster_ctx)
    app.cleanup_ctx.append(delivery_ctx)
    app.cleanup_ctx.append(follower_ctx)
    app.cleanup_ctx.append(pruner_ctx)
    app.cleanup_ctx.append(malloc_trim.trim_ctx(options.malloc_trim_interval))
    app.on_shutdown.append(_close_streams)

    for feature in FEATURES:
        feature.setup(app)
    app.router.add_static("/static", TEMPLATES / "static", name="static")
    policy.install(app)
    return app
