"""Pages of the notifications feature: switches, address confirmation, one-click
unsubscribe, the admin mail page, Atom feeds and /llms.txt; and the outbox jobs."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import scheduler
from node import typedefs as T
from node import web as W
from node.canonical import link_base
from node.errors import AppError
from node.notifications import mailer
from node.notifications import service as S
from service import atom

STATES = ("queued", "sending", "committing", "sent", "skipped", "dropped", "uncertain")
UNSUBSCRIBE_WHAT = {"comment": "comments on your requests",
                    "status": "your requests being completed or reopened",
                    "signin": "sign-ins waiting for your approval",
                    "member_waiting": "new members waiting for approval",
                    "digest": "the daily digest", "address": "every message to this address",
                    "all": "every notification"}


async def _input(request: web.Request) -> dict[str, Any]:
    """Form fields, or a JSON object (``true`` / ``"on"`` both switch on)."""
    data = await W.read_json_object(request)
    if data is not None:
        return data
    form = await W.read_form(request)
    return {key: form.get(key) for key in form}


def _relay_ok(request: web.Request) -> bool:
    return mailer.relay_configured(request.app[T.config_key])


async def _settings_page(request: web.Request, *, feed_url: str | None = None,
                         errors: dict[str, str] | None = None, status: int = 200
                         ) -> web.StreamResponse:
    viewer = W.require_active(request)
    settings = await S.settings_of(request.app[T.pool_key], viewer.user_id)
    body = {"email": settings.email, "confirmed": settings.confirmed,
            "switches": settings.switches, "feed": settings.has_feed,
            "relay": _relay_ok(request)}
    if feed_url:
        body["feed_url"] = feed_url
    return await W.respond(request, "node/notifications/settings.html", {
        "settings": settings, "labels": S.SWITCH_LABELS, "relay": _relay_ok(request),
        "feed_url": feed_url, "errors": errors or {}}, json_body=body, status=status)


async def settings_get(request: web.Request) -> web.StreamResponse:
    return await _settings_page(request)


async def settings_post(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    await S.save_switches(request.app[T.pool_key], viewer.user_id, await _input(request))
    if W.wants_json(request):
        return await _settings_page(request)
    raise W.redirect("/settings/notifications")


async def address_post(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    data = await _input(request)
    try:
        await S.set_address(request.app[T.pool_key], viewer.user_id, data.get("email"))
    except AppError as exc:
        if W.wants_json(request) or exc.code != "invalid_email":
            raise
        return await _settings_page(request, errors=exc.fields, status=exc.status)
    if W.wants_json(request):
        return await _settings_page(request)
    raise W.redirect("/settings/notifications")


async def feed_token_post(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    token = await S.new_feed_token(request.app[T.pool_key], viewer.user_id)
    site = link_base(request.app[T.config_key])
    response = await _settings_page(request, feed_url=f"{site}/feeds/mine.atom?token={token}")
    response.headers["Cache-Control"] = "no-store"
    return response


async def feed_token_revoke(request: web.Request) -> web.StreamResponse:
    viewer = W.require_active(request)
    await S.revoke_feed_token(request.app[T.pool_key], viewer.user_id)
    if W.wants_json(request):
        return await _settings_page(request)
    raise W.redirect("/settings/notifications")


async def confirm(request: web.Request) -> web.StreamResponse:
    app = request.app
    address = await S.confirm(app[T.pool_key], app[T.csrf_secret_key], app[T.config_key],
                              request.query.get("token", ""))
    return await W.respond(request, "node/notifications/confirmed.html",
                           {"address": address},
                           json_body={"confirmed": True, "email": address})


async def unsubscribe_page(request: web.Request) -> web.StreamResponse:
    token = request.query.get("token", "")
    _, kind = S.read_unsubscribe_token(request.app[T.csrf_secret_key], token)
    return await W.respond(request, "node/notifications/unsubscribe.html",
                           {"token": token, "what": UNSUBSCRIBE_WHAT[kind], "done": None},
                           json_body={"kind": kind})


@W.csrf_exempt
async def unsubscribe_post(request: web.Request) -> web.StreamResponse:
    """RFC 8058 one-click: the signed token in the URL is the only credential."""
    app = request.app
    kind = await S.unsubscribe(app[T.pool_key], app[T.csrf_secret_key],
                               request.query.get("token", ""))
    return await W.respond(request, "node/notifications/unsubscribe.html",
                           {"done": f"no more {UNSUBSCRIBE_WHAT[kind]}", "token": ""},
                           json_body={"unsubscribed": kind})


async def admin_mail(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    status = await S.status(request.app[T.pool_key], request.app[T.config_key])
    return await W.respond(request, "node/notifications/admin_mail.html",
                           {"status": status, "states": STATES},
                           json_body={"relay": status.relay, "relay_error": status.relay_error,
                                      "counts": status.counts,
                                      "problems": [dict(p) for p in status.problems]})


async def admin_mail_retry(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    form = await W.read_form(request)
    n = await S.retry(request.app[T.pool_key], None, uncertain=bool(form.get("uncertain")))
    if W.wants_json(request):
        return web.json_response({"requeued": n})
    raise W.redirect("/admin/mail")


async def public_feed(request: web.Request) -> web.StreamResponse:
    body, newest = await S.public_feed(request.app[T.pool_key], request.app[T.config_key])
    return atom.conditional(request, body, newest)


async def member_feed(request: web.Request) -> web.StreamResponse:
    """The token rides in the query string: the node logs paths, never query strings."""
    body, newest = await S.member_feed(request.app[T.pool_key], request.app[T.config_key],
                                       request.query.get("token", ""))
    return atom.conditional(request, body, newest, cache="private, no-cache")


LLMS_TXT = """# {site_name}

> A WhiteBalloon node: an invite-only mutual-aid community where members ask for and
> offer help. Pages are server-rendered and work without JavaScript.

## Public pages and documents

- [Public requests (Atom)]({site}/feeds/requests.atom): requests this community marked public
- [OpenAPI]({site}/openapi.json): the JSON API of this node
- [Health]({site}/healthz)

## What this site never publishes

- Anything not marked `public` by its author or an admin: private requests, comments,
  profiles, and every request waiting for approval.
- Contact addresses (unless their owner opted in), sign-in codes, sessions, invites,
  notification settings, e-mail addresses for notifications, feed secrets.
- Everything else requires an invitation and a signed-in member.
"""


async def llms_txt(request: web.Request) -> web.Response:
    config = request.app[T.config_key]
    text = LLMS_TXT.format(site_name=config["SITE_NAME"], site=link_base(config))
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=3600"})


def setup(app: web.Application) -> None:
    config = app[T.config_key]
    r = app.router
    r.add_get("/settings/notifications", settings_get, name="notifications_settings")
    r.add_post("/settings/notifications", settings_post, name="notifications_save")
    r.add_post("/settings/notifications/address", address_post, name="notifications_address")
    r.add_post("/settings/notifications/feed", feed_token_post, name="notifications_feed_new")
    r.add_post("/settings/notifications/feed/revoke", feed_token_revoke,
               name="notifications_feed_revoke")
    r.add_get("/notifications/confirm", confirm, name="notifications_confirm")
    r.add_get("/notifications/unsubscribe", unsubscribe_page, name="notifications_unsubscribe")
    r.add_post("/notifications/unsubscribe", unsubscribe_post,
               name="notifications_unsubscribe_post")
    r.add_get("/admin/mail", admin_mail, name="admin_mail")
    r.add_post("/admin/mail/retry", admin_mail_retry, name="admin_mail_retry")
    r.add_get("/feeds/requests.atom", public_feed, name="feed_public")
    r.add_get("/feeds/mine.atom", member_feed, name="feed_member")
    r.add_get("/llms.txt", llms_txt, name="llms_txt")
    scheduler.register_job(app, scheduler.Job(
        "mail:outbox", S.deliver_due, float(config.get_int("WB_MAIL_INTERVAL")),
        timeout=S.RUN_SECONDS * 2))
    scheduler.register_job(app, scheduler.Job("mail:digest", S.queue_digests, 3600.0))
