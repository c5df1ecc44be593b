"""The OpenAPI 3 document of the hub's machine API, served at ``GET /openapi.json``.

Kept true by tests/conformance/test_openapi.py, which compares its paths and methods
with the routes the app registers. The bundle formats themselves (CBOR envelope, tar.gz,
stream frames) are specified in docs/protocol.md; this document describes the HTTP
surface around them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from hub import tlog_openapi
from service.openapi import CBOR, add_route, build_document, error, json_body, ref

#: Paths that are part of the machine API (everything else is pages, admin, static).
API_PREFIXES = ("/api/", "/.well-known/", "/tlog/")
API_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})


BEARER = [{"peerToken": []}]
CURSOR = {"name": "since", "in": "query", "required": False,
          "description": "Return entries with hub sequence > since (default 0).",
          "schema": {"type": "integer", "minimum": 0, "maximum": 10**17}}
FILTERS = [
    {"name": "origin", "in": "query", "required": False, "style": "form", "explode": True,
     "description": "Only entries of these origins (repeatable or comma-separated).",
     "schema": {"type": "array", "items": {"type": "string"}}},
    {"name": "entity", "in": "query", "required": False, "style": "form", "explode": True,
     "description": "Only entries carrying records of these entities.",
     "schema": {"type": "array", "items": {"type": "string"}}},
]
PEER = {"name": "peer", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "The peer name the bearer token belongs to."}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "additionalProperties": True}}},
    "IngestAnswer": {
        "type": "object", "required": ["status", "digest", "origin"],
        "properties": {
            "status": {"type": "string", "enum": ["stored", "duplicate", "pending"]},
            "digest": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "origin": {"type": "string"},
            "sequence": {"type": "integer", "nullable": True},
            "hub_seq": {"type": "integer"},
            "accepted": {"type": "integer"},
            "withheld": {"type": "integer"},
            "key_id": {"type": "string"},
            "message": {"type": "string"}}},
    "V1Accepted": {
        "type": "object",
        "required": ["peer", "manifest_digest", "signed_at", "stored_bytes", "stored_files",
                     "auto_registered"],
        "properties": {
            "peer": {"type": "string"},
            "manifest_digest": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "signed_at": {"type": "string"}, "stored_bytes": {"type": "integer"},
            "stored_files": {"type": "integer"}, "auto_registered": {"type": "boolean"},
            "status": {"type": "string", "enum": ["stored", "duplicate"]}}},
    "V1Status": {
        "type": "object",
        "required": ["peer", "has_bundle", "metadata", "file_count", "total_bytes"],
        "properties": {
            "peer": {"type": "string"}, "has_bundle": {"type": "boolean"},
            "metadata": {"type": "object", "nullable": True, "properties": {
                "peer": {"type": "string"}, "manifest_digest": {"type": "string"},
                "signed_at": {"type": "string"}, "stored_at": {"type": "string"}}},
            "file_count": {"type": "integer"}, "total_bytes": {"type": "integer"},
            "digest": {"type": "string", "nullable": True},
            "records": {"type": "integer"}, "pending": {"type": "boolean"}}},
    "LogPage": {
        "type": "object", "required": ["head", "next", "entries"],
        "properties": {
            "head": {"type": "integer", "minimum": 0},
            "next": {"type": "integer", "minimum": 0,
                     "description": "Pass back as since= for the next page."},
            "entries": {"type": "array", "items": {
                "type": "object", "required": ["seq", "digest", "origin", "bundle"],
                "properties": {
                    "seq": {"type": "integer"},
                    "digest": {"type": "string"},
                    "origin": {"type": "string"},
                    "sequence": {"type": "integer", "nullable": True},
                    "bundle": {"type": "string", "format": "byte",
                               "description": "base64 of the CBOR envelope"}}}}}},
    "Record": {
        "type": "object",
        "required": ["origin", "entity", "id", "revision", "headers", "body", "bundle"],
        "properties": {
            "origin": {"type": "string"}, "entity": {"type": "string"},
            "id": {"type": "string"}, "revision": {"type": "integer"},
            "instance": {"type": "string", "nullable": True},
            "updated_at": {"type": "string", "nullable": True},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": {"type": "string"}, "bundle": {"type": "string"}}},
    "Subscription": {
        "type": "object", "required": ["id", "mode"],
        "properties": {
            "id": {"type": "string"}, "mode": {"type": "string", "enum": ["push", "pull"]},
            "inbox_url": {"type": "string", "nullable": True},
            "origins": {"type": "array", "items": {"type": "string"}, "nullable": True},
            "entities": {"type": "array", "items": {"type": "string"}, "nullable": True},
            "cursor": {"type": "integer"}, "lag": {"type": "integer"},
            "failures": {"type": "integer"},
            "last_error": {"type": "string", "nullable": True}}},
    "NewSubscription": {
        "type": "object",
        "properties": {
            "mode": {"type": "string", "enum": ["push", "pull"], "default": "push"},
            "inbox_url": {"type": "string", "description": "http(s) URL; required for push"},
            "inbox_token": {"type": "string"},
            "origins": {"type": "array", "items": {"type": "string"}},
            "entities": {"type": "array", "items": {"type": "string"}},
            "cursor": {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}}},
}

ERRORS_PEER = {"401": error("Missing or unknown bearer token (`unauthorized`)."),
               "403": error("The peer is blocked (`peer_blocked`).")}


def _ingest_op(summary: str, answers: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": summary, "security": BEARER,
        "parameters": [{"name": "X-WB-Hops", "in": "header", "required": False,
                        "schema": {"type": "integer", "minimum": 0},
                        "description": "Hubs this bundle already crossed."}],
        "requestBody": {"required": True, "content": {
            CBOR: {"schema": {"type": "string", "format": "binary"}},
            "application/gzip": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {
                "type": "string", "format": "binary",
                "description": "CBOR envelope or tar.gz, told apart by the gzip magic"}}}},
        "responses": {
            **answers,
            "400": error("Invalid bundle: the protocol error code (docs/protocol.md §11)."),
            **ERRORS_PEER,
            "409": error("`equivocation`: another bundle has this origin and sequence."),
            "413": error("`bundle_too_large` or `too_many_files`."),
            "415": error("`unsupported_media_type`."),
            "429": error("`rate_limited`; see Retry-After.")}}


PATHS: dict[str, Any] = {
    "/api/v2/bundles": {
        "post": _ingest_op("Push one signed bundle", {
            "200": json_body(ref("IngestAnswer"), "Already stored (same digest): the same answer."),
            "201": json_body(ref("IngestAnswer"), "Verified and appended to the log."),
            "202": json_body(ref("IngestAnswer"), "Valid, but the key awaits the operator.")}),
        "get": {
            "summary": "Page through the log from a cursor",
            "parameters": [CURSOR, {"name": "limit", "in": "query", "required": False,
                                    "schema": {"type": "integer", "minimum": 0,
                                               "maximum": 10**17}}, *FILTERS],
            "responses": {
                "200": {"description": "Entries with seq > since, oldest first.",
                        "content": {"application/json": {"schema": ref("LogPage")},
                                    "application/cbor": {"schema": {"type": "string",
                                                                    "format": "binary"}}}},
                "400": error("`invalid_cursor` or `future_cursor` (beyond the head)."),
                "410": error("`outdated_cursor`: before the retained range.")}}},
    "/api/v2/stream": {
        "get": {
            "summary": "WebSocket stream of CBOR frames from a cursor (docs/protocol.md §7)",
            "parameters": [CURSOR, *FILTERS],
            "responses": {
                "101": {"description": "Switching to WebSocket: an `info` frame, then "
                                       "`bundle` frames; `error` frames carry a code."},
                "400": error("Not a WebSocket request or `invalid_cursor`.")}}},
    "/api/v2/records": {
        "get": {
            "summary": "Search the index of live public records",
            "parameters": [
                {"name": "origin", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "entity", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "q", "in": "query", "required": False, "schema": {"type": "string"}},
                {"name": "after", "in": "query", "required": False,
                 "schema": {"type": "string"}, "description": "`after` of the previous page"},
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 0, "maximum": 10**17}}],
            "responses": {
                "200": json_body({"type": "object", "required": ["records", "after"],
                              "properties": {"records": {"type": "array",
                                                         "items": ref("Record")},
                                             "after": {"type": "string", "nullable": True}}},
                             "Records in (origin, entity, id) order."),
                "400": error("`invalid_cursor` (limit).")}}},
    "/api/v2/origins": {
        "get": {
            "summary": "Origins known to the hub, their keys, chain state and gaps",
            "responses": {"200": json_body({
                "type": "object", "required": ["origins"], "properties": {
                "origins": {"type": "array", "items": {
                    "type": "object", "required": ["origin", "gaps"], "properties": {
                        "origin": {"type": "string"},
                        "instance": {"type": "string", "nullable": True},
                        "last_sequence": {"type": "integer", "nullable": True},
                        "last_digest": {"type": "string", "nullable": True},
                        "bundles": {"type": "integer"}, "records": {"type": "integer"},
                        "keys": {"type": "array", "items": {"type": "object"}},
                        "gaps": {"type": "array", "items": {
                            "type": "array", "items": {"type": "integer"},
                            "minItems": 2, "maxItems": 2}},
                        "last_seen_at": {"type": "string"}}}}}}, "Origins.")}}},
    "/api/v2/subscriptions": {
        "post": {
            "summary": "Subscribe the calling peer (push to an inbox, or pull)",
            "security": BEARER,
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": ref("NewSubscription")}}},
            "responses": {"201": json_body(ref("Subscription"), "Created."),
                          "400": error("`invalid_subscription`."), **ERRORS_PEER}},
        "get": {
            "summary": "The calling peer's subscriptions", "security": BEARER,
            "responses": {"200": json_body({"type": "object", "required": ["subscriptions"],
                                        "properties": {"subscriptions": {
                                            "type": "array", "items": ref("Subscription")}}},
                                       "Subscriptions."), **ERRORS_PEER}}},
    "/api/v2/subscriptions/{sub_id}": {
        "delete": {
            "summary": "Remove one of the calling peer's subscriptions", "security": BEARER,
            "parameters": [{"name": "sub_id", "in": "path", "required": True,
                            "schema": {"type": "string"}}],
            "responses": {"200": json_body({"type": "object", "properties": {
                "deleted": {"type": "boolean"}}}, "Removed."),
                "404": error("`not_found`."), **ERRORS_PEER}}},
    "/.well-known/whiteballoon-hub": {
        "get": {"summary": "Discovery: protocol version, limits, endpoints, log head",
                "responses": {"200": json_body({"type": "object", "required": [
                    "software", "protocol_version", "head", "oldest_retained"],
                    "properties": {"software": {"type": "string"},
                                   "protocol_version": {"type": "string"},
                                   "head": {"type": "integer"},
                                   "oldest_retained": {"type": "integer"}}}, "Discovery.")}}},
    "/api/v1/sync/{peer}/bundle": {
        "post": {
            "summary": "Original API: upload a tar.gz bundle (the original client's form)",
            "description": "Answers in the original's shapes (docs/federation.md): errors "
                           "carry `detail` beside our `error`; an untrusted key is 400 with "
                           "`detail.error = peer_key_mismatch` and `detail.pending_id`.",
            "security": BEARER,
            "parameters": [PEER, {"name": "X-WB-Public-Key", "in": "header",
                                  "required": False, "schema": {"type": "string"},
                                  "description": "base64 of the signing key; must be the "
                                                 "bundle's when given"}],
            "requestBody": {"required": True, "content": {
                "multipart/form-data": {"schema": {
                    "type": "object", "required": ["bundle"],
                    "properties": {"bundle": {"type": "string", "format": "binary"}}}},
                "application/gzip": {"schema": {"type": "string", "format": "binary"}}}},
            "responses": {
                "202": json_body(ref("V1Accepted"), "Stored (or already stored)."),
                "400": error("Invalid bundle, or `peer_key_mismatch` (parked for the admin)."),
                "401": error("Missing or wrong bearer token for this peer (`unauthorized`)."),
                "403": error("The peer is blocked (`peer_blocked`)."),
                "404": error("Unknown peer (`unknown_peer`)."),
                "413": error("`bundle_too_large`."),
                "415": error("`unsupported_media_type`."),
                "422": json_body({"type": "object"}, "No `bundle` field in the form."),
                "429": error("`rate_limited`; see Retry-After.")}},
        "get": {"summary": "Original API: download the peer's latest bundle as tar.gz",
                "security": BEARER, "parameters": [PEER],
                "responses": {"200": {"description": "tar.gz", "content": {
                    "application/gzip": {"schema": {"type": "string", "format": "binary"}}}},
                    "401": error("Missing or wrong bearer token (`unauthorized`)."),
                    "403": error("The peer is blocked (`peer_blocked`)."),
                    "404": error("Unknown peer or no bundle yet.")}}},
    "/api/v1/sync/{peer}/status": {
        "get": {"summary": "Original API: the peer's latest upload", "security": BEARER,
                "parameters": [PEER],
                "responses": {"200": json_body(ref("V1Status"), "Status."),
                              "401": error("Missing or wrong bearer token (`unauthorized`)."),
                              "403": error("The peer is blocked (`peer_blocked`)."),
                              "404": error("Unknown peer (`unknown_peer`).")}}},
}


def document(server_url: str = "/") -> dict[str, Any]:
    return build_document(
        title="WhiteBalloon hub API", version="2",
        description="Relay of signed bundles. Formats, verification and error codes: "
                    "docs/protocol.md; behaviour: docs/hub-guide.md.",
        paths={**PATHS, **tlog_openapi.PATHS}, schemas=SCHEMAS, server_url=server_url,
        security_schemes={"peerToken": {"type": "http", "scheme": "bearer",
                                        "description": "A peer token from `wb hub peers add`."}})


def setup(app: web.Application) -> None:
    add_route(app, document)
