"""Copilot pages: /admin/copilot (chat, confirmations, feedback), /admin/dedalus
(gateway key, on/off switch, tokens, audit) and the MCP endpoint (node.copilot.mcp).

Every route answers 404 ``copilot_unavailable`` unless ENABLE_COPILOT is set; the
chat and MCP answer 403 ``copilot_disabled`` while an admin has it switched off.
The switch is read from the database on every request, so turning it off is immediate.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.copilot import assistant as A
from node.copilot import gateway as G
from node.copilot import mcp
from node.copilot import queries as Q
from node.copilot import service as S
from node.errors import AppError
from node.i18n import plural
from service.ratelimit import RateLimiter
from service.sse import EventStream

log = logging.getLogger("wb.node.copilot")


def _json_client(request: web.Request) -> bool:
    return W.wants_json(request) or request.content_type == "application/json"


async def _input(request: web.Request) -> dict[str, Any]:
    body = await W.read_json_object(request)
    if body is not None:
        return body
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _available(request: web.Request) -> None:
    if not request.app[T.config_key].get_bool("ENABLE_COPILOT"):
        raise AppError(404, "copilot_unavailable", "The copilot is not available on this node.")


async def _active_admin(request: web.Request) -> T.Viewer:
    _available(request)
    viewer = W.require_admin(request)
    if not await S.is_active(request.app[T.pool_key], request.app[T.config_key]):
        raise AppError(403, "copilot_disabled",
                       "The copilot is switched off; an admin can switch it on at /admin/dedalus.")
    return viewer


def _ctx(request: web.Request, viewer: T.Viewer) -> S.ToolContext:
    return S.ToolContext(request.app[T.pool_key], request.app[T.config_key], viewer.user_id,
                         "web", W.client_ip(request),
                         request.app[T.extras_key]["copilot_limiter"])


# --------------------------------------------------------------------------- chat

async def _chat_page(request: web.Request, viewer: T.Viewer, *, error: AppError | None = None,
                     note: str = "", status: int = 200) -> web.StreamResponse:
    pool = request.app[T.pool_key]
    history = await Q.messages(pool, viewer.user_id)
    proposals = [dict(p, arguments=json.loads(p["arguments"]))
                 for p in await Q.pending_proposals(pool, viewer.user_id)]
    body = {"messages": [{"id": m["id"], "role": m["role"], "content": m["content"],
                          "feedback": m["feedback"], "created_at": m["created_at"]}
                         for m in history],
            "proposals": [{"id": p["id"], "tool": p["tool"], "arguments": p["arguments"]}
                          for p in proposals]}
    satisfaction = await S.satisfaction(pool)
    unrated = [m["id"] for m in history if m["role"] == "assistant" and m["feedback"] is None]
    body["satisfaction"] = satisfaction
    body["unrated"] = await Q.unrated_answers(pool, viewer.user_id)
    if error is not None:
        body["error"] = {"code": error.code, "message": error.message}
    if note:
        body["note"] = note
    if _json_client(request):
        return web.json_response(body, status=status, dumps=W.json_dumps)
    return W.render(request, "node/copilot/chat.html",
                    {"messages": history, "proposals": proposals, "error": error,
                     "note": note, "tools": S.TOOLS, "satisfaction": satisfaction,
                     "unrated": unrated}, status=status)


async def chat_get(request: web.Request) -> web.StreamResponse:
    viewer = await _active_admin(request)
    return await _chat_page(request, viewer)


async def chat_post(request: web.Request) -> web.StreamResponse:
    viewer = await _active_admin(request)
    data = await _input(request)
    text = str(data.get("message") or "").strip()
    if not text:
        raise AppError(400, "empty_message", "Write a message first.",
                       fields={"message": "empty"})
    session = request.app[T.client_key]
    try:
        await A.turn(_ctx(request, viewer), session, text,
                     time_limit=request.app[T.extras_key].get("copilot_timeout",
                                                          G.DEFAULT_TIMEOUT))
    except G.GatewayError as exc:
        return await _chat_page(request, viewer, error=AppError(502, exc.code, exc.message),
                                status=502)
    if _json_client(request):
        return await _chat_page(request, viewer)
    raise W.redirect("/admin/copilot")


def _forget_turn(turns: set[asyncio.Future[Any]]) -> Callable[[asyncio.Future[Any]], None]:
    def done(task: asyncio.Future[Any]) -> None:
        turns.discard(task)
        if not task.cancelled() and task.exception() is not None \
                and not isinstance(task.exception(), (G.GatewayError, AppError)):
            log.error("copilot turn failed", exc_info=task.exception())
    return done


async def chat_stream(request: web.Request) -> web.StreamResponse:
    """The chat turn of ``chat_post`` answered as a stream of server-sent events.

    Events: ``start`` (nothing yet), ``delta`` {text}, ``tool`` {name, status, code?},
    ``proposal`` {id, tool, arguments}, then ``done`` {message_id, answer} or ``error``
    {code, message}. Access, CSRF, empty message and rate limit are refused before the
    stream opens, with the same statuses and codes as the form post.
    """
    viewer = await _active_admin(request)
    data = await _input(request)
    text = str(data.get("message") or "").strip()
    if not text:
        raise AppError(400, "empty_message", "Write a message first.",
                       fields={"message": "empty"})
    ctx = _ctx(request, viewer)
    S.check_rate(ctx)
    stream = EventStream(request, dumps=W.json_dumps)
    await stream.send("start", {})
    # The turn runs as its own task so that a browser going away (which may cancel this
    # handler) does not cut it short: it is finished, stored and audited regardless.
    task = asyncio.ensure_future(A.turn(
        ctx, request.app[T.client_key], text, emit=stream.send, rate_checked=True,
        time_limit=request.app[T.extras_key].get("copilot_timeout", G.DEFAULT_TIMEOUT)))
    turns: set[asyncio.Future[Any]] = request.app[T.extras_key]["copilot_turns"]
    turns.add(task)
    task.add_done_callback(_forget_turn(turns))
    try:
        result = await asyncio.shield(task)
    except asyncio.CancelledError:
        stream.gone = True
        raise
    except G.GatewayError as exc:
        await stream.send("error", {"code": exc.code, "message": exc.message})
    except AppError as exc:
        await stream.send("error", {"code": exc.code, "message": exc.message})
    except Exception:
        log.exception("copilot stream failed")
        await stream.send("error", {"code": "internal_error",
                                    "message": "Something went wrong on our side. "
                                               "It was logged."})
    else:
        await stream.send("done", {"message_id": result.message_id, "answer": result.answer})
    return await stream.finish()


async def clear(request: web.Request) -> web.StreamResponse:
    viewer = await _active_admin(request)
    await Q.clear_messages(request.app[T.pool_key], viewer.user_id)
    raise W.redirect("/admin/copilot")


async def feedback(request: web.Request) -> web.StreamResponse:
    viewer = await _active_admin(request)
    data = await _input(request)
    value = {"up": 1, "down": -1}.get(str(data.get("value") or ""))
    if value is None:
        raise AppError(400, "invalid_feedback", "Feedback is up or down.")
    try:
        message_id = int(request.match_info["message_id"])
    except ValueError:
        raise AppError(404, "message_not_found", "No such answer.") from None
    async with request.app[T.pool_key].acquire() as conn, conn.transaction():
        if not await Q.set_feedback(conn, viewer.user_id, message_id, value):
            raise AppError(404, "message_not_found", "No such answer.")
    if _json_client(request):
        return web.json_response({"message_id": message_id, "feedback": value})
    raise W.redirect(f"/admin/copilot#m{message_id}")


async def decide(request: web.Request) -> web.StreamResponse:
    """Confirm (run) or dismiss a change the assistant proposed."""
    viewer = await _active_admin(request)
    pool = request.app[T.pool_key]
    action = request.match_info["action"]
    proposal_id = request.match_info["proposal_id"][:40]
    status = "confirmed" if action == "confirm" else "dismissed"
    row = await Q.claim_proposal(pool, proposal_id, viewer.user_id, status)
    if row is None:
        raise AppError(404, "proposal_not_found", "No such pending proposal.")
    if status == "dismissed":
        await Q.add_message(pool, viewer.user_id, "note", f"Dismissed {row['tool']}.")
        return await _chat_page(request, viewer, note=f"Dismissed {row['tool']}.")
    args = json.loads(row["arguments"])
    try:
        result = await S.run_tool(_ctx(request, viewer), row["tool"], args)
    except AppError as exc:
        await Q.finish_proposal(pool, proposal_id, "failed", f"{exc.code}: {exc.message}")
        await Q.add_message(pool, viewer.user_id, "note",
                            f"{row['tool']} failed: {exc.message}")
        return await _chat_page(request, viewer, error=exc, status=exc.status)
    summary = S.summarize(row["tool"], result)
    await Q.finish_proposal(pool, proposal_id, "confirmed", summary)
    await Q.add_message(pool, viewer.user_id, "note", f"Confirmed {row['tool']}: {summary}")
    note = f"Confirmed {row['tool']}: {summary}"
    if row["tool"] == "create_invite":
        note += f". Invite link (shown once): {result['link']}"
    return await _chat_page(request, viewer, note=note)


# --------------------------------------------------------------------------- settings

async def _settings_page(request: web.Request, *, error: AppError | None = None,
                         note: str = "", status: int = 200) -> web.StreamResponse:
    pool = request.app[T.pool_key]
    config = request.app[T.config_key]
    row = await Q.get_settings(pool)
    state = {"enabled": row["enabled"], "key_source": "admin" if row["api_key"] else
             ("environment" if config["DEDALUS_API_KEY"] else None),
             "key_verified_at": row["key_verified_at"],
             "gateway_url": config["COPILOT_GATEWAY_URL"], "model": config["COPILOT_MODEL"],
             "share_private": config.get_bool("COPILOT_SHARE_PRIVATE")}
    if _json_client(request):
        body: dict[str, Any] = {"copilot": state}
        if error is not None:
            body["error"] = {"code": error.code, "message": error.message}
        return web.json_response(body, status=status, dumps=W.json_dumps)
    return W.render(request, "node/copilot/dedalus.html",
                    {"state": state, "error": error, "note": note,
                     "tokens": await Q.list_tokens(pool),
                     "audit": await Q.recent_audit(pool, 40)}, status=status)


async def dedalus_get(request: web.Request) -> web.StreamResponse:
    _available(request)
    W.require_admin(request)
    return await _settings_page(request)


async def dedalus_key(request: web.Request) -> web.StreamResponse:
    _available(request)
    viewer = W.require_admin(request)
    data = await _input(request)
    key = str(data.get("api_key") or "").strip()
    pool = request.app[T.pool_key]
    config = request.app[T.config_key]
    try:
        models = await G.verify_key(request.app[T.client_key],
                                    base_url=config["COPILOT_GATEWAY_URL"], key=key)
    except G.GatewayError as exc:
        await Q.insert_audit(pool, admin_id=viewer.user_id, via="web", tool="verify_key",
                             arguments={}, result_summary=exc.message, latency_ms=0,
                             success=False, error_code=exc.code)
        return await _settings_page(request, error=AppError(400, exc.code, exc.message),
                                    status=400)
    async with pool.acquire() as conn, conn.transaction():
        await Q.store_key(conn, key, viewer.user_id)
        await Q.insert_audit(conn, admin_id=viewer.user_id, via="web", tool="verify_key",
                             arguments={}, result_summary=f"key verified ({models} models)",
                             latency_ms=0, success=True)
    return await _settings_page(request, note="Key verified: the gateway lists "
                                + plural(models, "%(num)d model.", "%(num)d models."))


async def dedalus_forget(request: web.Request) -> web.StreamResponse:
    _available(request)
    viewer = W.require_admin(request)
    await Q.store_key(request.app[T.pool_key], None, viewer.user_id)
    return await _settings_page(request, note="Key removed.")


async def dedalus_switch(request: web.Request) -> web.StreamResponse:
    _available(request)
    viewer = W.require_admin(request)
    enabled = request.match_info["action"] == "enable"
    pool = request.app[T.pool_key]
    async with pool.acquire() as conn, conn.transaction():
        await Q.set_enabled(conn, enabled, viewer.user_id)
        await Q.insert_audit(conn, admin_id=viewer.user_id, via="web",
                             tool="enable" if enabled else "disable", arguments={},
                             result_summary="copilot " + ("enabled" if enabled else "disabled"),
                             latency_ms=0, success=True)
    log.info("copilot switched", extra={"enabled": enabled})
    return await _settings_page(request,
                                note="Copilot " + ("enabled." if enabled else "disabled."))


def setup(app: web.Application) -> None:
    config = app[T.config_key]
    app[T.extras_key]["copilot_limiter"] = RateLimiter(
        max(1, config.get_int("COPILOT_RATE_PER_MINUTE")), 60.0)
    app[T.extras_key]["copilot_turns"] = set()
    r = app.router
    r.add_get("/admin/copilot", chat_get, name="copilot")
    r.add_post("/admin/copilot", chat_post, name="copilot_send")
    r.add_post("/admin/copilot/stream", chat_stream, name="copilot_stream")
    r.add_post("/admin/copilot/clear", clear, name="copilot_clear")
    r.add_post("/admin/copilot/feedback/{message_id}", feedback, name="copilot_feedback")
    r.add_post(r"/admin/copilot/proposals/{proposal_id}/{action:confirm|dismiss}", decide,
               name="copilot_decide")
    r.add_get("/admin/dedalus", dedalus_get, name="dedalus")
    r.add_post("/admin/dedalus/key", dedalus_key, name="dedalus_key")
    r.add_post("/admin/dedalus/key/forget", dedalus_forget, name="dedalus_forget")
    r.add_post(r"/admin/dedalus/{action:enable|disable}", dedalus_switch, name="dedalus_switch")
    mcp.setup(app)
