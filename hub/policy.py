"""The hub's route policy table: who may use each route, checked before any handler.

Default deny: a route missing here is refused (and ``create_app`` refuses to build);
``tests/hub/test_policy.py`` walks the router. The hub holds only public records, so most
reads are ``public``; writes need a peer's bearer token, the dashboard an admin cookie.
"""

from __future__ import annotations

from aiohttp import web

from hub import typedefs as T
from hub.errors import HubError
from service.policy import Policy, check_metrics, declare, policy_middleware, require_bearer

P = Policy

ROUTES: dict[str, Policy] = {
    "feed": P.PUBLIC, "healthz": P.PUBLIC, "readyz": P.PUBLIC, "openapi": P.PUBLIC,
    "static": P.PUBLIC, "well_known": P.PUBLIC, "metrics": P.METRICS,
    "feed_atom": P.PUBLIC, "origin_feed_atom": P.PUBLIC, "llms_txt": P.PUBLIC,
    # the transparency log: checkpoints, proofs and tiles are for anyone to check
    "tlog_checkpoint": P.PUBLIC, "tlog_checkpoint_at": P.PUBLIC, "tlog_key": P.PUBLIC,
    "tlog_inclusion": P.PUBLIC, "tlog_consistency": P.PUBLIC, "tlog_tile": P.PUBLIC,
    "tlog_witness_key": P.PUBLIC,
    # C2SP tlog-witness: unauthenticated by design; the handler cosigns only the logs the
    # operator lists, and only checkpoints consistent with the last one it cosigned
    "tlog_witness_add": P.PUBLIC,
    # the public log and index (only verified, public-scope records are ever stored)
    "log": P.PUBLIC, "stream": P.PUBLIC, "records": P.PUBLIC, "origins": P.PUBLIC,
    # peers
    "ingest": P.PEER, "subscribe": P.PEER, "subscriptions": P.PEER, "unsubscribe": P.PEER,
    "v1_push": P.PEER, "v1_pull": P.PEER, "v1_status": P.PEER,
    # the dashboard: the token login form is open, everything behind it needs the cookie
    "admin_login": P.PUBLIC, "admin_login_post": P.PUBLIC, "admin_logout": P.PUBLIC,
    "admin": P.ADMIN, "admin_key_approve": P.ADMIN, "admin_key_discard": P.ADMIN,
    "admin_block": P.ADMIN, "admin_unblock": P.ADMIN, "admin_peer": P.ADMIN,
}


async def check(request: web.Request, policy: Policy) -> None:
    if policy is Policy.PUBLIC:
        return
    if policy is Policy.PEER:
        require_bearer(request, "unauthorized")
    elif policy is Policy.ADMIN:
        if request.get(T.ADMIN) is None:
            raise web.HTTPSeeOther("/admin/login")
    elif policy is Policy.METRICS:
        check_metrics(request, request.app[T.config_key])
    else:  # member / device sessions do not exist on a hub
        raise HubError(403, "no_policy", "This route has no declared access policy.")


middleware = policy_middleware(check, HubError)


def install(app: web.Application) -> None:
    """Attach the table; call after every route is added (``create_app`` does)."""
    declare(app, ROUTES)

