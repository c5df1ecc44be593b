"""The "Repair" part of the sync control center: ``GET /admin/sync-control/repair`` shows
what ``wb sync repair --dry-run`` would report; the Repair button posts to the same
address and shows what was done (page or JSON, like the CLI's ``--json``)."""

from __future__ import annotations

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.errors import AppError, bad_request
from node.sync.errors import SyncError
from node.sync.repair import repair

PATH = "/admin/sync-control/repair"


async def _run(request: web.Request, dry_run: bool) -> web.StreamResponse:
    W.require_admin(request)
    peer = None
    drop = False
    if request.method == "POST":
        form = await W.read_form(request)
        peer = (form.get("peer") or "").strip() or None
        drop = form.get("drop_revoked") in ("on", "true", "1")
    else:
        peer = request.query.get("peer") or None
    try:
        report = await repair(request.app[T.pool_key], request.app[T.config_key],
                              dry_run=dry_run, peer=peer, drop_revoked=drop,
                              actor=f"web:{W.viewer_of(request).username}")  # type: ignore[union-attr]
    except SyncError as exc:
        status = 404 if exc.code in ("unknown_peer", "not_found") else 409
        raise AppError(status, exc.code, exc.message) from None
    body = report.as_json()
    return await W.respond(request, "node/sync/repair.html",
                           {"report": body, "text": report.text(), "peer": peer or ""},
                           json_body=body)


async def repair_check(request: web.Request) -> web.StreamResponse:
    if request.query.get("dry_run", "1") not in ("1", "true"):
        raise bad_request("use_post", "Repairs run with POST (the Repair button).")
    return await _run(request, True)


async def repair_run(request: web.Request) -> web.StreamResponse:
    return await _run(request, False)


def setup(app: web.Application) -> None:
    app.router.add_get(PATH, repair_check, name="sync_control_repair")
    app.router.add_post(PATH, repair_run, name="sync_control_repair_run")
