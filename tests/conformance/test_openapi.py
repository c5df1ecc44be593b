"""The OpenAPI documents list exactly the API routes each app registers, and are served."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from hub import openapi as hub_openapi
from hub.app import create_app as create_hub
from node import openapi as node_openapi
from node.app import create_app as create_node
from tests.conftest import make_node_config
from tests.hub.conftest import make_hub_config

METHODS = {"get", "post", "put", "patch", "delete"}


def registered(app, module) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if not path or route.method.lower() not in METHODS:
            continue
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", path)
        if path.startswith(module.API_PREFIXES) or path in module.API_PATHS:
            found.add((path, route.method.lower()))
    return found


def documented(module) -> set[tuple[str, str]]:
    return {(p, m) for p, ops in module.document()["paths"].items() for m in ops if m in METHODS}


def test_hub_document_matches_routes(tmp_path: Path) -> None:
    app = create_hub(make_hub_config("postgresql://unused/x", tmp_path))
    assert registered(app, hub_openapi) == documented(hub_openapi)
    assert ("/api/v2/bundles", "post") in documented(hub_openapi)


def test_node_document_matches_routes(tmp_path: Path) -> None:
    app = create_node(make_node_config("postgresql://unused/x", tmp_path))
    assert registered(app, node_openapi) == documented(node_openapi)
    assert ("/sync/inbox", "post") in documented(node_openapi)


@pytest.mark.parametrize("module", [hub_openapi, node_openapi], ids=["hub", "node"])
def test_documents_are_valid_openapi(module) -> None:
    validate(module.document())  # raises on any violation of the OpenAPI 3.0 schema


async def test_served_by_both_apps(live_hub, node_client) -> None:
    for client, module in ((live_hub, hub_openapi), (node_client, node_openapi)):
        r = await client.get("/openapi.json")
        assert r.status == 200
        assert await r.json() == module.document()
