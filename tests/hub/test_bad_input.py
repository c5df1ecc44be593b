"""Values PostgreSQL cannot store are a clear 400, never a 500 (found by schemathesis)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("path", [
    "/api/v2/bundles?origin=%00",
    "/api/v2/bundles?entity=%00",
    "/api/v2/records?origin=%00",
    "/api/v2/records?q=%00",
])
async def test_nul_in_query_is_invalid_characters(hub_client, peer, path):
    r = await hub_client.get(path, headers={"Authorization": f"Bearer {peer}"})
    assert r.status == 400, await r.text()
    assert (await r.json())["error"]["code"] == "invalid_characters"


async def test_nul_in_subscription_fields_changes_nothing(hub_client, hub_pool, peer):
    auth = {"Authorization": f"Bearer {peer}"}
    for body in ({"mode": "pull", "origins": ["a\x00b"]},
                 {"mode": "push", "inbox_url": "http://x/\x00"}):
        r = await hub_client.post("/api/v2/subscriptions", json=body, headers=auth)
        assert r.status == 400, await r.text()
        assert (await r.json())["error"]["code"] == "invalid_characters"
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_subscriptions") == 0


async def test_huge_subscription_cursor_is_refused(hub_client, hub_pool, peer):
    r = await hub_client.post("/api/v2/subscriptions",
                              json={"mode": "pull", "cursor": 10**20},
                              headers={"Authorization": f"Bearer {peer}"})
    assert r.status == 400
    assert (await r.json())["error"]["code"] == "invalid_subscription"
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_subscriptions") == 0


@pytest.mark.parametrize("inbox_url", [[None], {"u": "http://x"}, 7, "ftp://x/inbox"])
async def test_pull_subscription_with_a_non_url_inbox_is_refused(hub_client, hub_pool, peer,
                                                                 inbox_url):
    r = await hub_client.post("/api/v2/subscriptions",
                              json={"mode": "pull", "inbox_url": inbox_url},
                              headers={"Authorization": f"Bearer {peer}"})
    assert r.status == 400, await r.text()
    assert (await r.json())["error"]["code"] == "invalid_subscription"
    assert await hub_pool.fetchval("SELECT count(*) FROM hub_subscriptions") == 0
