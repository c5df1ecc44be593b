"""The node application factory.

``create_app(config)`` does no I/O: resources are opened by one ``cleanup_ctx`` each
when the app starts (database, outbound HTTP client), so tests build the real app.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import asyncpg
import jinja2
from aiohttp import web

import web_templates
from node import caches, canonical, csrf_api, health, i18n, jobs, openapi, policy, scheduler
from node import typedefs as T
from node import web as W
from node.admin import handlers as admin_handlers
from node.auth import handlers as auth_handlers
from node.auth import review as review_handlers
from node.copilot import handlers as copilot_handlers
from node.drafts import handlers as drafts_handlers
from node.messages import handlers as messages_handlers
from node.metrics import NodeMetrics
from node.notifications import handlers as notifications_handlers
from node.pins import handlers as pins_handlers
from node.profiles import handlers as profiles_handlers
from node.promotions import handlers as promotions_handlers
from node.publication import handlers as publication_handlers
from node.recurring import handlers as recurring_handlers
from node.requests import handlers as requests_handlers
from node.skins import handlers as skins_handlers
from node.sync import handlers as sync_handlers
from node.tags import handlers as tags_handlers
from service import db, outage
from service.limits import limits_from_config
from service.ratelimit import RateLimiter
from service.settings import Config
from service.web import SharedTemplateCode, client_session_ctx

log = logging.getLogger("wb.node")

MIGRATIONS = Path(__file__).parent / "migrations"
TEMPLATES = Path(web_templates.__file__).parent
# Every node app of this process (tests make hundreds) shares its compiled templates.
TEMPLATE_CODE = SharedTemplateCode()
# forms and uploads; /sync/inbox reads its body itself, capped by WB_MAX_BUNDLE_BYTES
MAX_BODY = 8 * 1024 * 1024

# Feature packages, each with ``setup(app)`` that adds its routes, state and jobs; in the
# order their routes are added.
FEATURES = (auth_handlers, review_handlers, requests_handlers, profiles_handlers, sync_handlers,
            admin_handlers, copilot_handlers, notifications_handlers, publication_handlers,
            skins_handlers, pins_handlers, drafts_handlers,
            promotions_handlers, tags_handlers, messages_handlers,
            recurring_handlers)


def load_csrf_secret(config: Config) -> bytes:
    """SESSION_SECRET if set, else a random secret kept 0600 in the data directory."""
    if config["SESSION_SECRET"]:
        return config["SESSION_SECRET"].encode()
    data_dir = config.path("WB_DATA_DIR")
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "session_secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    value = secrets.token_hex(32).encode()
    with os.fdopen(fd, "wb") as f:
        f.write(value)
    return value


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[T.config_key]
    watch = app[T.table_watch_key]
    url, pool = await db.open_migrated(config["WB_DATABASE_URL"], config.path("WB_DATA_DIR"),
                                       "node", MIGRATIONS,
                                       max_size=config.get_int("WB_DB_POOL_MAX"),
                                       init=functools.partial(caches.init_connection, watch),
                                       reset_session=False)
    app[T.pool_key] = pool
    await watch.start(functools.partial(asyncpg.connect, url))
    try:
        yield
    finally:
        await watch.close()
        await pool.close()


def create_app(config: Config | None = None) -> web.Application:
    config = config or Config()
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[W.headers_middleware, W.error_middleware,
                     canonical.preferred_host_middleware, outage.middleware,
                     W.session_middleware, W.csrf_middleware, policy.middleware],
    )
    outage.setup(app, T.pool_key, W.wants_json, retry_after=config.get_int("WB_DB_RETRY_AFTER"))
    app[T.config_key] = config
    app[T.limits_key] = limits_from_config(config)
    app[T.csrf_secret_key] = load_csrf_secret(config)
    app[T.rate_limiter_key] = RateLimiter(config.get_int("WB_LOGIN_RATE_PER_MINUTE"), 60.0)
    app[T.metrics_key] = NodeMetrics()
    app[T.extras_key] = {}
    caches.setup(app)
    env = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "xml", "svg"]),
        auto_reload=config.get_bool("WB_TEMPLATE_RELOAD"), bytecode_cache=TEMPLATE_CODE,
    )
    i18n.install(env)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(client_session_ctx(T.client_key, "WhiteBalloon-node"))

    health.setup(app)
    openapi.setup(app)
    csrf_api.setup(app)
    scheduler.setup(app, start_scheduler=config.get_bool("WB_SCHEDULER"))
    for feature in FEATURES:
        feature.setup(app)
    jobs.register_housekeeping(app)
    app.router.add_static("/static", TEMPLATES / "static", name="static")
    app.router.add_get("/favicon.ico", _favicon, name="favicon")
    policy.install(app)
    return app


async def _favicon(request: web.Request) -> web.StreamResponse:
    """Browsers and crawlers ask for /favicon.ico whatever the page links; send the SVG."""
    raise web.HTTPMovedPermanently("/static/favicon.svg")
