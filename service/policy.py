"""One declared authorization policy per route, default deny (shared by node and hub).

Each app keeps a table ``{route name: Policy}`` in its own ``policy`` module and installs
``policy_middleware`` with a ``check`` callable that knows the app's identities (the
node's member sessions, the hub's admin cookie). A route that is missing from the table
is refused with 403 ``no_policy`` before its handler runs, and ``undeclared_routes``
lets a test (and ``declare``, when the app is built) fail on any such route.

Policies, from the most open:

- ``public``: anyone. On the node, a device that is not approved yet is treated as
  anonymous here: the handler never learns who it claims to be.
- ``device``: anyone, and an unapproved (half-authenticated) device keeps its identity,
  for its own sign-in state and what it wrote itself (sign in, sign out, its pending page).
- ``member``: an approved member session.
- ``admin``: an approved admin session (on the hub: an admin cookie).
- ``peer``: a bearer token of a registered peer (or an MCP token); the header is required
  here and the handler checks the token's value.
- ``metrics``: the ``WB_METRICS_TOKEN`` bearer token, or a loopback client with no proxy
  header when no token is set.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Iterator, Mapping

from aiohttp import web

from service.errors import CodedError
from service.settings import Config

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Policy(enum.StrEnum):
    PUBLIC = "public"
    DEVICE = "device"
    MEMBER = "member"
    ADMIN = "admin"
    PEER = "peer"
    METRICS = "metrics"


policies_key = web.AppKey("wb_route_policies", dict)
ROUTE_POLICY: web.RequestKey[Policy | None] = web.RequestKey("wb_route_policy")


class PolicyDenied(CodedError):
    """A request refused by the route policy: status, stable code, message (turned into
    the app's own error by ``policy_middleware``)."""


def route_names(app: web.Application) -> Iterator[tuple[str | None, str, str]]:
    """(name, method, path) of every route of the app's router."""
    for route in app.router.routes():
        resource = route.resource
        path = resource.canonical if resource is not None else "?"
        yield (resource.name if resource is not None else None), route.method, path


def undeclared_routes(app: web.Application) -> list[tuple[str | None, str, str]]:
    table = app.get(policies_key, {})
    return [r for r in route_names(app) if r[0] not in table]


def declare(app: web.Application, table: Mapping[str, Policy]) -> None:
    """Attach the app's policy table; refuse to build an app with an undeclared route."""
    app[policies_key] = dict(table)
    missing = undeclared_routes(app)
    if missing:
        raise RuntimeError("routes without a declared policy: "
                           + ", ".join(f"{m} {p} ({n})" for n, m, p in missing))


def policy_of(request: web.Request) -> Policy | None:
    """The policy of the matched route; None when no route matched (404/405 answers)."""
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return None
    name = resource.name
    table = request.app.get(policies_key, {})
    if name is None or name not in table:
        raise PolicyDenied(403, "no_policy", "This route has no declared access policy.")
    return table[name]


def bearer_token(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        return ""
    return token


PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def is_loopback(request: web.Request) -> bool:
    """A client on this machine that did not come through a reverse proxy."""
    if any(h in request.headers for h in PROXY_HEADERS):
        return False
    remote = request.remote or ""
    try:
        return ipaddress.ip_address(remote.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def check_metrics(request: web.Request, config: Config) -> None:
    """``WB_METRICS_TOKEN`` as a bearer token; without one, loopback clients only."""
    expected = config["WB_METRICS_TOKEN"]
    if expected:
        sent = bearer_token(request)
        if not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise PolicyDenied(401, "metrics_token_required",
                               "Send Authorization: Bearer <WB_METRICS_TOKEN>.")
        return
    if not is_loopback(request):
        raise PolicyDenied(403, "metrics_loopback_only",
                           "Metrics answer only to this machine; set WB_METRICS_TOKEN to "
                           "scrape them from elsewhere.")


def require_bearer(request: web.Request, code: str) -> None:
    if not bearer_token(request):
        raise PolicyDenied(401, code, "Send Authorization: Bearer <token>.")


def policy_middleware(check: Callable[[web.Request, Policy], Awaitable[None]],
                      error: Callable[[int, str, str], Exception]):
    """A middleware that runs ``check(request, policy)`` before every routed handler;
    a refusal becomes the app's own error (``error(status, code, message)``)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            policy = policy_of(request)
            request[ROUTE_POLICY] = policy
            if policy is not None:
                await check(request, policy)
        except PolicyDenied as exc:
            raise error(exc.status, exc.code, exc.message) from None
        return await handler(request)

    return middleware


def markdown_table(app: web.Application) -> str:
    """The app's route policy as a Markdown table (docs/api.md holds it; a test checks)."""
    table = app.get(policies_key, {})
    rows = sorted({(path, method, table.get(name)) for name, method, path in route_names(app)
                   if method != "HEAD"}, key=lambda r: (r[0], r[1]))
    lines = ["| method | path | policy |", "|---|---|---|"]
    for path, method, policy in rows:
        value = policy.value if policy is not None else "**undeclared: denied**"
        lines.append(f"| {method} | `{path}` | {value} |")
    return "\n".join(lines) + "\n"
