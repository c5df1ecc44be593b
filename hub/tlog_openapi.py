"""OpenAPI paths of the transparency log (merged into :mod:`hub.openapi`)."""

from __future__ import annotations

from typing import Any

from service.openapi import error, json_body

TEXT = {"text/plain": {"schema": {"type": "string"}}}
BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
SIZE = {"name": "size", "in": "query", "required": False,
        "description": "Tree size of a checkpoint the hub signed (default: the newest).",
        "schema": {"type": "integer", "minimum": 0}}
HASHES = {"type": "array", "items": {"type": "string", "format": "byte"}}

PATHS: dict[str, Any] = {
    "/tlog/checkpoint": {"get": {
        "summary": "Newest signed checkpoint (C2SP tlog-checkpoint in a signed-note), with "
                   "witness cosignatures",
        "responses": {"200": {"description": "The note.", "content": TEXT}}}},
    "/tlog/checkpoints/{size}": {"get": {
        "summary": "A checkpoint the hub signed, by tree size (immutable)",
        "parameters": [{"name": "size", "in": "path", "required": True,
                        "schema": {"type": "integer", "minimum": 0}}],
        "responses": {"200": {"description": "The note.", "content": TEXT},
                      "404": {"description": "`unknown_tree_size`."}}}},
    "/tlog/key": {"get": {
        "summary": "The log's note verifier key (name+hash+base64 key)",
        "responses": {"200": {"description": "The key.", "content": TEXT}}}},
    "/tlog/proof/inclusion": {"get": {
        "summary": "Inclusion proof of a log entry, by hub_seq or by origin and sequence",
        "parameters": [
            {"name": "hub_seq", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1}},
            {"name": "origin", "in": "query", "required": False, "schema": {"type": "string"}},
            {"name": "sequence", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 0}}, SIZE],
        "responses": {
            "200": json_body({"type": "object", "required": [
                "leaf_index", "hub_seq", "tree_size", "leaf", "proof", "checkpoint"],
                "properties": {"leaf_index": {"type": "integer"}, "hub_seq": {"type": "integer"},
                               "tree_size": {"type": "integer"},
                               "leaf": {"type": "string", "format": "byte"},
                               "proof": HASHES, "checkpoint": {"type": "string"}}},
                "RFC 9162 inclusion proof against the signed checkpoint."),
            "400": error("`invalid_proof_request`."),
            "404": error("`not_in_log`, `unknown_tree_size` or `not_yet_in_checkpoint`.")}}},
    "/tlog/proof/consistency": {"get": {
        "summary": "Consistency proof between two tree sizes",
        "parameters": [{"name": "old", "in": "query", "required": True,
                        "schema": {"type": "integer", "minimum": 0}}, SIZE],
        "responses": {
            "200": json_body({"type": "object", "required": [
                "old", "tree_size", "proof", "checkpoint"],
                "properties": {"old": {"type": "integer"}, "tree_size": {"type": "integer"},
                               "proof": HASHES, "checkpoint": {"type": "string"},
                               "old_checkpoint": {"type": "string", "nullable": True}}},
                "RFC 9162 consistency proof."),
            "400": error("`invalid_proof_request`."),
            "404": error("`unknown_tree_size`.")}}},
    "/tlog/tile/{rest}": {"get": {
        "summary": "C2SP tlog-tiles: tile/<L>/<N>[.p/<W>] and tile/entries/<N>[.p/<W>]",
        "parameters": [{"name": "rest", "in": "path", "required": True,
                        "schema": {"type": "string"}}],
        "responses": {"200": {"description": "Tile bytes.", "content": BINARY},
                      "404": {"description": "Not a tile of the current tree."}}}},
    "/tlog/witness/add-checkpoint": {"post": {
        "summary": "C2SP tlog-witness: cosign a checkpoint of a witnessed log",
        "requestBody": {"required": True, "content": TEXT},
        "responses": {
            "200": {"description": "The cosignature line.", "content": TEXT},
            "400": {"description": "Malformed request."},
            "403": {"description": "The log's signature does not verify."},
            "404": {"description": "Not a log this hub witnesses."},
            "409": {"description": "Wrong old size; the body is the size held.",
                    "content": {"text/x.tlog.size": {"schema": {"type": "string"}}}},
            "413": {"description": "Request too large."},
            "422": {"description": "The consistency proof does not verify."}}}},
    "/tlog/witness/key": {"get": {
        "summary": "This hub's witness cosignature key",
        "responses": {"200": {"description": "The key.", "content": TEXT}}}},
}
