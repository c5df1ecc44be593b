"""The copilot's tools over MCP: the streamable HTTP transport at ``/mcp``.

The official ``mcp`` package serves this transport only through Starlette, which does
not mount on aiohttp, so this is the small transport layer, written against the spec
(2025-11-25, the newest version of the ``mcp`` SDK in use, also answering 2025-06-18,
2025-03-26 and 2024-11-05 clients) and tested against the official Python client at
each of those versions. Messages are validated with the SDK's JSON-RPC types
(``mcp.types.JSONRPCRequest`` and friends):

- POST /mcp carries one JSON-RPC message. Requests get one response, as
  ``application/json`` or, when the client accepts only ``text/event-stream``, as a
  single SSE ``message`` event. Notifications and responses get 202 with no body.
- A JSON array (a batch) is accepted only from clients of 2025-03-26 and older, which
  send no ``Mcp-Protocol-Version`` header (2025-03-26 requires batches; 2025-06-18
  removed them): each request in it is answered in one array, ``initialize`` may not
  be batched.
- A request id must be a string or an integer; ``"id": null`` is refused.
- Stateless: no ``Mcp-Session-Id`` is issued, so clients open no GET stream; GET
  and DELETE answer a JSON 405 with ``Allow: POST``.
- Authenticated by ``Authorization: Bearer <token>`` (``wb copilot token create``),
  which acts for one local admin; a browser ``Origin`` must be exactly the site's own
  (scheme, host and port of SITE_URL). Responses set no cookies.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import BaseModel, ValidationError

from node import typedefs as T
from node import web as W
from node.copilot import queries as Q
from node.copilot import service as S
from node.errors import AppError
from service.ids import token_hash
from service.sse import single_event

log = logging.getLogger("wb.node.copilot.mcp")

# Newest first; tests/node/copilot/test_mcp.py holds this against the installed SDK.
SUPPORTED_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
# Versions whose clients send no Mcp-Protocol-Version header and may batch.
BATCH_VERSIONS = ("2025-03-26",)
SERVER_INFO = {"name": "whiteballoon-copilot", "version": "1"}

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602


def _rpc_error(msg_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": msg_id, "error": err}


def _tool_list() -> list[dict[str, Any]]:
    out = []
    for tool in S.TOOLS.values():
        out.append({
            "name": tool.name, "description": tool.description,
            "inputSchema": S.input_schema(tool),
            "annotations": {"readOnlyHint": not tool.mutating,
                            "destructiveHint": False,
                            "idempotentHint": tool.name != "create_invite",
                            "openWorldHint": False}})
    return out


async def _authenticate(request: web.Request) -> Any:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 200:
        raise AppError(401, "mcp_token_required",
                       "Send an admin MCP token: Authorization: Bearer <token>.")
    row = await Q.admin_for_token(request.app[T.pool_key], token_hash(token.strip()))
    if row is None:
        raise AppError(401, "mcp_token_invalid",
                       "This MCP token is unknown, revoked, or its admin is no longer an admin.")
    return row


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of a URL with the default port filled in; None if malformed."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return (parts.scheme, parts.hostname.lower(),
            port if port is not None else (443 if parts.scheme == "https" else 80))


def _check_origin(request: web.Request) -> None:
    """A browser's Origin must be exactly the site's (DNS rebinding, drive-by pages)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return  # not a browser: MCP clients send none
    site = _origin(request.app[T.config_key].site_url)
    if site is None or _origin(origin) != site or origin.strip().lower() == "null":
        raise AppError(403, "mcp_origin_refused", "Requests from this origin are refused.")


async def _gate(request: web.Request) -> None:
    config = request.app[T.config_key]
    if not config.get_bool("ENABLE_COPILOT"):
        raise AppError(404, "copilot_unavailable", "The copilot is not available on this node.")
    if not await S.is_active(request.app[T.pool_key], config):
        raise AppError(403, "copilot_disabled", "An admin has switched the copilot off.")


async def _dispatch(request: web.Request, admin: Any, message: dict[str, Any]
                    ) -> dict[str, Any]:
    msg_id = message.get("id")
    method = message.get("method")
    params = message.get("params") or {}  # an object: checked by the SDK's types
    if method == "initialize":
        asked = params.get("protocolVersion")
        version = asked if asked in SUPPORTED_VERSIONS else SUPPORTED_VERSIONS[0]
        return {"jsonrpc": "2.0", "id": msg_id, "result": {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": SERVER_INFO,
            "instructions": "Admin tools of a WhiteBalloon node. set_scope and "
                            "create_invite change data; ask the admin before calling them."}}
    if method == "ping":
        return {"jsonrpc": "2.0", "id": msg_id, "result": {}}
    if method == "tools/list":
        return {"jsonrpc": "2.0", "id": msg_id, "result": {"tools": _tool_list()}}
    if method == "tools/call":
        name = params.get("name")
        if not isinstance(name, str) or name not in S.TOOLS:
            ctx = _context(request, admin)
            try:
                await S.run_tool(ctx, str(name)[:60], params.get("arguments"))
            except AppError:
                pass
            return _rpc_error(msg_id, INVALID_PARAMS, f"Unknown tool: {str(name)[:60]}")
        try:
            result = await S.run_tool(_context(request, admin), name, params.get("arguments"))
        except AppError as exc:
            return {"jsonrpc": "2.0", "id": msg_id, "result": {
                "content": [{"type": "text", "text": f"{exc.code}: {exc.message}"}],
                "isError": True}}
        text = W.json_dumps(result)
        return {"jsonrpc": "2.0", "id": msg_id, "result": {
            "content": [{"type": "text", "text": text}],
            "structuredContent": json.loads(text), "isError": False}}
    return _rpc_error(msg_id, METHOD_NOT_FOUND, f"Method not found: {str(method)[:60]}")


def _context(request: web.Request, admin: Any) -> S.ToolContext:
    return S.ToolContext(request.app[T.pool_key], request.app[T.config_key],
                         admin["admin_id"], "mcp", W.client_ip(request),
                         request.app[T.extras_key]["copilot_limiter"])


def _wants_sse_only(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "text/event-stream" in accept and "application/json" not in accept \
        and "*/*" not in accept


async def _answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    if not _wants_sse_only(request):
        return web.json_response(body, dumps=W.json_dumps)
    return await single_event(request, "message", body, dumps=W.json_dumps,
                              cache_control="no-cache")


def _invalid(errors: list[Any]) -> tuple[int, str]:
    """The JSON-RPC error for a message the SDK's types refused."""
    fields = {str(e["loc"][0]) for e in errors if e.get("loc")}
    if fields == {"params"}:
        return INVALID_PARAMS, "params must be an object"
    if "id" in fields:
        return INVALID_REQUEST, "A request id must be a string or an integer, never null."
    if "method" in fields:
        return INVALID_REQUEST, "method must be a string."
    return INVALID_REQUEST, "Not a JSON-RPC 2.0 message."


def sdk_types() -> Any:
    """``mcp.types``, imported on first use (or at start-up with ENABLE_COPILOT set): the
    ``mcp`` package loads its whole client and server stack (Starlette, uvicorn, httpx,
    jsonschema...), and a node process holding it spent about 12% more CPU in a sync
    import (docs/benchmarks.md, #18), copilot or not."""
    from mcp import types

    return types


async def _load_sdk(app: web.Application) -> None:
    if app[T.config_key].get_bool("ENABLE_COPILOT"):
        sdk_types()  # the first MCP request does not wait for the import


async def _one(request: web.Request, admin: Any, message: Any) -> dict[str, Any] | None:
    """The answer to one message of a POST or a batch (None: nothing to answer).

    The ``mcp`` SDK's JSON-RPC types decide what the message is and whether it is valid;
    a message with an ``id`` and a ``method`` is a request, never a notification (the
    SDK's union would read ``"id": null`` as a notification with an extra field)."""
    if not isinstance(message, dict):
        return _rpc_error(None, INVALID_REQUEST, "Not a JSON-RPC 2.0 message.")
    mcp_types = sdk_types()
    if "method" not in message:
        kind: type[BaseModel] = (mcp_types.JSONRPCError if "error" in message
                                 else mcp_types.JSONRPCResponse)
    elif "id" not in message:
        kind = mcp_types.JSONRPCNotification
    else:
        kind = mcp_types.JSONRPCRequest
    try:
        kind.model_validate(message)
    except ValidationError as exc:
        code, text = _invalid(exc.errors())
        msg_id = message["id"] if code == INVALID_PARAMS else None
        return _rpc_error(msg_id, code, text)
    if kind is not mcp_types.JSONRPCRequest:
        return None  # a notification, or a response to us (we send no requests)
    return await _dispatch(request, admin, message)


@W.csrf_exempt
async def mcp_post(request: web.Request) -> web.StreamResponse:
    await _gate(request)
    _check_origin(request)
    admin = await _authenticate(request)
    version = request.headers.get("Mcp-Protocol-Version")
    if version is not None and version not in SUPPORTED_VERSIONS:
        raise AppError(400, "mcp_unsupported_version",
                       f"Unsupported MCP protocol version {version[:40]!r}.")
    try:
        message = json.loads(await request.text())
    except ValueError:
        return web.json_response(_rpc_error(None, PARSE_ERROR, "Parse error"), status=400)
    if isinstance(message, list):
        return await _batch(request, admin, message, version)
    body = await _one(request, admin, message)
    if body is None:
        return web.Response(status=202)
    if "error" in body and body["error"]["code"] == INVALID_REQUEST:
        return web.json_response(body, status=400, dumps=W.json_dumps)
    return await _answer(request, body)


async def _batch(request: web.Request, admin: Any, messages: list[Any],
                 version: str | None) -> web.StreamResponse:
    """A 2025-03-26 batch: every request answered, in order, in one array."""
    if version is not None and version not in BATCH_VERSIONS:
        return web.json_response(_rpc_error(
            None, INVALID_REQUEST, f"Protocol version {version} has no batches: send one "
            "JSON-RPC message per POST."), status=400)
    if not messages or len(messages) > 50:
        return web.json_response(_rpc_error(
            None, INVALID_REQUEST, "A batch holds 1 to 50 messages."), status=400)
    if any(isinstance(m, dict) and m.get("method") == "initialize" for m in messages):
        return web.json_response(_rpc_error(
            None, INVALID_REQUEST, "initialize may not be part of a batch."), status=400)
    answers = [a for a in [await _one(request, admin, m) for m in messages] if a is not None]
    if not answers:
        return web.Response(status=202)
    if not _wants_sse_only(request):
        return web.json_response(answers, dumps=W.json_dumps)
    return await single_event(request, "message", answers, dumps=W.json_dumps,
                              cache_control="no-cache")


@W.csrf_exempt
async def mcp_other(request: web.Request) -> web.StreamResponse:
    """GET (server-to-client stream) and DELETE (end a session): neither exists here."""
    await _gate(request)
    return web.json_response(
        {"error": {"code": "method_not_allowed",
                   "message": "This MCP endpoint is stateless: it opens no server stream "
                              "and has no session to end. POST JSON-RPC messages."}},
        status=405, headers={"Allow": "POST"})


def setup(app: web.Application) -> None:
    app.on_startup.append(_load_sdk)
    app.router.add_post("/mcp", mcp_post, name="mcp")
    app.router.add_get("/mcp", mcp_other, name="mcp_get")
    app.router.add_delete("/mcp", mcp_other, name="mcp_delete")
