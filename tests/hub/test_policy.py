"""The hub's route policy: every route declares who may use it, undeclared routes are
refused, and an anonymous client gets into no peer or admin route."""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from hub import policy as hub_policy
from hub.app import create_app
from service.policy import Policy, declare, policies_key, undeclared_routes


def test_every_hub_route_declares_a_policy(hub_config):
    app = create_app(hub_config)
    assert undeclared_routes(app) == []
    names = {r.resource.name for r in app.router.routes()}
    assert set(hub_policy.ROUTES) == names  # no stale entry left open by a rename

    async def backdoor(request: web.Request) -> web.Response:
        return web.Response(text="x")

    app.router.add_get("/backdoor", backdoor, name="backdoor")
    with pytest.raises(RuntimeError, match="backdoor"):
        declare(app, hub_policy.ROUTES)


async def test_undeclared_route_is_denied_at_run_time(aiohttp_client, hub_config):
    app = create_app(hub_config)

    async def backdoor(request: web.Request) -> web.Response:
        return web.Response(text="admin-only")

    app.router.add_get("/api/v2/backdoor", backdoor, name="backdoor")
    client = await aiohttp_client(app)
    r = await client.get("/api/v2/backdoor")
    assert r.status == 403 and (await r.json())["error"]["code"] == "no_policy"


async def test_anonymous_client_gets_into_no_peer_or_admin_route(hub_client):
    app = hub_client.server.app
    table = app[policies_key]
    checked = 0
    for route in app.router.routes():
        if route.method in ("HEAD",) or route.resource is None:
            continue
        policy = table[route.resource.name]
        if policy not in (Policy.PEER, Policy.ADMIN):
            continue
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", "alpha", route.resource.canonical)
        if policy is Policy.ADMIN and route.method == "POST":
            path = path.replace("alpha", "block")
        for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic x"}):
            r = await hub_client.request(route.method, path, headers=headers,
                                         allow_redirects=False)
            if policy is Policy.PEER:
                assert r.status == 401, (route.method, path, headers)
                assert (await r.json())["error"]["code"] == "unauthorized"
            else:
                assert r.status in (303, 403), (route.method, path, r.status)
                if r.status == 303:
                    assert r.headers["Location"] == "/admin/login"
            checked += 1
    assert checked >= 3 * 12
