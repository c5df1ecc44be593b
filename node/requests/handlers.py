"""Pages and JSON API of help requests: dashboard feed, detail, comments, completion, scope.

Handlers are thin: they read input, ask ``service`` (which decides permissions for pages,
API and CLI alike) and answer HTML, a redirect (PRG) or JSON from the same code path.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from node import caches
from node import typedefs as T
from node import web as W
from node.auth import queries as auth_queries
from node.errors import AppError, bad_request, text_field
from node.i18n import plural
from node.promotions import service as promotions
from node.requests import cached
from node.requests import service as S
from node.tags import service as tags

log = logging.getLogger("wb.node.requests")


async def _input(request: web.Request) -> dict[str, Any]:
    """Form fields or a JSON object, as plain strings/lists."""
    data = await W.read_json_object(request)
    if data is not None:
        return data
    form = await request.post()
    out: dict[str, Any] = {}
    for key in form:
        values = [v for v in form.getall(key) if isinstance(v, str)]
        out[key] = values if key == "item" else (values[0] if values else "")
    return out


def _text(data: dict[str, Any], name: str) -> str:
    return text_field(data.get(name, ""), name)


def _fragment(request: web.Request, template: str, ctx: dict[str, Any]) -> str:
    env = aiohttp_jinja2.get_env(request.app)
    full = W.template_context(request)
    full.update(ctx)
    return env.get_template(template).render(full)


def _metrics(request: web.Request) -> Any:
    return request.app[T.metrics_key]


# --------------------------------------------------------------------------- dashboard

async def _pending_login(request: web.Request, viewer: T.Viewer) -> dict[str, Any] | None:
    try:
        return await auth_queries.pending_login_for_session(request.app[T.pool_key],
                                                            viewer.session_hash)
    except Exception:
        log.exception("pending login lookup failed")
        return None


async def _home_context(request: web.Request, actor: S.Actor) -> dict[str, Any]:
    pool = request.app[T.pool_key]
    viewer = W.viewer_of(request)
    assert viewer is not None
    q = request.query
    cursor = q.get("cursor", "")
    if viewer.active:
        page, stamp = await cached.feed(request, actor, status=q.get("status", "open"),
                                        search=q.get("q", ""), cursor=cursor,
                                        tag=q.get("tag", ""))
        return {"page": page, "statuses": ("open", "completed", "pending", "all"),
                "feed_html": cached.feed_html(request, page, cursor, stamp),
                "pins": await cached.pins(request, actor),
                "tag_catalog": await cached.tag_catalog(request)}
    # An unapproved device sees no feed: only its sign-in code and what it wrote itself.
    return {"own_pending": await S.own_pending(pool, actor, viewer.session_hash),
            "login": await _pending_login(request, viewer)}


# Feedback after a redirect to the start page (?done=...): fixed texts, never echoed input.
HOME_FLASH = {"joined": "Welcome! You are a member now: ask for help or offer it below.",
              "signed_out": "You are signed out on this device.",
              "approved": "This device is approved: you are signed in."}


async def home(request: web.Request) -> web.StreamResponse:
    actor = W.actor(request)
    flash = HOME_FLASH.get(request.query.get("done", ""), "")
    viewer = W.viewer_of(request)
    if actor is None or viewer is None:
        return W.render(request, "node/home.html", {"flash": flash})
    # A member's start page is kept whole for this session and this address (it shows
    # the member, the session's CSRF token, the feed, pins and tags) until a table it
    # was read from changes, PAGE_SECONDS at most.
    pages = caches.get(request.app, "pages")
    key = (viewer.session_hash, request.path_qs)
    stamp = caches.page_stamp(request, viewer) if viewer.active else None
    body = pages.get(key, stamp)
    if body is not None:
        return web.Response(body=body, content_type="text/html", charset="utf-8")
    ctx = await _home_context(request, actor)
    ctx["limits"] = _LIMITS
    ctx["flash"] = flash
    response = W.render(request, "node/home.html", ctx)
    pages.put(key, stamp, response.body, ttl=caches.page_ttl(request))
    return response


_LIMITS = {"title": S.TITLE_MAX, "description": S.DESCRIPTION_MAX, "comment": S.COMMENT_MAX}


# --------------------------------------------------------------------------- requests

async def create_request(request: web.Request) -> web.StreamResponse:
    viewer = W.require_viewer(request)
    actor = W.actor(request)
    data = await _input(request)
    try:
        row = await S.create_request(
            request.app[T.pool_key], actor, title=_text(data, "title"),
            description=_text(data, "description"),
            contact_email=_text(data, "contact_email"),
            sync_scope=_text(data, "sync_scope") or "private",
            session_hash=viewer.session_hash)
    except AppError as exc:
        if W.wants_json(request) or exc.status != 400 or actor is None:
            raise
        ctx = await _home_context(request, actor)
        ctx.update(limits=_LIMITS, form_errors=exc.fields, form_values=data, form_open=True)
        return W.render(request, "node/home.html", ctx, status=400)
    if W.wants_json(request):
        return web.json_response({"request": S.request_json(actor, row)}, status=201,
                                 dumps=W.json_dumps)
    if not viewer.active:  # its detail page is for members; home lists what it wrote
        raise W.redirect("/")
    raise W.redirect(f"/requests/{row['id']}")


async def _detail_context(request: web.Request, actor: S.Actor | None,
                          row: Any) -> dict[str, Any]:
    thread = await S.thread(request.app[T.pool_key], actor, row["id"],
                            cursor=request.query.get("comments_cursor", ""))
    holds = await _holds(request, requests=[row["id"]],
                         comments=[c["id"] for c in thread.comments])
    return {"req": row, "perm": S.permissions(actor, row), "thread": thread, "limits": _LIMITS,
            "holds": holds,
            "promotions": await promotions.links(request.app[T.pool_key], row["id"],
                                                 [c["id"] for c in thread.comments]),
            "tags": {"all": await tags.catalog(request.app[T.pool_key]), "max":
                     tags.MAX_PER_REQUEST,
                     "mine": await tags.of_request(request.app[T.pool_key], row["id"])},
            "publication_requested": request.query.get("publication") == "requested"}


async def _holds(request: web.Request, **ids: list[str]) -> dict[str, Any]:
    """Public changes of these records still inside the publishing grace period
    ("leaves in 1 min 40 s · undo", web_templates/node/requests/_publish_hold.html)."""
    from node.sync.service import publish_holds

    return await publish_holds(request.app[T.pool_key], request.app[T.config_key], **ids)


async def request_detail(request: web.Request) -> web.StreamResponse:
    W.require_viewer(request)
    actor = W.actor(request)
    row = await S.get_visible(request.app[T.pool_key], actor, request.match_info["id"])
    ctx = await _detail_context(request, actor, row)
    body = None
    if W.wants_json(request):
        t = ctx["thread"]
        body = {"request": S.request_json(actor, row),
                "comments": [S.comment_json(c) for c in t.comments],
                "comment_count": t.total, "comments_next_cursor": t.next_cursor}
    return await W.respond(request, "node/requests/detail.html", ctx, json_body=body)


async def complete_request(request: web.Request) -> web.StreamResponse:
    W.require_viewer(request)
    actor = W.actor(request)
    row = await S.complete(request.app[T.pool_key], actor, request.match_info["id"],
                           _metrics(request))
    return await _after_request_change(request, actor, row)


async def reopen_request(request: web.Request) -> web.StreamResponse:
    W.require_active(request)
    actor = W.actor(request)
    row = await S.reopen(request.app[T.pool_key], actor, request.match_info["id"])
    return await _after_request_change(request, actor, row)


async def request_scope(request: web.Request) -> web.StreamResponse:
    W.require_viewer(request)
    actor = W.actor(request)
    data = await _input(request)
    pool = request.app[T.pool_key]
    row = await S.get_visible(pool, actor, request.match_info["id"])
    scope = _text(data, "sync_scope")
    if _needs_confirmation(request, data, scope, row["sync_scope"]):
        _may_change_scope(actor, row["created_by"], row["origin"], "request")
        return W.render(request, "node/requests/confirm_public.html",
                        {"kind": "request", "action": f"/requests/{row['id']}/scope",
                         "back": f"/requests/{row['id']}", "title": row["title"]
                         or row["description"][:80], "text": row["description"],
                         "owner": row["creator_display_name"] or row["creator_username"],
                         "own": actor is not None and row["created_by"] == actor.user_id})
    result = await S.change_scope(pool, actor, [("request", row["id"])], scope)
    row = await S.get_visible(pool, actor, row["id"])
    return await _after_request_change(request, actor, row, result)


def _may_change_scope(actor: S.Actor | None, owner: str | None, origin: str | None,
                      kind: str) -> None:
    """The confirmation page is shown only to who may then confirm (as in S.set_scope)."""
    if not S.can_change_scope(actor, owner, origin):
        raise AppError(403, "cannot_change_scope",
                       f"Only the owner or an admin may change the scope of this {kind}.")


def _needs_confirmation(request: web.Request, data: dict[str, Any], scope: str,
                        current: str) -> bool:
    """Making something public from a plain form asks once, on a page of its own (with
    JavaScript the form asks with a dialog and sends confirm=1; JSON clients decide)."""
    mode = W.public_scope(request)
    return (scope == "public" and current != "public" and mode != "off"  # off: a plain 403
            and not W.wants_json(request) and request.content_type != "application/json"
            and data.get("confirm") != "1")


async def _after_request_change(request: web.Request, actor: S.Actor | None,
                                row: Any, scope: S.ScopeChange | None = None
                                ) -> web.StreamResponse:
    if W.wants_json(request):
        body: dict[str, Any] = {"request": S.request_json(actor, row)}
        if scope is not None:
            body["publication_requested"] = bool(scope.requested)
        if not request.path.startswith("/api/"):
            body["html"] = _fragment(request, "node/requests/_summary.html",
                                     {"req": row, "perm": S.permissions(actor, row),
                                      "holds": await _holds(request, requests=[row["id"]])})
            body["target"] = f"req-{row['id']}"
        return web.json_response(body, dumps=W.json_dumps)
    if scope is not None and scope.requested:
        raise W.redirect(f"/requests/{row['id']}?publication=requested")
    raise W.redirect(f"/requests/{row['id']}")


# --------------------------------------------------------------------------- comments

async def create_comment(request: web.Request) -> web.StreamResponse:
    W.require_viewer(request)
    actor = W.actor(request)
    pool = request.app[T.pool_key]
    data = await _input(request)
    try:
        comment = await S.post_comment(pool, actor, request.match_info["id"],
                                       _text(data, "body"), _metrics(request))
    except AppError as exc:
        if W.wants_json(request) or exc.status != 400:
            raise
        row = await S.get_visible(pool, actor, request.match_info["id"])
        ctx = await _detail_context(request, actor, row)
        ctx.update(comment_errors=exc.fields, comment_value=_text(data, "body"))
        return W.render(request, "node/requests/detail.html", ctx, status=400)
    if W.wants_json(request):
        html = _fragment(request, "node/requests/_comment.html",
                         {"c": comment, "perm": {"can_moderate": S.can_moderate(actor)},
                          "req": {"id": comment["request_id"]},
                          "holds": await _holds(request, comments=[comment["id"]])})
        count = await S.Q.count_comments(pool, comment["request_id"])
        return web.json_response({"comment": S.comment_json(comment), "html": html,
                                  "comment_count": count}, status=201, dumps=W.json_dumps)
    raise W.redirect(f"/requests/{comment['request_id']}#c-{comment['id']}")


async def _moderate(request: web.Request, delete: bool) -> web.StreamResponse:
    W.require_admin(request)
    actor = W.actor(request)
    comment = await S.moderate_comment(request.app[T.pool_key], actor,
                                       request.match_info["id"], delete=delete)
    if W.wants_json(request):
        return web.json_response({"comment": S.comment_json(comment)}, dumps=W.json_dumps)
    raise W.redirect(f"/requests/{comment['request_id']}#c-{comment['id']}")


async def delete_comment(request: web.Request) -> web.StreamResponse:
    return await _moderate(request, True)


async def restore_comment(request: web.Request) -> web.StreamResponse:
    return await _moderate(request, False)


async def comment_scope(request: web.Request) -> web.StreamResponse:
    W.require_viewer(request)
    actor = W.actor(request)
    pool = request.app[T.pool_key]
    data = await _input(request)
    comment_id = S.check_id(request.match_info["id"])
    scope = _text(data, "sync_scope")
    current = await S.Q.get_comment(pool, comment_id)
    if current is not None and _needs_confirmation(request, data, scope,
                                                   current["sync_scope"]):
        _may_change_scope(actor, current["created_by"], current["origin"], "comment")
        return W.render(request, "node/requests/confirm_public.html",
                        {"kind": "comment", "action": f"/comments/{comment_id}/scope",
                         "back": f"/requests/{current['request_id']}#c-{comment_id}",
                         "title": "", "text": current["body"],
                         "owner": current["creator_display_name"]
                         or current["creator_username"],
                         "own": actor is not None and current["created_by"] == actor.user_id})
    result = await S.change_scope(pool, actor, [("comment", comment_id)], scope)
    comment = await S.Q.get_comment(pool, comment_id)
    assert comment is not None
    if W.wants_json(request):
        html = _fragment(request, "node/requests/_comment.html",
                         {"c": comment, "perm": {"can_moderate": S.can_moderate(actor)},
                          "req": {"id": comment["request_id"]},
                          "holds": await _holds(request, comments=[comment_id])})
        return web.json_response({"comment": S.comment_json(comment), "html": html,
                                  "target": f"c-{comment_id}",
                                  "publication_requested": bool(result.requested)},
                                 dumps=W.json_dumps)
    raise W.redirect(f"/requests/{comment['request_id']}#c-{comment_id}")


# --------------------------------------------------------------------------- scope page

async def scope_page(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    records = await S.Q.scope_records(request.app[T.pool_key],
                                      owner_id=None if viewer.is_admin else viewer.user_id,
                                      limit=200)
    changed = request.query.get("changed", "")
    flash = (plural(int(changed), "%(num)d record changed scope.",
                     "%(num)d records changed scope.") if changed.isdigit() else "")
    requested = request.query.get("requested", "")
    flash_requested = (plural(int(requested), "%(num)d record waits for an admin's approval "
                              "before it is public.", "%(num)d records wait for an admin's "
                              "approval before they are public.")
                       if requested.isdigit() and requested != "0" else "")
    holds = await _holds(request, requests=[r["id"] for r in records["request"]],
                         comments=[r["id"] for r in records["comment"]],
                         users=[r["id"] for r in records["user"]])
    return W.render(request, "node/requests/scope.html",
                    {"records": records, "flash": flash, "holds": holds,
                     "flash_requested": flash_requested})


async def scope_submit(request: web.Request) -> web.StreamResponse:
    W.require_active(request)
    actor = W.actor(request)
    data = await _input(request)
    raw = data.get("item", [])
    undo = data.get("undo")
    if isinstance(undo, str) and undo:
        # "undo" next to a record waiting out the publishing grace period: that record
        # alone goes back to private, whatever else is ticked.
        raw, data["sync_scope"] = [undo], "private"
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise bad_request("nothing_selected", "Select at least one record.",
                          item="Tick the records to change.")
    items = []
    for value in raw:
        kind, _, record_id = str(value).partition(":")
        items.append((kind, record_id))
    result = await S.change_scope(request.app[T.pool_key], actor, items,
                                  _text(data, "sync_scope"))
    if W.wants_json(request):
        return web.json_response(result.as_json())
    more = f"&requested={len(result.requested)}" if result.requested else ""
    raise W.redirect(f"/sync/scope?changed={result.changed}{more}")


# --------------------------------------------------------------------------- JSON API

async def api_list(request: web.Request) -> web.StreamResponse:
    W.require_viewer(request)
    actor = W.actor(request)
    q = request.query
    status, search = q.get("status", "open"), q.get("search", q.get("q", ""))
    cursor, tag = q.get("cursor", ""), q.get("tag", "")
    limit = S.parse_limit(q.get("limit"), S.FEED_PAGE)
    page, stamp = await cached.feed(request, actor, status=status, search=search,
                                    cursor=cursor, limit=limit, tag=tag)
    body = cached.feed_body(request, actor, page, (status, search, cursor, limit, tag), stamp)
    return web.Response(body=body, content_type="application/json", charset="utf-8")


async def api_pending(request: web.Request) -> web.StreamResponse:
    viewer = W.require_viewer(request)
    actor = W.actor(request)
    assert actor is not None
    rows = await S.own_pending(request.app[T.pool_key], actor, viewer.session_hash)
    return web.json_response({"requests": [S.request_json(actor, r) for r in rows]},
                             dumps=W.json_dumps)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/", home, name="home")
    r.add_post("/requests", create_request, name="request_create")
    r.add_get("/requests/{id}", request_detail, name="request_detail")
    r.add_post("/requests/{id}/comments", create_comment, name="comment_create")
    r.add_post("/requests/{id}/complete", complete_request, name="request_complete")
    r.add_post("/requests/{id}/reopen", reopen_request, name="request_reopen")
    r.add_post("/requests/{id}/scope", request_scope, name="request_scope")
    r.add_post("/comments/{id}/delete", delete_comment, name="comment_delete")
    r.add_post("/comments/{id}/restore", restore_comment, name="comment_restore")
    r.add_post("/comments/{id}/scope", comment_scope, name="comment_scope")
    r.add_get("/sync/scope", scope_page, name="sync_scope")
    r.add_post("/sync/scope", scope_submit, name="sync_scope_submit")
    r.add_get("/api/requests", api_list, name="api_requests")
    r.add_post("/api/requests", create_request, name="api_request_create")
    r.add_get("/api/requests/pending", api_pending, name="api_requests_pending")
    r.add_get("/api/requests/{id}", request_detail, name="api_request_detail")
    r.add_post("/api/requests/{id}/complete", complete_request, name="api_request_complete")
