from __future__ import annotations

import pytest

from tests.conftest import make_node_config


@pytest.fixture
def node_config(node_db_url, tmp_path):
    """Messages switched on (they are off by default)."""
    return make_node_config(node_db_url, tmp_path / "node", WB_MESSAGES="true",
                            WB_MESSAGES_PER_MINUTE="5")
