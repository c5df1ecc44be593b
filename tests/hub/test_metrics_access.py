"""The hub's /metrics (subscriber names and lag) answers only to WB_METRICS_TOKEN or,
with no token set, to a loopback client that did not come through a proxy."""

from __future__ import annotations

from hub.app import create_app
from service.settings import Config

TOKEN = "hub-metrics-token-77aa"


async def test_hub_metrics_without_a_token_are_loopback_only(hub_client):
    r = await hub_client.get("/metrics")
    assert r.status == 200 and "wb_hub" in await r.text()
    r = await hub_client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    body = await r.json() if "json" in r.headers["Content-Type"] else await r.text()
    assert r.status == 403 and "metrics_loopback_only" in str(body)


async def test_hub_metrics_with_a_token(aiohttp_client, hub_db_url, tmp_path):
    config = Config({"WB_HUB_DATABASE_URL": hub_db_url, "WB_HUB_DATA_DIR": str(tmp_path),
                     "WB_HUB_URL": "http://hub.test", "WB_METRICS_TOKEN": TOKEN},
                    environ={}, dotenv=tmp_path / "no.env")
    client = await aiohttp_client(create_app(config))
    r = await client.get("/metrics")
    assert r.status == 401 and "wb_hub" not in await r.text()
    r = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 200 and "wb_hub" in await r.text()
