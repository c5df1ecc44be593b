"""Typed application state of the hub: every key hung on the app, declared in one place."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from protocol.limits import Limits
from service.settings import Config


@dataclass(frozen=True)
class HubOptions:
    """Tunables of one hub process (defaults suit a small machine)."""

    rate_per_minute: int = 600            # pushes per peer per minute (per process)
    page_limit: int = 500                 # largest ?limit= of the bundle listing
    stream_max_lag: int = 1000            # live stream: entries behind head before cut-off
    stream_send_timeout: float = 10.0     # seconds one frame may take to drain
    stream_cache_entries: int = 512       # recent log frames kept in memory for streams
    hop_limit: int = 8                    # hubs a bundle may cross before we stop forwarding
    delivery: bool = True                 # run the push-delivery worker in this process
    follow: bool = True                   # follow the upstream hubs in hub_upstreams
    delivery_batch: int = 50
    delivery_concurrency: int = 8
    delivery_timeout: float = 15.0
    backoff_base: float = 1.0
    backoff_max: float = 600.0
    circuit_failures: int = 5             # consecutive failures before the long pause
    circuit_pause: float = 300.0
    admin_session_hours: int = 12
    feed_page_size: int = 20
    verify_processes: int = 0             # >0: verify pushes in a process pool of this size
    api_cache_entries: int = 256          # public API answers kept (0: no cache)
    api_cache_seconds: float = 5.0        # longest a cached answer is served
    retention_days: float = 30.0          # log entries kept (0: forever)
    prune_interval: float = 3600.0        # seconds between prune runs (0: never)

    @classmethod
    def from_config(cls, config: Config, **overrides: Any) -> HubOptions:
        """Every field from its ``WB_HUB_<FIELD>`` setting, then ``overrides``."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f"WB_HUB_{f.name.upper()}"
            raw = config[name].strip()
            kind = type(f.default)
            try:
                if kind is bool:
                    values[f.name] = config.get_bool(name)
                elif kind is int:
                    values[f.name] = int(raw)
                else:
                    values[f.name] = float(raw)
            except ValueError:
                raise ValueError(f"setting {name} must be a number, got {raw!r}") from None
            if kind is not bool and values[f.name] < 0:
                raise ValueError(f"setting {name} must not be negative, got {raw!r}")
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
client_key = web.AppKey("client", aiohttp.ClientSession)
metrics_key = web.AppKey("metrics", Any)
rate_limiter_key = web.AppKey("rate_limiter", Any)
broadcaster_key = web.AppKey("broadcaster", Any)
delivery_key = web.AppKey("delivery", Any)
database_url_key = web.AppKey("database_url", str)
executor_key = web.AppKey("executor", Any)  # hub.ingest.VerifierPool | None
records_cache_key = web.AppKey("records_cache", Any)  # hub.cache.ResponseCache

# Per-request keys (request[...]).
ADMIN: web.RequestKey[str | None] = web.RequestKey("wb_hub_admin")  # admin session hash
CSRF_TOKEN = web.RequestKey("wb_hub_csrf_token", str)
