"""The route policy tables of docs/api.md: ``python3 -m ops.policy_docs node|hub``.

Here, not in ``node/policy.py`` / ``hub/policy.py``: rendering needs the whole app, and the
app imports its policy module (no cycle that way).
"""

from __future__ import annotations

import sys

from service.policy import markdown_table
from service.settings import Config


def table(component: str) -> str:
    if component == "node":
        from node.app import create_app as node_app

        config = Config({"ENABLE_COPILOT": "true", "SESSION_SECRET": "docs"}, environ={})
        return markdown_table(node_app(config))
    if component == "hub":
        from hub.app import create_app as hub_app

        return markdown_table(hub_app(Config({}, environ={})))
    raise SystemExit("usage: python3 -m ops.policy_docs node|hub")


if __name__ == "__main__":
    print(table(sys.argv[1] if len(sys.argv) > 1 else ""), end="")
