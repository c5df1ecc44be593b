"""PREFERRED_HOST: one canonical address for the node.

Links that leave the page (invite links and their QR codes, share links, the addresses
pages show) use ``link_base``: PREFERRED_HOST when set, then the address the request came
in on, then SITE_URL. ``preferred_host_middleware`` answers a page requested under
another host with a 308 to the same path on the preferred host (method and body kept),
except health, metrics and the peer API, which must keep answering under any name a
monitor or a hub was given. Since no page is served elsewhere, the session cookie (a
host-only cookie) is only ever set for the preferred host.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from node import typedefs as T
from service.settings import Config

# Routes that answer under any host name: health and metrics for monitors, the bearer
# APIs (the inbox for hubs, /mcp for MCP hosts: a redirect would make clients drop their
# Authorization header, and no cookie is involved). Named routes, so a new path cannot
# slip out of the list by a typo; tests/node/test_preferred_host.py holds the list
# against every PEER and METRICS route of node.policy.
EXEMPT_ROUTES = frozenset({"healthz", "readyz", "metrics", "sync_inbox", "mcp", "mcp_get",
                           "mcp_delete"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _split(value: str, default_scheme: str) -> tuple[str, str]:
    """``"Wb.Example.org:443"`` -> ``("https", "wb.example.org")``: scheme and host with a
    default port dropped."""
    value = value.strip()
    if "://" not in value:
        value = f"{default_scheme}://{value}"
    parts = urlsplit(value)
    scheme = (parts.scheme or default_scheme).lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and str(port) != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return scheme, host


def _site_scheme(config: Config) -> str:
    return "https" if config.https else "http"


def preferred(config: Config) -> tuple[str, str] | None:
    """(scheme, host) of PREFERRED_HOST, or None when it is not set. A bare host takes
    SITE_URL's scheme."""
    raw = config["PREFERRED_HOST"].strip()
    if not raw:
        return None
    scheme, host = _split(raw, _site_scheme(config))
    return (scheme, host) if host else None


def preferred_base(config: Config) -> str | None:
    pref = preferred(config)
    return None if pref is None else f"{pref[0]}://{pref[1]}"


def request_host(request: web.Request) -> str:
    """The host the client asked for (X-Forwarded-Host behind a trusted proxy)."""
    config = request.app[T.config_key]
    host = request.headers.get("Host", "")
    if config.get_bool("WB_TRUST_PROXY"):
        host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip() or host
    return host


def request_scheme(request: web.Request) -> str:
    config = request.app[T.config_key]
    if config.get_bool("WB_TRUST_PROXY"):
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            return proto
    return request.scheme


def link_base(config: Config, request: web.Request | None = None,
              fallback: str | None = None) -> str:
    """Base URL for links people copy, scan or click elsewhere: PREFERRED_HOST, then the
    request's own address (``fallback``, e.g. the Origin the creator used), then
    SITE_URL."""
    base = preferred_base(config)
    if base:
        return base
    if fallback:
        return fallback
    return config.site_url


@web.middleware
async def preferred_host_middleware(request: web.Request,
                                    handler: Handler) -> web.StreamResponse:
    config = request.app[T.config_key]
    pref = preferred(config)
    if pref is None:
        return await handler(request)
    route = request.match_info.route
    if route is not None and route.name in EXEMPT_ROUTES:
        return await handler(request)
    scheme = request_scheme(request)
    _asked_scheme, asked = _split(request_host(request) or "", scheme)
    if asked == pref[1]:
        return await handler(request)
    raise web.HTTPPermanentRedirect(f"{pref[0]}://{pref[1]}{request.path_qs}")
