"""The OpenAPI 3 document of the node's JSON API, served at ``GET /openapi.json``.

Covers the machine endpoints: ``/api/*`` (docs/api.md), the sync inbox a hub pushes to,
health and metrics. Pages (HTML forms, also answering JSON to their own script) and the
MCP endpoint (docs/copilot.md) are not part of it. tests/conformance/test_openapi.py
compares the paths and methods here with the routes the app registers.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.openapi import CBOR, add_route, build_document, error, json_body, ref

#: Paths that are part of the machine API (everything else is pages, admin, static, MCP).
API_PREFIXES = ("/api/",)
API_PATHS = frozenset({"/sync/inbox", "/healthz", "/readyz", "/metrics", "/openapi.json"})


NULLABLE_STR = {"type": "string", "nullable": True}
SESSION = [{"session": []}]
UNSAFE = [{"session": [], "csrf": []}]
ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
SIGNED_IN = {"401": error("`login_required`: sign in first."),
             "403": error("`session_not_approved`, `forbidden` or `csrf_failed`.")}

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
            "creator": ref("Person"),
            "created_at": {"type": "string"}, "updated_at": NULLABLE_STR,
            "completed_at": NULLABLE_STR,
            "sync_scope": {"type": "string", "enum": ["private", "public"]},
            "origin": {"type": "object", "nullable": True},
            "can_complete": {"type": "boolean"},
            "comment_count": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "contact_email": NULLABLE_STR, "deleted_at": NULLABLE_STR}},
    "Comment": {
        "type": "object", "required": ["id", "request_id", "body", "created_at", "sync_scope"],
        "properties": {
            "id": {"type": "string"}, "request_id": {"type": "string"},
            "body": {"type": "string"}, "creator": ref("Person"),
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

REQUEST_ANSWER = json_body({"type": "object", "required": ["request"],
                        "properties": {"request": ref("Request")}}, "The request.")

MESSAGE_IN = {"type": "object", "required": ["to", "body"], "properties": {
    "to": {"type": "string", "description": "the member's username"},
    "body": {"type": "string", "maxLength": 4000}}}

PATHS: dict[str, Any] = {
    "/api/csrf": {"get": {
        "summary": "The CSRF token to send as X-CSRF-Token on unsafe requests",
        "responses": {"200": json_body({"type": "object", "required": ["csrf_token"],
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
                {"name": "tag", "in": "query", "required": False,
                 "schema": {"type": "string"}},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "cursor", "in": "query", "required": False,
                 "schema": {"type": "string"}}],
            "responses": {
                "200": json_body({"type": "object", "required": ["requests", "next_cursor"],
                              "properties": {"requests": {"type": "array",
                                                          "items": ref("Request")},
                                             "next_cursor": NULLABLE_STR}}, "A page."),
                "400": error("Invalid query."), **SIGNED_IN}},
        "post": {
            "summary": "Post a help request", "security": UNSAFE,
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": ref("NewRequest")},
                "application/x-www-form-urlencoded": {"schema": ref("NewRequest")}}},
            "responses": {"201": REQUEST_ANSWER,
                          "400": error("`invalid_request` with `fields`."), **SIGNED_IN}}},
    "/api/requests/pending": {"get": {
        "summary": "Your requests posted while your device waited for approval",
        "security": SESSION,
        "responses": {"200": json_body({"type": "object", "required": ["requests"],
                                    "properties": {"requests": {"type": "array",
                                                                "items": ref("Request")}}},
                                   "Pending requests."), **SIGNED_IN}}},
    "/api/requests/{id}": {"get": {
        "summary": "One request with its comments (50 per page)", "security": SESSION,
        "parameters": [ID, {"name": "comments_cursor", "in": "query", "required": False,
                            "schema": {"type": "string"}}],
        "responses": {
            "200": json_body({"type": "object", "required": ["request", "comments"],
                          "properties": {"request": ref("Request"),
                                         "comments": {"type": "array",
                                                      "items": ref("Comment")},
                                         "comment_count": {"type": "integer"},
                                         "comments_next_cursor": NULLABLE_STR}},
                         "The request."),
            "400": error("Invalid cursor."),
            "404": error("`not_found`, or not visible to you."), **SIGNED_IN}}},
    "/api/requests/{id}/complete": {"post": {
        "summary": "Complete an open request (creator or admin)", "security": UNSAFE,
        "parameters": [ID],
        "responses": {"200": REQUEST_ANSWER, "404": error("`not_found`."),
                      "409": error("`already_completed`."), **SIGNED_IN}}},
    "/api/pins": {"get": {
        "summary": "Requests pinned above the feed, in order (docs/api.md)", "security": SESSION,
        "responses": {"200": json_body({"type": "object", "required": ["pins"], "properties": {
            "pins": {"type": "array", "items": {"type": "object"}}}}, "Running pins."),
            **SIGNED_IN}}},
    "/api/tags": {"get": {
        "summary": "The community's tags with their colours", "security": SESSION,
        "responses": {"200": json_body({"type": "object", "required": ["tags"], "properties": {
            "tags": {"type": "array", "items": {"type": "object"}}}}, "Tags."),
            **SIGNED_IN}}},
    "/api/drafts": {
        "get": {
            "summary": "Your drafts of requests (yours alone)", "security": SESSION,
            "responses": {"200": json_body({"type": "object", "required": ["drafts"],
                                            "properties": {"drafts": {
                                                "type": "array",
                                                "items": {"type": "object"}}}}, "Drafts."),
                          **SIGNED_IN}},
        "post": {
            "summary": "Save a new draft", "security": UNSAFE,
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": ref("NewRequest")},
                "application/x-www-form-urlencoded": {"schema": ref("NewRequest")}}},
            "responses": {"201": json_body({"type": "object", "required": ["draft"],
                                            "properties": {"draft": {"type": "object"}}},
                                           "The draft."),
                          "400": error("`invalid_draft` with `fields`."),
                          "409": error("`draft_limit`."), **SIGNED_IN}}},
    "/api/recurring": {
        "get": {
            "summary": "Recurring request templates you keep (all of them for admins; house "
                       "managers and admins only)", "security": SESSION,
            "responses": {"200": json_body({"type": "object",
                                            "required": ["templates", "time_zone"],
                                            "properties": {
                                                "templates": {"type": "array",
                                                              "items": {"type": "object"}},
                                                "time_zone": {"type": "string"}}},
                                           "Templates."),
                          "403": error("`house_manager_only`."), **SIGNED_IN}},
        "post": {
            "summary": "Keep a new recurring template (cadence, local time, draft or publish)",
            "security": UNSAFE,
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}}}},
            "responses": {"201": json_body({"type": "object", "required": ["template", "log"],
                                            "properties": {"template": {"type": "object"},
                                                           "log": {"type": "array"}}},
                                           "The template."),
                          "400": error("`invalid_recurring`, `invalid_cadence`, ... with "
                                       "`fields`."),
                          "403": error("`house_manager_only`."),
                          "409": error("`recurring_limit`."), **SIGNED_IN}}},
    "/api/recurring/{id}": {"get": {
        "summary": "One template and the log of what it made", "security": SESSION,
        "parameters": [ID],
        "responses": {"200": json_body({"type": "object", "required": ["template", "log"],
                                        "properties": {"template": {"type": "object"},
                                                       "log": {"type": "array"}}},
                                       "The template."),
                      "404": error("`recurring_not_found`."), **SIGNED_IN}}},
    "/api/messages": {
        "get": {
            "summary": "Your conversations, newest first (WB_MESSAGES; docs/api.md)",
            "security": SESSION,
            "responses": {"200": json_body({"type": "object",
                                            "required": ["conversations", "unread"],
                                            "properties": {
                                                "conversations": {"type": "array",
                                                                  "items": {"type": "object"}},
                                                "unread": {"type": "integer"},
                                                "blocked": {"type": "array",
                                                            "items": {"type": "string"}}}},
                                           "Conversations."),
                          "404": error("`messages_disabled`."), **SIGNED_IN}},
        "post": {
            "summary": "Write to a member (`to`, `body`)", "security": UNSAFE,
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": MESSAGE_IN},
                "application/x-www-form-urlencoded": {"schema": MESSAGE_IN}}},
            "responses": {"201": json_body({"type": "object", "required": ["message"],
                                            "properties": {"message": {"type": "object"}}},
                                           "The message."),
                          "400": error("`invalid_message`, `message_too_long`, "
                                       "`message_self`."),
                          "404": error("`recipient_not_found`, `messages_disabled`."),
                          "409": error("`member_blocked`: you blocked them."),
                          "429": error("`message_rate_limited`."), **SIGNED_IN}}},
    "/sync/inbox": {"post": {
        "summary": "A hub delivers one signed bundle (docs/protocol.md)",
        "security": [{"inboxToken": []}],
        "requestBody": {"required": True, "content": {
            CBOR: {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
        "responses": {
            "200": json_body(ref("ImportResult"), "Already received (`duplicate`) or own."),
            "201": json_body(ref("ImportResult"), "Verified and applied."),
            "202": json_body(ref("ImportResult"), "Valid, signed by a key awaiting approval."),
            "400": error("Invalid bundle: the protocol error code (protocol.md §11)."),
            "401": error("`unauthorized`: not a registered hub's inbox token."),
            "409": error("`equivocation` or another sync refusal."),
            "413": error("`bundle_too_large`: over the node's WB_MAX_BUNDLE_BYTES "
                         "(refused before the body is read when Content-Length says "
                         "so).")}}},
}


def document(server_url: str = "/") -> dict[str, Any]:
    return build_document(
        title="WhiteBalloon node API", version="1",
        description="JSON API of a node (docs/api.md) and its sync inbox "
                    "(docs/protocol.md, docs/conformance.md).",
        paths=PATHS, schemas=SCHEMAS, server_url=server_url,
        security_schemes={
            "session": {"type": "apiKey", "in": "cookie", "name": "wb_session_id"},
            "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                     "description": "From GET /api/csrf; required on POST."},
            "inboxToken": {"type": "http", "scheme": "bearer",
                           "description": "The inbox token given to `wb sync peers add`."}})


def setup(app: web.Application) -> None:
    add_route(app, document)
