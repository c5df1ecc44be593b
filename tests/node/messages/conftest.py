from __future__ import annotations

import pytest

from node import typedefs as T
from tests.conftest import make_node_config
from tests.factories import create_user, sign_in


class Member:
    def __init__(self, client, user_id: str, csrf: str, username: str):
        self.client = client
        self.user_id = user_id
        self.csrf = csrf
        self.username = username

    async def post(self, path: str, data: dict | None = None, *, json_reply: bool = False,
                   **kw):
        headers = {"Accept": "application/json"} if json_reply else {}
        body = dict(data or {})
        body["csrf_token"] = self.csrf
        return await self.client.post(path, data=body, headers=headers,
                                      allow_redirects=False, **kw)

    async def api_post(self, path: str, payload: dict):
        return await self.client.post(path, json=payload, allow_redirects=False,
                                      headers={"X-CSRF-Token": self.csrf,
                                               "Accept": "application/json"})

    async def get_json(self, path: str):
        return await self.client.get(path, headers={"Accept": "application/json"},
                                     allow_redirects=False)


@pytest.fixture
def node_config(node_db_url, tmp_path):
    """Messages switched on (they are off by default)."""
    return make_node_config(node_db_url, tmp_path / "node", WB_MESSAGES="true",
                            WB_MESSAGES_PER_MINUTE="5")


@pytest.fixture
def pool(node_client):
    return node_client.server.app[T.pool_key]


@pytest.fixture
def member_factory(aiohttp_client, node_client):
    """Signed-in clients of the same app: make(username, admin=False, status='active')."""
    app = node_client.server.app
    pool = app[T.pool_key]

    async def make(username: str, *, admin: bool = False, status: str = "active",
                   roles: tuple[str, ...] = ()) -> Member:
        client = node_client if not getattr(make, "used", False) else \
            await aiohttp_client(node_client.server)
        make.used = True
        user_id = await create_user(pool, username, admin=admin)
        for role in roles:  # node.profiles.service.ROLES, e.g. "reviewer"
            await pool.execute("INSERT INTO member_roles (user_id, role) VALUES ($1, $2)",
                               user_id, role)
        csrf = await sign_in(client, user_id, status=status)
        return Member(client, user_id, csrf, username)

    return make
