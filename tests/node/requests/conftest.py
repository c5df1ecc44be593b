from __future__ import annotations

import pytest

from node import typedefs as T
from tests.factories import Member, member_maker  # noqa: F401  (Member: for tests)


@pytest.fixture
def pool(node_client):
    return node_client.server.app[T.pool_key]


@pytest.fixture
def member_factory(aiohttp_client, node_client):
    """Signed-in clients of the same app: make(username, admin=False, status='active')."""
    return member_maker(aiohttp_client, node_client)
