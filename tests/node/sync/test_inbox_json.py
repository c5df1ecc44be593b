"""The peers' inbox answers JSON whatever the client accepts, also when the route policy
refuses the request before its handler runs (found by schemathesis: a 401 page in HTML)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("headers", [{}, {"Accept": "text/html"},
                                     {"Authorization": "Bearer not-a-hub-token-0123456789",
                                      "Accept": "text/html,application/xhtml+xml"}])
async def test_inbox_refusals_are_json(node_client, headers):
    r = await node_client.post("/sync/inbox", data=b"\xa0", headers={
        "Content-Type": "application/vnd.whiteballoon.bundle+cbor", **headers})
    assert r.status == 401
    assert r.headers["Content-Type"].startswith("application/json")
    assert (await r.json())["error"]["code"] == "unauthorized"
