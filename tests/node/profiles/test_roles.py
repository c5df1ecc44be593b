"""Member roles (reviewer, house manager): only admins grant them, through the admin
profile page, its JSON answer and `wb roles`; each change is audited; the session carries
them; a disabled account gets none; roles never leave the node."""

from __future__ import annotations

import asyncio

from click.testing import CliRunner

from node.web import SESSION_COOKIE
from ops.cli import root
from tests.factories import create_session, create_user, sign_in

JSON = {"Accept": "application/json"}


async def _roles(pool, user_id):
    return sorted(r["role"] for r in await pool.fetch(
        "SELECT role FROM member_roles WHERE user_id = $1", user_id))


async def _audit(pool):
    return [(r["action"], r["target"]) for r in await pool.fetch(
        "SELECT action, target FROM audit_log WHERE action LIKE 'profile.role-%' ORDER BY id")]


async def test_admin_grants_and_revokes_roles_audited(node_client, node_pool):
    admin = await create_user(node_pool, "root", admin=True)
    ann = await create_user(node_pool, "ann", invited_by=admin)
    csrf = await sign_in(node_client, admin)
    r = await node_client.post(f"/admin/profiles/{ann}/grant-reviewer",
                               data={"csrf_token": csrf}, allow_redirects=False)
    assert r.status == 303
    r = await node_client.post(f"/admin/profiles/{ann}/grant-house-manager",
                               data={"csrf_token": csrf}, headers=JSON)
    assert r.status == 200 and (await r.json())["ok"]
    assert await _roles(node_pool, ann) == ["house_manager", "reviewer"]
    page = await (await node_client.get(f"/admin/profiles/{ann}")).text()
    assert "Reviewer" in page and "Remove reviewer role" in page
    # granting again changes nothing and audits nothing
    r = await node_client.post(f"/admin/profiles/{ann}/grant-reviewer",
                               data={"csrf_token": csrf}, headers=JSON)
    assert (await r.json())["message"] == "Nothing to change."
    r = await node_client.post(f"/admin/profiles/{ann}/revoke-reviewer",
                               data={"csrf_token": csrf}, headers=JSON)
    assert r.status == 200
    assert await _roles(node_pool, ann) == ["house_manager"]
    assert await _audit(node_pool) == [("profile.role-grant", ann), ("profile.role-grant", ann),
                                       ("profile.role-revoke", ann)]


async def test_members_reviewers_and_csrf_less_posts_cannot_grant(node_client, node_pool):
    admin = await create_user(node_pool, "root", admin=True)
    ann = await create_user(node_pool, "ann", invited_by=admin)
    bob = await create_user(node_pool, "bob", invited_by=admin)
    await node_pool.execute("INSERT INTO member_roles (user_id, role) VALUES ($1, 'reviewer')",
                            ann)
    csrf = await sign_in(node_client, ann)
    r = await node_client.post(f"/admin/profiles/{bob}/grant-reviewer",
                               data={"csrf_token": csrf}, headers=JSON)
    assert r.status == 403 and (await r.json())["error"]["code"] == "admin_only"
    node_client.session.cookie_jar.clear()
    await sign_in(node_client, admin)
    r = await node_client.post(f"/admin/profiles/{bob}/grant-reviewer", data={}, headers=JSON)
    assert r.status == 403
    r = await node_client.post(f"/admin/profiles/{bob}/grant-janitor",
                               data={"csrf_token": csrf}, headers=JSON)
    assert r.status in (403, 404)
    assert await _roles(node_pool, bob) == [] and await _audit(node_pool) == []


async def test_disabled_account_gets_no_role(node_client, node_pool):
    admin = await create_user(node_pool, "root", admin=True)
    ann = await create_user(node_pool, "ann", invited_by=admin)
    await node_pool.execute("UPDATE users SET disabled = true WHERE id = $1", ann)
    csrf = await sign_in(node_client, admin)
    r = await node_client.post(f"/admin/profiles/{ann}/grant-reviewer",
                               data={"csrf_token": csrf}, headers=JSON)
    assert r.status == 409 and (await r.json())["error"]["code"] == "account_disabled"
    assert await _roles(node_pool, ann) == []


async def test_session_viewer_carries_roles(node_client, node_pool):
    from node import typedefs as T
    from node.web import session_middleware  # noqa: F401  (the middleware under test)

    admin = await create_user(node_pool, "root", admin=True)
    ann = await create_user(node_pool, "ann", invited_by=admin)
    await node_pool.execute("INSERT INTO member_roles (user_id, role) VALUES ($1, 'reviewer')",
                            ann)
    seen = []
    cookie = await create_session(node_pool, ann)
    pending = await create_session(node_pool, ann, status="pending")

    async def probe(request):
        seen.append(request[T.VIEWER])
        from aiohttp import web
        return web.Response(text="ok")

    app = node_client.server.app
    for value in (cookie, pending):
        req = _fake_request(app, value)
        await session_middleware(req, probe)
    active, waiting = seen
    assert active.roles == frozenset({"reviewer"}) and active.has_role("reviewer")
    assert not active.has_role("house_manager")
    assert not waiting.has_role("reviewer")  # a device still waiting holds no role


def _fake_request(app, cookie):
    from aiohttp.test_utils import make_mocked_request

    return make_mocked_request("GET", "/", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
                               app=app)


async def test_cli_roles(node_db_url, tmp_path, node_pool):
    pool = node_pool
    admin = await create_user(pool, "root", admin=True)
    await create_user(pool, "ann", invited_by=admin)
    env = {"WB_DATABASE_URL": node_db_url, "WB_DATA_DIR": str(tmp_path / "n"),
           "SESSION_SECRET": "x"}

    def wb(*args):
        return CliRunner().invoke(root, list(args), env=env)

    r = await asyncio.to_thread(wb, "roles", "grant", "ann", "reviewer")
    assert r.exit_code == 0 and "granted" in r.output, r.output
    r = await asyncio.to_thread(wb, "roles", "list")
    assert r.exit_code == 0 and "reviewer" in r.output and "@ann" in r.output
    r = await asyncio.to_thread(wb, "roles", "grant", "ann", "janitor")
    assert r.exit_code != 0 and "unknown_role" in r.output
    r = await asyncio.to_thread(wb, "roles", "grant", "nobody", "reviewer")
    assert r.exit_code != 0 and "no local member" in r.output
    r = await asyncio.to_thread(wb, "roles", "revoke", "ann", "reviewer")
    assert r.exit_code == 0 and "revoked" in r.output
    r = await asyncio.to_thread(wb, "roles", "list", "reviewer")
    assert "no member holds" in r.output
