"""Hub fixtures: the real hub app on a fresh cloned database, a registered peer."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub import queries as Q
from hub import typedefs as T
from hub.app import create_app
from service.ids import token_hash
from service.settings import Config
from tests.hub.helpers import Origin, seed

PEER_TOKEN = "peer-token-0123456789abcdef"  # noqa: S105


def make_hub_config(db_url: str, data_dir: Path) -> Config:
    return Config({"WB_HUB_DATABASE_URL": db_url, "WB_HUB_DATA_DIR": str(data_dir),
                   "WB_HUB_URL": "http://hub.test", "WB_DB_POOL_MAX": "8",
                   # verification in threads: no process pool per test hub
                   "WB_HUB_VERIFY_PROCESSES": "0"},
                  environ={}, dotenv=data_dir / "no.env")


@pytest.fixture
def hub_config(hub_db_url: str, tmp_path: Path) -> Config:
    return make_hub_config(hub_db_url, tmp_path / "hub")


@pytest.fixture
def make_hub(hub_config, aiohttp_client):
    """Start a hub app (optionally with options) as a real HTTP test server."""

    async def start(options: T.HubOptions | None = None, config: Config | None = None):
        return await aiohttp_client(create_app(config or hub_config, options))

    return start


@pytest.fixture
async def hub_client(make_hub):
    return await make_hub()


@pytest.fixture
async def hub_pool(hub_client):
    return hub_client.server.app[T.pool_key]


@pytest.fixture
def origin() -> Origin:
    return Origin(seed(1))


@pytest.fixture
async def peer(hub_pool, origin: Origin) -> str:
    """Peer 'alpha' with token PEER_TOKEN, trusting ``origin``'s key."""
    await Q.add_peer(hub_pool, "alpha", "node", token_hash(PEER_TOKEN))
    await Q.trust_key(hub_pool, origin.origin, origin.origin, origin.public_key, "alpha")
    return PEER_TOKEN


@pytest.fixture(params=["arrays", "copy"])
def both_stagings(request, monkeypatch):
    """Run the test once with index rows sent as arrays (small bundles) and once staged
    by COPY (big bundles; ``hub.queries.STAGE_MIN_ROWS``), so both paths of
    ``store_bundle`` meet the same attacks."""
    monkeypatch.setattr(Q, "STAGE_MIN_ROWS", 1 << 30 if request.param == "arrays" else 0)
    return request.param
