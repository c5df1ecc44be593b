from __future__ import annotations

import pytest

from tests.node.auth.helpers import Device


@pytest.fixture
async def devices(node_client):
    """A factory of independent devices (cookie jars) talking to the same node."""
    made: list[Device] = []

    def make() -> Device:
        d = Device(node_client)
        made.append(d)
        return d

    yield make
    for d in made:
        await d.close()
