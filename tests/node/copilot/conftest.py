from __future__ import annotations

import pytest

from tests.conftest import make_node_config


@pytest.fixture
def copilot_overrides() -> dict[str, str]:
    return {}


@pytest.fixture
async def copilot_client(aiohttp_client, node_db_url, tmp_path, copilot_overrides):
    """The real node app with ENABLE_COPILOT set (the admin switch still starts off)."""
    from node.app import create_app

    values = {"ENABLE_COPILOT": "true"}
    values.update(copilot_overrides)
    config = make_node_config(node_db_url, tmp_path / "node", **values)
    return await aiohttp_client(create_app(config))


@pytest.fixture
async def gateway(aiohttp_server):
    """A fake chat-completions gateway (tests/node/copilot/fake_gateway.py) on loopback."""
    from tests.node.copilot.fake_gateway import FakeGateway

    fake = FakeGateway()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("/v1"))
    yield fake
    fake.release.set()
    fake.gate.set()
