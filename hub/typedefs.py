"""Typed application state of the hub: every key hung on the app, declared in one place."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import asyncpg
from aiohttp import web

from hub.cache import ResponseCache
from hub.metrics import HubMetrics
from hub.priority import WritesFirst
from hub.stream import Broadcaster
from protocol.limits import Limits
from service.settings import BY_NAME, TRUE_WORDS, Config

if TYPE_CHECKING:  # these import this module: typed for the checker, no import cycle
    from hub.delivery import Delivery
    from hub.ingest_pool import IngestPool
    from service.ratelimit import RateLimiter

_V = TypeVar("_V", int, float, bool)


def _parse(name: str, raw: str, kind: type) -> Any:
    raw = raw.strip()
    if kind is bool:
        return raw.lower() in TRUE_WORDS
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"setting {name} must be a number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"setting {name} must not be negative, got {raw!r}")
    return value


def _default(field: str, kind: type[_V]) -> _V:
    """The default of setting ``WB_HUB_<FIELD>``: the settings table is the one source."""
    name = f"WB_HUB_{field.upper()}"
    value: _V = _parse(name, BY_NAME[name].default, kind)
    return value


@dataclass(frozen=True)
class HubOptions:
    """Tunables of one hub process; each field is setting ``WB_HUB_<FIELD>`` (its default
    and its documentation live in ``service/settings.py`` only)."""

    rate_per_minute: int = _default("rate_per_minute", int)  # per peer (per process)
    page_limit: int = _default("page_limit", int)  # largest ?limit= of the bundle listing
    stream_max_lag: int = _default("stream_max_lag", int)
    stream_send_timeout: float = _default("stream_send_timeout", float)
    stream_batch_ms: float = _default("stream_batch_ms", float)
    stream_cache_entries: int = _default("stream_cache_entries", int)
    stream_cache_bytes: int = _default("stream_cache_bytes", int)
    hop_limit: int = _default("hop_limit", int)
    delivery: bool = _default("delivery", bool)  # run the push-delivery worker here
    follow: bool = _default("follow", bool)  # follow the upstream hubs in hub_upstreams
    delivery_batch: int = _default("delivery_batch", int)
    delivery_concurrency: int = _default("delivery_concurrency", int)
    delivery_timeout: float = _default("delivery_timeout", float)
    backoff_base: float = _default("backoff_base", float)
    backoff_max: float = _default("backoff_max", float)
    circuit_failures: int = _default("circuit_failures", int)
    circuit_pause: float = _default("circuit_pause", float)
    admin_session_hours: int = _default("admin_session_hours", int)
    feed_page_size: int = _default("feed_page_size", int)
    verify_processes: int = _default("verify_processes", int)  # 0: threads, no processes
    workers: int = _default("workers", int)  # serving processes of `wb hub serve`
    inline_verify_bytes: int = _default("inline_verify_bytes", int)  # 0: never inline
    read_defer_ms: float = _default("read_defer_ms", float)  # 0: reads never wait
    api_cache_entries: int = _default("api_cache_entries", int)  # 0: no cache
    api_cache_seconds: float = _default("api_cache_seconds", float)
    retention_days: float = _default("retention_days", float)  # 0: forever
    prune_interval: float = _default("prune_interval", float)  # 0: never
    v1_auto_register: bool = _default("v1_auto_register", bool)  # unknown v1 peers: pending
    witness_rate_per_minute: int = _default("witness_rate_per_minute", int)  # per address
    malloc_trim_interval: float = _default("malloc_trim_interval", float)  # 0: never

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> HubOptions:
        """Every field from its ``WB_HUB_<FIELD>`` setting, then ``overrides``."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f"WB_HUB_{f.name.upper()}"
            values[f.name] = _parse(name, config[name], type(f.default))
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class Peer:
    """An authenticated pusher (node or hub), resolved from its bearer token."""

    name: str
    kind: str
    max_bundle_bytes: int | None
    rate_per_minute: int | None


config_key = web.AppKey("config", Config)
options_key = web.AppKey("options", HubOptions)
limits_key = web.AppKey("limits", Limits)  # built once from WB_MAX_BUNDLE_BYTES
pool_key = web.AppKey("pool", asyncpg.Pool)
read_pool_key = web.AppKey("read_pool", asyncpg.Pool)  # public reads, apart from ingest
client_key = web.AppKey("client", aiohttp.ClientSession)
metrics_key = web.AppKey("metrics", HubMetrics)
rate_limiter_key: web.AppKey[RateLimiter] = web.AppKey("rate_limiter")
witness_limiter_key: web.AppKey[RateLimiter] = web.AppKey("witness_limiter")
broadcaster_key = web.AppKey("broadcaster", Broadcaster)
delivery_key: web.AppKey[Delivery] = web.AppKey("delivery")
database_url_key = web.AppKey("database_url", str)
executor_key: web.AppKey[IngestPool | None] = web.AppKey("executor")
records_cache_key = web.AppKey("records_cache", ResponseCache)
writes_first_key = web.AppKey("writes_first", WritesFirst)
# open live streams, closed (1001 "going away") when the app shuts down
streams_key: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("streams")

# Per-request keys (request[...]).
ADMIN: web.RequestKey[str | None] = web.RequestKey("wb_hub_admin")  # admin session hash
CSRF_TOKEN = web.RequestKey("wb_hub_csrf_token", str)
