"""Direct messages on the web: the inbox, a conversation, writing, blocking, reporting (plain
forms and redirects; JSON to ``Accept: application/json`` and under ``/api/``), the live
stream (``GET /messages/events``, server-sent events) and the admins' report queue."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.errors import AppError, bad_request
from node.messages import live
from node.messages import service as S
from service.ratelimit import RateLimiter
from service.sse import EventStream

FLASH = {"blocked": "Blocked. Neither of you can write to the other now.",
         "unblocked": "Unblocked.", "reported": "Reported. An admin will read that message.",
         "resolved": "Report resolved."}
_ID = r"{id:[0-9A-Za-z]{26}}"
_BACK = re.compile(r"/messages/[0-9A-Za-z]{26}")  # where a block form may send one back


def _member(request: web.Request) -> T.Viewer:
    viewer = W.require_active(request)
    S.require_enabled(request.app[T.config_key])
    return viewer


def _pool(request: web.Request) -> Any:
    return request.app[T.pool_key]


def _flash(request: web.Request) -> str:
    return FLASH.get(request.query.get("done", ""), "")


# ------------------------------------------------------------------------------ reading

async def inbox(request: web.Request, *, error: AppError | None = None,
                values: dict[str, Any] | None = None, status: int = 200,
                ) -> web.StreamResponse:
    viewer = _member(request)
    pool = _pool(request)
    rows = await S.inbox(pool, viewer.user_id)
    blocked = await S.blocked(pool, viewer.user_id)
    body = {"conversations": [S.thread_json(r) for r in rows],
            "unread": sum(r["unread"] for r in rows),
            "blocked": [b["username"] for b in blocked]}
    ctx = {"conversations": rows, "blocked": blocked, "flash": _flash(request),
           "error": error, "errors": error.fields if error else {}, "values": values or {},
           "body_max": S.BODY_MAX}
    return await W.respond(request, "node/messages/inbox.html", ctx, json_body=body,
                           status=status)


async def inbox_get(request: web.Request) -> web.StreamResponse:
    return await inbox(request)


async def conversation(request: web.Request, *, error: AppError | None = None,
                       values: dict[str, Any] | None = None, status: int = 200,
                       ) -> web.StreamResponse:
    viewer = _member(request)
    pool = _pool(request)
    thread, rows, marked = await S.conversation(pool, viewer.user_id,
                                                request.match_info["id"],
                                                notifier=live.notifier(request.app))
    # the nav's count was read with the session, before this conversation was read
    request[T.UNREAD_MESSAGES] = max(0, request.get(T.UNREAD_MESSAGES, 0) - marked)
    body = {"conversation": S.thread_json(thread),
            "messages": [S.message_json(r, viewer.user_id) for r in rows]}
    ctx = {"thread": thread, "messages": rows, "flash": _flash(request), "error": error,
           "errors": error.fields if error else {}, "values": values or {},
           "body_max": S.BODY_MAX, "after": rows[-1]["seq"] if rows else 0,
           "i_blocked": await S.has_blocked(pool, viewer.user_id, thread["other_id"])}
    return await W.respond(request, "node/messages/conversation.html", ctx, json_body=body,
                           status=status)


async def conversation_get(request: web.Request) -> web.StreamResponse:
    return await conversation(request)


async def new(request: web.Request) -> web.StreamResponse:
    """The "Message" button: the conversation with that member if there is one, else an
    empty one to write the first message."""
    viewer = _member(request)
    pool = _pool(request)
    to = request.query.get("to", "")
    other = await S.recipient(pool, viewer.user_id, to)
    existing = await S.existing_thread(pool, viewer.user_id, other["id"])
    if existing is not None:
        raise W.redirect(f"/messages/{existing}")
    if W.wants_json(request):
        return web.json_response({"to": {"username": other["username"], "name": other["name"]},
                                  "conversation": None}, dumps=W.json_dumps)
    return W.render(request, "node/messages/new.html",
                    {"other": other, "values": {}, "errors": {}, "error": None,
                     "body_max": S.BODY_MAX})


# ------------------------------------------------------------------------------ writing

def _limiter(request: web.Request) -> RateLimiter:
    return request.app[T.extras_key]["messages_limiter"]


async def send(request: web.Request) -> web.StreamResponse:
    """A first message (``to`` + ``body``) or a reply (``POST /messages/{id}``)."""
    viewer = _member(request)
    data = await W.read_fields(request)
    thread_id = request.match_info.get("id")
    try:
        row = await S.send(_pool(request), viewer.user_id, body=data.get("body"),
                           to=data.get("to"), thread_id=thread_id, limiter=_limiter(request),
                           rate=request.app[T.config_key].get_int("WB_MESSAGES_PER_MINUTE"),
                           notifier=live.notifier(request.app))
    except AppError as exc:
        if W.wants_json(request) or exc.status not in (400, 403, 409, 429):
            raise
        if thread_id is not None:
            return await conversation(request, error=exc, values=data, status=exc.status)
        return await inbox(request, error=exc, values=data, status=exc.status)
    if W.wants_json(request):
        return web.json_response({"message": S.message_json(row, viewer.user_id)},
                                 status=201, dumps=W.json_dumps)
    raise W.redirect(f"/messages/{row['thread_id']}#m-{row['id']}")


async def block(request: web.Request) -> web.StreamResponse:
    viewer = _member(request)
    data = await W.read_fields(request)
    unblock = request.match_info.route.name == "message_unblock"  # type: ignore[union-attr]
    act = S.unblock if unblock else S.block
    other = await act(_pool(request), viewer.user_id, data.get("username"))
    if W.wants_json(request):
        return web.json_response({"username": other["username"], "blocked": not unblock})
    back = data.get("back", "")
    target = back if isinstance(back, str) and _BACK.fullmatch(back) else "/messages"
    raise W.redirect(f"{target}?done={'unblocked' if unblock else 'blocked'}")


async def report(request: web.Request) -> web.StreamResponse:
    viewer = _member(request)
    data = await W.read_fields(request)
    row = await S.report(_pool(request), viewer.user_id, data.get("message_id"),
                         data.get("reason", ""))
    if W.wants_json(request):
        return web.json_response({"report": row}, status=201, dumps=W.json_dumps)
    raise W.redirect(f"/messages/{row['conversation_id']}?done=reported")


# ------------------------------------------------------------------------------ live

def _cursor(value: str) -> int:
    if not value:
        return 0
    if not value.isdigit() or len(value) > 18:
        raise bad_request("invalid_cursor", "after is a message's seq number.",
                          after="A whole number.")
    return int(value)


def _connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: ``unread`` (the nav count) whenever it changes and, with
    ``?conversation=ID&after=SEQ``, each new ``message`` of that conversation (read as it
    arrives: the conversation is open)."""
    viewer = _member(request)
    pool = _pool(request)
    after = _cursor(request.query.get("after", ""))
    thread_id = request.query.get("conversation", "")
    if thread_id:
        await S.conversation_exists(pool, viewer.user_id, thread_id)
    if request.method == "HEAD":  # headers only: no stream to hold open
        return web.Response(content_type="text/event-stream",
                            headers={"Cache-Control": "no-store"})
    notifier = live.notifier(request.app)
    if notifier.open_for(viewer.user_id) >= live.MAX_STREAMS_PER_MEMBER:
        raise AppError(429, "message_streams_limit",
                       "Too many open message pages; close some and reload.")
    wake = notifier.subscribe(viewer.user_id, lambda: _connected(request))
    stream = EventStream(request, dumps=W.json_dumps)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + live.MAX_STREAM_SECONDS
    last_unread: int | None = None
    try:
        await stream.send("ready", {"after": after})
        while not notifier.closing and not stream.gone:
            wake.clear()
            if not _connected(request):
                break
            if not await S.session_alive(pool, viewer.session_hash):
                await stream.send("closed", {"reason": "signed_out"})
                break
            if thread_id:
                for row in await S.newer(pool, viewer.user_id, thread_id, after):
                    after = row["seq"]
                    await stream.send("message", S.message_json(row, viewer.user_id))
            count = await S.unread(pool, viewer.user_id)
            if count != last_unread:
                last_unread = count
                await stream.send("unread", {"count": count})
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(wake.wait(), timeout=min(live.POLL_SECONDS, remaining))
            except TimeoutError:
                await stream.send("ping", {})
    finally:
        notifier.unsubscribe(viewer.user_id, wake)
    return await stream.finish()


# ------------------------------------------------------------------------------ admins

async def reports(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    S.require_enabled(request.app[T.config_key])
    show_all = request.query.get("status") == "all"
    rows = await S.reports(_pool(request), open_only=not show_all)
    return await W.respond(request, "node/messages/reports.html",
                           {"reports": rows, "show_all": show_all, "flash": _flash(request)},
                           json_body={"reports": [S.report_json(r) for r in rows]})


async def resolve(request: web.Request) -> web.StreamResponse:
    viewer = W.require_admin(request)
    S.require_enabled(request.app[T.config_key])
    data = await W.read_fields(request)
    row = await S.resolve(_pool(request), viewer.user_id, request.match_info["id"],
                          data.get("resolution", ""))
    if W.wants_json(request):
        return web.json_response({"resolved": row["id"], "resolved_at": row["resolved_at"]},
                                 dumps=W.json_dumps)
    raise W.redirect("/admin/messages/reports?done=resolved")


def setup(app: web.Application) -> None:
    config = app[T.config_key]
    app[T.extras_key]["messages_limiter"] = RateLimiter(
        max(1, config.get_int("WB_MESSAGES_PER_MINUTE")), 60.0)
    live.setup(app)
    r = app.router
    r.add_get("/messages", inbox_get, name="messages")
    r.add_post("/messages", send, name="message_send")
    r.add_get("/messages/new", new, name="message_new")
    r.add_get("/messages/events", events, name="messages_events")
    r.add_post("/messages/block", block, name="message_block")
    r.add_post("/messages/unblock", block, name="message_unblock")
    r.add_post("/messages/report", report, name="message_report")
    r.add_get(f"/messages/{_ID}", conversation_get, name="message_thread")
    r.add_post(f"/messages/{_ID}", send, name="message_reply")
    r.add_get("/api/messages", inbox_get, name="api_messages")
    r.add_post("/api/messages", send, name="api_message_send")
    r.add_get("/admin/messages/reports", reports, name="admin_message_reports")
    r.add_post("/admin/messages/reports/{id}/resolve", resolve,
               name="admin_message_report_resolve")
