"""Fixtures shared by the node's feature tests: the app's pool and signed-in members."""

from __future__ import annotations

import pytest

from node import typedefs as T
from tests.factories import member_maker


@pytest.fixture
def pool(node_client):
    return node_client.server.app[T.pool_key]


@pytest.fixture
def member_factory(aiohttp_client, node_client):
    """Signed-in clients of the same app: make(username, admin=False, status='active',
    roles=())."""
    return member_maker(aiohttp_client, node_client)
