"""Recurring requests on the web: the list with the new form, a template's page (edit form
and the log of what it made), pause / resume / delete (plain forms, JSON to
``Accept: application/json``), ``/api/recurring``; and the ``recurring:materialise`` job."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.errors import AppError
from node.jobs import summarize
from node.recurring import cadence as C
from node.recurring import service as S
from node.requests import service as RS
from node.scheduler import Job, register_job
from node.tags import service as TS

JOB_ID = "recurring:materialise"
FLASH = {"saved": "Saved. It comes back on its cadence.", "deleted": "Recurring request deleted.",
         "paused": "Paused: nothing is made until you resume it.",
         "resumed": "Resumed from now on; what fell due while paused is not made."}
LIMITS = {"title": RS.TITLE_MAX, "description": RS.DESCRIPTION_MAX}
_LISTS = ("weekdays", "tags")


def _zone(request: web.Request) -> Any:
    return S.zone_of(request.app[T.config_key])


def _now(request: web.Request) -> Any:
    return S.clock_of(request.app[T.extras_key])()


def _json_body(request: web.Request) -> bool:
    """A JSON client, or a JSON body: its errors are answered in JSON, never shown on the
    form (whose fields expect a form's strings and lists, not any JSON value)."""
    return W.wants_json(request) or request.content_type == "application/json"


async def _page(request: web.Request, template: Any, *, values: dict[str, Any] | None = None,
                error: AppError | None = None, status: int = 200,
                rows: list[Any] | None = None) -> web.StreamResponse:
    pool = request.app[T.pool_key]
    zone = _zone(request)
    ctx: dict[str, Any] = {
        "template": template, "values": values or {"cadence": "weekly", "mode": "draft"},
        "errors": error.fields if error else {}, "error": error, "limits": LIMITS,
        "flash": FLASH.get(request.query.get("done", ""), ""), "time_zone": zone.key, "zone": zone,
        "weekdays": C.WEEKDAYS, "weekday_names": C.WEEKDAY_NAMES,
        "catalog": await TS.catalog(pool), "modes": S.MODES,
    }
    if template is not None:
        ctx["log"] = await S.history(pool, W.actor(request), template["id"])
        return W.render(request, "node/recurring/detail.html", ctx, status=status)
    now = _now(request)
    ctx["templates"] = [S.template_json(r, zone, now)
                        for r in (rows if rows is not None
                                  else await S.overview(pool, W.actor(request)))]
    return W.render(request, "node/recurring/index.html", ctx, status=status)


async def index(request: web.Request) -> web.StreamResponse:
    rows = await S.overview(request.app[T.pool_key], W.actor(request))
    if W.wants_json(request) or request.path.startswith("/api/"):
        zone, now = _zone(request), _now(request)
        return web.json_response({"templates": [S.template_json(r, zone, now) for r in rows],
                                  "time_zone": zone.key}, dumps=W.json_dumps)
    return await _page(request, None, rows=rows)


def _json(request: web.Request, row: Any, log: list[Any] | None = None,
          status: int = 200) -> web.Response:
    body: dict[str, Any] = {"template": S.template_json(row, _zone(request), _now(request))}
    if log is not None:
        body["log"] = [S.occurrence_json(r) for r in log]
    return web.json_response(body, status=status, dumps=W.json_dumps)


async def create(request: web.Request) -> web.StreamResponse:
    pool, actor = request.app[T.pool_key], W.actor(request)
    S.require_manager(actor)  # before the body is read: a 403 whatever was sent
    data = await W.read_fields(request, _LISTS)
    try:
        new_id = await S.save(pool, actor, data, now=_now(request))
    except AppError as exc:
        if _json_body(request) or request.path.startswith("/api/") \
                or exc.status not in (400, 409):
            raise
        return await _page(request, None, values=data, error=exc, status=exc.status)
    if W.wants_json(request) or request.path.startswith("/api/"):
        return _json(request, await S.get(pool, actor, new_id), [], status=201)
    raise W.redirect(f"/recurring/{new_id}?done=saved")


async def detail(request: web.Request) -> web.StreamResponse:
    pool, actor = request.app[T.pool_key], W.actor(request)
    row = await S.get(pool, actor, request.match_info["id"])
    if W.wants_json(request) or request.path.startswith("/api/"):
        return _json(request, row, await S.history(pool, actor, row["id"]))
    return await _page(request, row, values=S.template_json(row, _zone(request)))


async def update(request: web.Request) -> web.StreamResponse:
    pool, actor = request.app[T.pool_key], W.actor(request)
    template_id = request.match_info["id"]
    S.require_manager(actor)
    data = await W.read_fields(request, _LISTS)
    try:
        await S.save(pool, actor, data, template_id, now=_now(request))
    except AppError as exc:
        if _json_body(request) or exc.status not in (400, 409):
            raise
        row = await S.get(pool, actor, template_id)
        return await _page(request, row, values=data, error=exc, status=exc.status)
    if W.wants_json(request):
        return _json(request, await S.get(pool, actor, template_id))
    raise W.redirect(f"/recurring/{template_id}?done=saved")


def _pause(paused: bool):
    async def view(request: web.Request) -> web.StreamResponse:
        row = await S.set_paused(request.app[T.pool_key], W.actor(request),
                                 request.match_info["id"], paused, now=_now(request))
        if W.wants_json(request):
            return _json(request, row)
        raise W.redirect(f"/recurring/{row['id']}?done={'paused' if paused else 'resumed'}")
    return view


async def delete(request: web.Request) -> web.StreamResponse:
    await S.delete(request.app[T.pool_key], W.actor(request), request.match_info["id"])
    if W.wants_json(request):
        return web.json_response({"deleted": request.match_info["id"]})
    raise W.redirect("/recurring?done=deleted")


async def run_due(app: web.Application) -> str:
    """The job: make every template's due occurrence (once; see the service)."""
    now = S.clock_of(app[T.extras_key])()
    return summarize(await S.materialise_due(app[T.pool_key], app[T.config_key], now))


def setup(app: web.Application) -> None:
    S.zone_of(app[T.config_key])  # an unknown WB_TIME_ZONE stops the node here
    r = app.router
    r.add_get("/recurring", index, name="recurring")
    r.add_post("/recurring", create, name="recurring_create")
    r.add_get("/recurring/{id}", detail, name="recurring_detail")
    r.add_post("/recurring/{id}", update, name="recurring_update")
    r.add_post("/recurring/{id}/pause", _pause(True), name="recurring_pause")
    r.add_post("/recurring/{id}/resume", _pause(False), name="recurring_resume")
    r.add_post("/recurring/{id}/delete", delete, name="recurring_delete")
    r.add_get("/api/recurring", index, name="api_recurring")
    r.add_post("/api/recurring", create, name="api_recurring_create")
    r.add_get("/api/recurring/{id}", detail, name="api_recurring_detail")
    register_job(app, Job(JOB_ID, run_due, interval=60.0))
