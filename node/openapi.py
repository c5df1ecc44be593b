"""The OpenAPI 3 document of the node's JSON API, served at ``GET /openapi.json``.

Covers the machine endpoints: ``/api/*`` (docs/api.md), the sync inbox a hub pushes to,
health and metrics. Pages (HTML forms, also answering JSON to their own script) and the
MCP endpoint (docs/copilot.md) are not part of it. tests/conformance/test_openapi.py
compares the paths and methods here with the routes the app registers.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node.web import csrf_exempt

CBOR = "application/vnd.whiteballoon.bundle+cbor"

#: Paths that are part of the machine API (everything else is pages, admin, static, MCP).
API_PREFIXES = ("/api/",)
API_PATHS = frozenset({"/sync/inbox", "/healthz", "/readyz", "/metrics", "/openapi.json"})


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _error_or_page(description: str) -> dict[str, Any]:
    """Outside /api/ errors are JSON only when the client accepts application/json."""
    return {"description": description, "content": {
        "application/json": {"schema": _ref("Error")},
        "text/html": {"schema": {"type": "string"}}}}


NULLABLE_STR = {"type": "string", "nullable": True}
SESSION = [{"session": []}]
UNSAFE = [{"session": [], "csrf": []}]
ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
SIGNED_IN = {"401": _error("`login_required`: sign in first."),
             "403": _error("`session_not_approved`, `forbidden` or `csrf_failed`.")}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                           "fields": {"type": "object",
                                      "additionalProperties": {"type": "string"}}}}}},
    "Person": {
        "type": "object", "nullable": True,
        "properties": {"id": {"type": "string"}, "username": NULLABLE_STR,
                       "display_name": NULLABLE_STR, "instance": NULLABLE_STR}},
    "Request": {
        "type": "object",
        "required": ["id", "title", "description", "status", "created_at", "sync_scope",
                     "can_complete"],
        "properties": {
            "id": {"type": "string"}, "title": NULLABLE_STR, "description": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "open", "completed"]},
            "creator": _ref("Person"),
            "created_at": {"type": "string"}, "updated_at": NULLABLE_STR,
            "completed_at": NULLABLE_STR,
            "sync_scope": {"type": "string", "enum": ["private", "public"]},
            "origin": {"type": "object", "nullable": True},
            "can_complete": {"type": "boolean"},
            "comment_count": {"type": "integer"},
            "contact_email": NULLABLE_STR, "deleted_at": NULLABLE_STR}},
    "Comment": {
        "type": "object", "required": ["id", "request_id", "body", "created_at", "sync_scope"],
        "properties": {
            "id": {"type": "string"}, "request_id": {"type": "string"},
            "body": {"type": "string"}, "creator": _ref("Person"),
            "created_at": {"type": "string"},
            "sync_scope": {"type": "string", "enum": ["private", "public"]},
            "origin": {"type": "object", "nullable": True}, "deleted_at": NULLABLE_STR}},
    "NewRequest": {
        "type": "object", "required": ["description"],
        "properties": {
            "description": {"type": "string", "maxLength": 5000},
            "title": {"type": "string", "maxLength": 200},
            "contact_email": {"type": "string"},
            "sync_scope": {"type": "string", "enum": ["private", "public"]}}},
    "ImportResult": {
        "type": "object", "required": ["result", "digest", "origin"],
        "properties": {
            "result": {"type": "string", "enum": ["applied", "duplicate", "pending", "own"]},
            "digest": {"type": "string"}, "origin": {"type": "string"},
            "sequence": {"type": "integer", "nullable": True},
            "schema_version": {"type": "integer"}, "records": {"type": "integer"},
            "applied": {"type": "object"}, "skipped": {"type": "object"},
            "gaps": {"type": "array"}, "bytes": {"type": "integer"}}},
}

REQUEST_ANSWER = _json({"type": "object", "required": ["request"],
                        "properties": {"request": _ref("Request")}}, "The request.")

PATHS: dict[str, Any] = {
    "/api/csrf": {"get": {
        "summary": "The CSRF token to send as X-CSRF-Token on unsafe requests",
        "responses": {"200": _json({"type": "object", "required": ["csrf_token"],
                                    "properties": {"csrf_token": {"type": "string"}}},
                                   "Token (also sets the anonymous CSRF cookie).")}}},
    "/api/requests": {
        "get": {
            "summary": "Help requests, newest first", "security": SESSION,
            "parameters": [
                {"name": "status", "in": "query", "required": False, "schema": {
                    "type": "string", "enum": ["open", "completed", "pending", "all"]}},
                {"name": "search", "in": "query", "required": False,
                 "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "cursor", "in": "query", "required": False,
                 "schema": {"type": "string"}}],
            "responses": {
                "200": _json({"type": "object", "required": ["requests", "next_cursor"],
                              "properties": {"requests": {"type": "array",
                                                          "items": _ref("Request")},
                                             "next_cursor": NULLABLE_STR}}, "A page."),
                "400": _error("Invalid query."), **SIGNED_IN}},
        "post": {
            "summary": "Post a help request", "security": UNSAFE,
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("NewRequest")},
                "application/x-www-form-urlencoded": {"schema": _ref("NewRequest")}}},
            "responses": {"201": REQUEST_ANSWER,
                          "400": _error("`invalid_request` with `fields`."), **SIGNED_IN}}},
    "/api/requests/pending": {"get": {
        "summary": "Your requests posted while your device waited for approval",
        "security": SESSION,
        "responses": {"200": _json({"type": "object", "required": ["requests"],
                                    "properties": {"requests": {"type": "array",
                                                                "items": _ref("Request")}}},
                                   "Pending requests."), **SIGNED_IN}}},
    "/api/requests/{id}": {"get": {
        "summary": "One request with its comments (50 per page)", "security": SESSION,
        "parameters": [ID, {"name": "comments_cursor", "in": "query", "required": False,
                            "schema": {"type": "string"}}],
        "responses": {
            "200": _json({"type": "object", "required": ["request", "comments"],
                          "properties": {"request": _ref("Request"),
                                         "comments": {"type": "array",
                                                      "items": _ref("Comment")},
                                         "comment_count": {"type": "integer"},
                                         "comments_next_cursor": NULLABLE_STR}},
                         "The request."),
            "400": _error("Invalid cursor."),
            "404": _error("`not_found`, or not visible to you."), **SIGNED_IN}}},
    "/api/requests/{id}/complete": {"post": {
        "summary": "Complete an open request (creator or admin)", "security": UNSAFE,
        "parameters": [ID],
        "responses": {"200": REQUEST_ANSWER, "404": _error("`not_found`."),
                      "409": _error("`already_completed`."), **SIGNED_IN}}},
    "/sync/inbox": {"post": {
        "summary": "A hub delivers one signed bundle (docs/protocol.md)",
        "security": [{"inboxToken": []}],
        "requestBody": {"required": True, "content": {
            CBOR: {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        "responses": {
            "200": _json(_ref("ImportResult"), "Already received (`duplicate`) or own."),
            "201": _json(_ref("ImportResult"), "Verified and applied."),
            "202": _json(_ref("ImportResult"), "Valid, signed by a key awaiting approval."),
            "400": _error_or_page("Invalid bundle: the protocol error code (protocol.md §11)."),
            "401": _error_or_page("`unauthorized`: not a registered hub's inbox token."),
            "409": _error_or_page("`equivocation` or another sync refusal."),
            "413": _error_or_page("`bundle_too_large`.")}}},
    "/healthz": {"get": {"summary": "Liveness", "responses": {"200": _json(
        {"type": "object"}, "Alive.")}}},
    "/readyz": {"get": {"summary": "Readiness (database reachable)", "responses": {
        "200": _json({"type": "object"}, "Ready."),
        "503": _json({"type": "object"}, "Not ready.")}}},
    "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
        "description": "Prometheus text format",
        "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    "/openapi.json": {"get": {"summary": "This document", "responses": {
        "200": _json({"type": "object"}, "OpenAPI 3 document.")}}},
}


def document(server_url: str = "/") -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "WhiteBalloon node API", "version": "1",
                 "description": "JSON API of a node (docs/api.md) and its sync inbox "
                                "(docs/protocol.md, docs/conformance.md)."},
        "servers": [{"url": server_url}],
        "paths": PATHS,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "wb_session_id"},
            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                     "description": "From GET /api/csrf; required on POST."},
            "inboxToken": {"type": "http", "scheme": "bearer",
                           "description": "The inbox token given to `wb sync peers add`."}}},
    }


@csrf_exempt
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document(), headers={"Cache-Control": "public, max-age=300"})


def setup(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_json, name="openapi")
