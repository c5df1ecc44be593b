"""Our own hub and node as real loopback HTTP servers, for the black-box runners."""

from __future__ import annotations

import io

import pytest

from conformance_tests.report import Report
from hub import queries as Q
from hub import typedefs as HT
from hub.app import create_app as create_hub
from service.ids import token_hash
from tests.hub.conftest import make_hub_config

HUB_TOKEN = "conformance-peer-token-0123456789"  # noqa: S105
SUBSCRIBER_TOKEN = "conformance-subscriber-token-0123"  # noqa: S105
ADMIN_TOKEN = "conformance-admin-token-0123456789"  # noqa: S105
INBOX_TOKEN = "conformance-inbox-token-0123456789"  # noqa: S105


@pytest.fixture
async def live_hub(hub_db_url, tmp_path, aiohttp_client):
    """A hub with the conformance peer, a subscriber peer and an admin token, as an
    operator would set it up (docs/conformance.md)."""
    client = await aiohttp_client(create_hub(make_hub_config(hub_db_url, tmp_path / "hub")))
    pool = client.server.app[HT.pool_key]
    await Q.add_peer(pool, "conformance", "node", token_hash(HUB_TOKEN))
    await Q.add_peer(pool, "subscriber", "node", token_hash(SUBSCRIBER_TOKEN))
    await Q.add_admin_token(pool, token_hash(ADMIN_TOKEN))
    return client


def url_of(client) -> str:
    return str(client.make_url("/")).rstrip("/")


def new_report(suite: str) -> Report:
    return Report(suite, out=io.StringIO())
