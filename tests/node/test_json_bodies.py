"""Every JSON-taking form route answers bad JSON the same way: 400 invalid_json, nothing
written (one reader, node.web.read_json_object)."""

from __future__ import annotations

import pytest

from tests.factories import create_user, sign_in


@pytest.mark.parametrize("path", ["/api/requests", "/requests", "/drafts",
                                  "/settings/notifications"])
@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"'])
async def test_bad_json_is_400_invalid_json_and_writes_nothing(node_client, node_pool, path,
                                                                body):
    uid = await create_user(node_pool, "ann")
    csrf = await sign_in(node_client, uid)
    before = await node_pool.fetchval("SELECT count(*) FROM requests")
    r = await node_client.post(path, data=body, headers={
        "Content-Type": "application/json", "X-CSRF-Token": csrf,
        "Accept": "application/json"})
    assert r.status == 400, await r.text()
    assert (await r.json())["error"]["code"] == "invalid_json"
    assert await node_pool.fetchval("SELECT count(*) FROM requests") == before
