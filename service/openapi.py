"""Pieces shared by the node's and the hub's OpenAPI 3 documents."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

CBOR = "application/vnd.whiteballoon.bundle+cbor"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    return json_body(ref("Error"), description)


#: The operational endpoints both apps serve the same way.
OPERATIONS_PATHS: dict[str, Any] = {
    "/healthz": {"get": {"summary": "Liveness", "responses": {"200": json_body(
        {"type": "object", "properties": {"status": {"type": "string"}}}, "Alive.")}}},
    "/readyz": {"get": {"summary": "Readiness (database reachable)", "responses": {
        "200": json_body({"type": "object"}, "Ready."),
        "503": json_body({"type": "object"}, "Database down.")}}},
    "/metrics": {"get": {
        "summary": "Prometheus metrics",
        "description": "Only with `Authorization: Bearer <WB_METRICS_TOKEN>`, or, when no "
                       "token is set, from loopback without a proxy header.",
        "responses": {
            "200": {"description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}}},
            "401": error("metrics_token_required: WB_METRICS_TOKEN is set and was not sent."),
            "403": error("metrics_loopback_only: no token is set and the client is not "
                         "local.")}}},
    "/openapi.json": {"get": {"summary": "This document", "responses": {
        "200": json_body({"type": "object"}, "OpenAPI 3 document.")}}},
}


def build_document(*, title: str, version: str, description: str, paths: dict[str, Any],
                   schemas: dict[str, Any], security_schemes: dict[str, Any],
                   server_url: str = "/") -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version, "description": description},
        "servers": [{"url": server_url}],
        "paths": {**paths, **OPERATIONS_PATHS},
        "components": {"schemas": schemas, "securitySchemes": security_schemes},
    }


def add_route(app: web.Application, document: Callable[[], dict[str, Any]]) -> None:
    """Serve ``document()`` at ``GET /openapi.json``."""

    async def openapi_json(request: web.Request) -> web.Response:
        return web.json_response(document(), headers={"Cache-Control": "public, max-age=300"})

    app.router.add_get("/openapi.json", openapi_json, name="openapi")
