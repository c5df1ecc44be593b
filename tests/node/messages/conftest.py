from __future__ import annotations

import pytest

from node import typedefs as T
from tests.conftest import make_node_config
from tests.factories import Member, member_maker  # noqa: F401  (Member: for tests)


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
    return member_maker(aiohttp_client, node_client)
