"""Route policy, from the attacker's side: every route of the node declares who may use it,
an undeclared route is refused, and no GET route gives an anonymous visitor or a device
that only knows a username (half-authenticated) any members-only bytes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aiohttp import web

from node import policy as node_policy
from node.app import create_app
from service.ids import token_hash, ulid
from service.policy import (
    Policy,
    declare,
    markdown_table,
    policies_key,
    route_names,
    undeclared_routes,
)
from tests.conftest import make_node_config
from tests.node.auth.helpers import Device

MARKERS = {
    "request": "SECRET-REQUEST-7f3a",
    "comment": "SECRET-COMMENT-9c1d",
    "profile": "SECRET-BIO-4b2e",
    "contact": "secret-contact-51@example.org",
    "invite": "SECRET-INVITE-a8e0",
    "pending": "SECRET-PENDING-6d2c",
    "title": "SECRET-TITLE-0e9b",
}


def _app(tmp_path: Path, **overrides: str) -> web.Application:
    return create_app(make_node_config("postgresql://unused/unused", tmp_path, **overrides))


@pytest.mark.parametrize("copilot", ["false", "true"])
def test_every_node_route_declares_a_policy(tmp_path, copilot):
    app = _app(tmp_path, ENABLE_COPILOT=copilot)
    assert undeclared_routes(app) == []
    names = {r.resource.name for r in app.router.routes()}
    # the table names no route that does not exist (a renamed route would leave it open)
    stale = set(node_policy.ROUTES) - names
    if copilot == "true":
        assert stale == set()
    assert len(names) > 60


def test_an_undeclared_route_is_refused_at_build_time(tmp_path):
    app = _app(tmp_path)

    async def backdoor(request: web.Request) -> web.Response:
        return web.Response(text="members-only")

    app.router.add_get("/backdoor", backdoor, name="backdoor")
    with pytest.raises(RuntimeError, match="backdoor"):
        declare(app, node_policy.ROUTES)
    app.router.add_get("/nameless", backdoor)
    assert {r[0] for r in undeclared_routes(app)} == {"backdoor", None}


async def test_an_undeclared_route_is_denied_at_run_time(aiohttp_client, node_config):
    """Default deny even when a route is added after the app was built."""
    app = create_app(node_config)

    async def backdoor(request: web.Request) -> web.Response:
        return web.Response(text="members-only")

    app.router.add_get("/backdoor", backdoor, name="backdoor")
    client = await aiohttp_client(app)
    r = await client.get("/backdoor", headers={"Accept": "application/json"})
    assert r.status == 403 and (await r.json())["error"]["code"] == "no_policy"
    assert "members-only" not in await r.text()


async def _seed(pool) -> dict[str, str]:
    """A private marker in every entity: request, comment, profile, contact email, invite,
    and a pending request another device of the admin wrote."""
    ada, bob = ulid(), ulid()
    await pool.execute(
        "INSERT INTO users (id, username, display_name, bio, contact_email, is_admin) "
        "VALUES ($1, 'ada', 'Ada', $2, $3, true)", ada, MARKERS["profile"], MARKERS["contact"])
    await pool.execute(
        "INSERT INTO users (id, username, display_name, bio, invited_by) "
        "VALUES ($1, 'bob', 'Bob', $2, $3)", bob, MARKERS["profile"], ada)
    req = ulid()
    await pool.execute(
        "INSERT INTO requests (id, title, description, created_by, contact_email, status) "
        "VALUES ($1, $2, $3, $4, $5, 'open')",
        req, MARKERS["title"], MARKERS["request"], bob, MARKERS["contact"])
    await pool.execute(
        "INSERT INTO comments (id, request_id, created_by, body) VALUES ($1, $2, $3, $4)",
        ulid(), req, ada, MARKERS["comment"])
    await pool.execute(
        "INSERT INTO invites (id, token_hash, created_by, max_uses, suggested_bio, gratitude) "
        "VALUES ($1, $2, $3, 1, $4, $4)", ulid(), token_hash("invite-token-x"), ada,
        MARKERS["invite"])
    # another (unapproved) device of ada wrote something: nobody else sees it
    await pool.execute(
        "INSERT INTO sessions (id_hash, user_id, status, expires_at) "
        "VALUES ('other-device', $1, 'pending', now() + interval '1 hour')", ada)
    auth_id = ulid()
    await pool.execute(
        "INSERT INTO auth_requests (id, user_id, session_hash, code, expires_at) "
        "VALUES ($1, $2, 'other-device', '123456', now() + interval '1 hour')", auth_id, ada)
    await pool.execute(
        "INSERT INTO requests (id, description, created_by, status, auth_request_id) "
        "VALUES ($1, $2, $3, 'pending', $4)", ulid(), MARKERS["pending"], ada, auth_id)
    return {"id": req, "username": "ada", "user_id": ada, "token": "not-the-token",
            "name": "0123456789abcdef.png", "invite_id": ulid()}


def _get_paths(app: web.Application, params: dict[str, str]) -> list[str]:
    paths = set()
    for route in app.router.routes():
        if route.method != "GET" or route.resource is None:
            continue
        canonical = route.resource.canonical
        if canonical == "/static":
            paths.add("/static/app.css")
            continue
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: params.get(m.group(1), "x"), canonical)
        paths.add(path)
        if "requests" in path or path == "/":
            for status in ("all", "pending", "open"):
                paths.add(f"{path}?status={status}")
    return sorted(paths)


async def test_anonymous_and_half_authenticated_probes_find_no_private_marker(
        node_client, node_pool):
    """Every GET route, as HTML and JSON, from no cookie and from a device that only knows
    the ADMIN's username (the strongest half-authenticated cookie there is)."""
    params = await _seed(node_pool)
    anonymous = Device(node_client)
    half = Device(node_client)
    try:
        status, body = await half.login("ada")
        assert status == 200 and body["status"] == "pending"
        assert await half.whoami() == "pending"
        paths = _get_paths(node_client.server.app, params)
        assert len(paths) > 40
        seen_statuses = set()
        for device in (anonymous, half):
            for path in paths:
                for accept in ("text/html", "application/json"):
                    async with device.session.get(device.base + path, allow_redirects=False,
                                                  headers={"Accept": accept}) as r:
                        text = await r.text(errors="replace")
                        seen_statuses.add(r.status)
                        assert r.status < 500, (path, r.status, text[:300])
                        for entity, marker in MARKERS.items():
                            assert marker not in text, (entity, path, accept, r.status)
        assert {200, 303, 401, 403} <= seen_statuses
        # the half-authenticated device still has its own sign-in page and code
        status, page = await half.get("/login/pending")
        assert status == 200 and body["code"] in page
    finally:
        await anonymous.close()
        await half.close()


async def test_members_do_see_the_markers(node_client, node_pool):
    """The probe above could only pass vacuously if the markers were never shown at all."""
    from tests.factories import sign_in

    params = await _seed(node_pool)
    await sign_in(node_client, params["user_id"])
    r = await node_client.get(f"/requests/{params['id']}")
    text = await r.text()
    assert r.status == 200
    assert MARKERS["request"] in text and MARKERS["comment"] in text
    r = await node_client.get(f"/api/requests/{params['id']}")
    assert MARKERS["contact"] in await r.text()  # admins see contact emails
    r = await node_client.get("/people/bob")
    assert MARKERS["profile"] in await r.text()
    r = await node_client.get("/auth/devices")
    assert MARKERS["pending"] in await r.text()  # "this device also wrote: ..."


def test_policy_values_are_the_documented_ones():
    assert {p.value for p in Policy} == {"public", "device", "member", "admin", "peer",
                                         "metrics"}


def _between(text: str, name: str) -> str:
    start, end = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
    assert start in text and end in text, name
    return text.split(start, 1)[1].split(end, 1)[0]


DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_operator_guide_states_exactly_what_an_unapproved_device_can_do(tmp_path):
    """The guide's security table lists every route an unapproved device may use, with its
    policy, and nothing else."""
    app = _app(tmp_path, ENABLE_COPILOT="true")
    table = app[policies_key]
    allowed = {(method, path, table[name].value) for name, method, path in route_names(app)
               if method != "HEAD" and table[name] in (Policy.PUBLIC, Policy.DEVICE)}
    rows = _between((DOCS / "operator-guide.md").read_text(), "unapproved-device")
    documented = set()
    for line in rows.splitlines()[2:]:
        route, policy = [c.strip() for c in line.strip("|").split("|")][:2]
        method, path = route.split(" ", 1)
        documented.add((method, path.strip("`"), policy))
    assert documented == allowed


def test_api_docs_hold_both_route_policy_tables(tmp_path):
    from hub.app import create_app as hub_app
    from service.settings import Config

    text = (DOCS / "api.md").read_text()
    node = _app(tmp_path, ENABLE_COPILOT="true")
    assert _between(text, "node-policy") == markdown_table(node), \
        "regenerate with python3 -m ops.policy_docs node"
    hub = hub_app(Config({"WB_HUB_DATA_DIR": str(tmp_path / "hub")}, environ={},
                         dotenv=tmp_path / "no.env"))
    assert _between(text, "hub-policy") == markdown_table(hub), \
        "regenerate with python3 -m ops.policy_docs hub"
