"""Issue 14, point 5: /metrics told anyone the community's size and activity. It now
answers only to bearer WB_METRICS_TOKEN, or, when no token is set, to a loopback client
that did not come through a reverse proxy."""

from __future__ import annotations

from unittest import mock

import pytest
from aiohttp.test_utils import make_mocked_request

from node.app import create_app
from service.policy import is_loopback
from tests.conftest import make_node_config

TOKEN = "metrics-token-for-tests-9d2f"


async def test_without_a_token_only_direct_loopback_clients_read_metrics(node_client):
    r = await node_client.get("/metrics")
    assert r.status == 200 and "wb_sessions" in await r.text()
    for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
        r = await node_client.get("/metrics", headers={header: "203.0.113.9",
                                                       "Accept": "application/json"})
        body = await r.json()
        assert r.status == 403 and body["error"]["code"] == "metrics_loopback_only", header
        assert "wb_sessions" not in str(body)


async def test_with_a_token_the_bearer_token_is_required(aiohttp_client, node_db_url,
                                                         tmp_path):
    config = make_node_config(node_db_url, tmp_path / "n", WB_METRICS_TOKEN=TOKEN)
    client = await aiohttp_client(create_app(config))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}):
        r = await client.get("/metrics", headers={**headers, "Accept": "application/json"})
        text = await r.text()
        assert r.status == 401 and "metrics_token_required" in text, headers
        assert "wb_sessions" not in text
    # the right token works from anywhere, a proxy included
    r = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}",
                                              "X-Forwarded-For": "203.0.113.9"})
    assert r.status == 200 and "wb_sessions" in await r.text()


def _request_from(peer: str, **headers: str):
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 40000) if name == "peername" else default)
    return make_mocked_request("GET", "/metrics", headers=headers, transport=transport)


@pytest.mark.parametrize(("peer", "headers", "expected"), [
    ("127.0.0.1", {}, True), ("127.8.9.10", {}, True), ("::1", {}, True),
    ("10.0.0.5", {}, False), ("192.168.1.20", {}, False), ("203.0.113.9", {}, False),
    ("::ffff:203.0.113.9", {}, False), ("127.0.0.1", {"X-Forwarded-For": "1.2.3.4"}, False),
    ("not-an-address", {}, False),
])
def test_loopback_means_this_machine_without_a_proxy(peer, headers, expected):
    assert is_loopback(_request_from(peer, **headers)) is expected
