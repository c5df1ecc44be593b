"""The sync control center (``/admin/sync-control``) and the export preview (``/sync/public``).

Admin only; every form carries the CSRF token. Buttons run the very jobs the scheduler
runs (``node.scheduler.run_job``) in a background task, so a slow peer never holds a
request; the page shows the job's state and its last result.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

from aiohttp import web

from keys import KeyFileError
from node import typedefs as T
from node import web as W
from node.errors import AppError, bad_request, not_found
from node.i18n import plural
from node.scheduler import JOB_ACTOR, job_states, jobs_key, run_job, set_paused
from node.sync import audit as A
from node.sync import gaps as G
from node.sync import gossip
from node.sync import importer as I
from node.sync import peers as P
from node.sync import queries as Q
from node.sync import rotation as R
from node.sync.identity import load_or_create_key
from node.sync.scheduling import reconcile, runtime, spawn
from node.sync.service import job as sync_job
from node.sync.service import our_origin

log = logging.getLogger("wb.node.sync")

BASE = "/admin/sync-control"
PREVIEW_FILES = 20
PREVIEW_BYTES = 2000
RUN_NOW_WAIT = 20.0  # seconds "Run now" waits for the result before answering


async def _form(request: web.Request) -> dict[str, str]:
    data = await request.post()
    return {k: v.strip() for k, v in data.items() if isinstance(v, str)}


def _back(flash: str) -> web.HTTPSeeOther:
    from urllib.parse import quote

    return W.redirect(f"{BASE}?flash={quote(flash[:300])}")


async def control_page(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    ctx, body = await _control_context(request)
    return await W.respond(request, "node/sync/control.html", ctx, json_body=body)


async def _control_context(request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
    app = request.app
    pool, config = app[T.pool_key], app[T.config_key]
    origin = await our_origin(pool, config)
    key = load_or_create_key(config)
    state = await Q.get_state(pool)
    states = {r["id"]: r for r in await job_states(pool)}
    rt = runtime(app)
    peers = []
    for row in await P.list_peers(pool):
        info = P.peer_public(row, await P.peer_keys(pool, row["name"]))
        info["jobs"] = [{"id": jid, "state": states.get(jid)}
                        for jid in (f"push:{row['name']}", f"pull:{row['name']}")
                        if jid in app[jobs_key]]
        info["stream"] = rt.stream_status.get(row["name"])
        peers.append(info)
    other_jobs = [{"id": jid, "state": states.get(jid)} for jid in sorted(app[jobs_key])
                  if not jid.startswith(("push:", "pull:"))]
    ctx = {
        "origin": origin, "key_id": key.key_id,
        "public_key": base64.b64encode(key.public_key).decode(),
        "chain": Q.as_dict(state), "peers": peers, "other_jobs": other_jobs,
        "history": await Q.recent_jobs(pool, 50),
        "pending": await I.list_pending(pool), "gaps": await Q.gaps_summary(pool),
        "equivocations": await Q.equivocations(pool),
        "chain_breaks": await G.chain_breaks(pool),
        "hub_incidents": [dict(r) | {"evidence": json.loads(r["evidence"])}
                          for r in await A.incidents(pool)],
        "hub_logs": await A.latest_checkpoints(pool),
        "gossip": await gossip.source_states(pool),
        "gossip_interval": gossip.interval(config),
        "key_history": await R.key_history(pool),
        "scheduler_on": config.get_bool("WB_SCHEDULER"),
        "interval": config.get_int("WB_SYNC_INTERVAL"),
        "flash": request.query.get("flash", ""),
    }
    body = {"origin": origin, "key_id": key.key_id, "public_key": ctx["public_key"],
            "sequence": ctx["chain"].get("sequence", 0),
            "peers": [{k: v for k, v in p.items() if k != "jobs"} | {
                "jobs": {j["id"]: dict(j["state"]) if j["state"] else None for j in p["jobs"]}}
                for p in peers],
            "jobs": [dict(r) for r in ctx["history"]],
            "keys": [dict(r) for r in ctx["key_history"]],
            "chain_breaks": [dict(r) for r in ctx["chain_breaks"]],
            "hub_incidents": ctx["hub_incidents"],
            "hub_checkpoints": [{"peer": r["peer"], "size": r["size"],
                                 "note": bytes(r["note"]).decode()} for r in ctx["hub_logs"]],
            "gossip": [dict(r) for r in ctx["gossip"]],
            "pending": [dict(r) for r in ctx["pending"]]}
    return ctx, body


async def _form_failed(request: web.Request, exc: AppError, form: str,
                       values: dict[str, str]) -> web.StreamResponse:
    """A form on the control page went wrong: JSON clients get the error; a browser gets
    the page again, the message next to that form, the values typed kept (never tokens)."""
    if W.wants_json(request):
        raise exc
    ctx, _ = await _control_context(request)
    safe = {k: v for k, v in values.items() if "token" not in k and k != "csrf_token"}
    ctx.update(form_error={"form": form, "message": exc.message, "fields": exc.fields},
               form_values=safe, flash="")
    return W.render(request, "node/sync/control.html", ctx, status=exc.status)


def _pins(text: str) -> list[str]:
    return [p for p in text.replace(",", " ").split() if p]


async def add_peer(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    f = await _form(request)
    name, kind, location = f.get("name", ""), f.get("kind", "hub"), f.get("location", "")
    try:
        if not name or len(name) > 64 or not all(c.isalnum() or c in "-_." for c in name):
            raise bad_request("invalid_peer",
                              "Give the peer a short name (letters, digits, - _ .).",
                              name="letters, digits, - _ .")
        try:
            await P.add_peer(request.app[T.pool_key], name, kind, location,
                             token=f.get("token") or None,
                             inbox_token=f.get("inbox_token") or None,
                             api=f.get("api", "v2") or "v2", pins=_pins(f.get("pins", "")))
        except I.SyncError as exc:
            raise bad_request(exc.code, exc.message) from None
    except AppError as exc:
        return await _form_failed(request, exc, "add-peer", f)
    await reconcile(request.app)
    log.info("peer added", extra={"peer": name, "by": W.require_admin(request).user_id})
    raise _back(f"Peer {name} added; its jobs are scheduled.")


async def edit_peer(request: web.Request) -> web.StreamResponse:
    viewer = W.require_admin(request)
    name = request.match_info["name"]
    f = await _form(request)
    try:
        await P.update_peer(request.app[T.pool_key], name, location=f.get("location") or None,
                            token=f.get("token") or None,
                            inbox_token=f.get("inbox_token") or None,
                            api=f.get("api") or None, pins=_pins(f.get("pins", "")),
                            clear_token=f.get("clear_token") == "1",
                            actor=f"admin:{viewer.user_id}")
    except I.SyncError as exc:
        status = 404 if exc.code == "unknown_peer" else 400
        if status == 404:
            raise AppError(status, exc.code, exc.message) from None
        return await _form_failed(request, AppError(status, exc.code, exc.message),
                                  f"edit-{name}", f)
    await reconcile(request.app)
    raise _back(f"Peer {name} updated.")


async def remove_peer(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    name = request.match_info["name"]
    if not await P.remove_peer(request.app[T.pool_key], name):
        raise not_found("unknown_peer", f"No peer named {name}.")
    await reconcile(request.app)
    raise _back(f"Peer {name} removed with its pinned keys and jobs.")


async def unpin(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    name = request.match_info["name"]
    f = await _form(request)
    origin, kid = P.parse_pin(f.get("pin", ""))
    if not await P.unpin_key(request.app[T.pool_key], name, origin, kid):
        raise not_found("unknown_key", "That key is not pinned for this peer.")
    raise _back(f"Key {kid} is no longer pinned for {name}.")


def _job_of(request: web.Request) -> Any:
    job = request.app[jobs_key].get(request.match_info["job_id"])
    if job is None:
        raise not_found("unknown_job", "No such job (is the peer still configured?).")
    return job


async def run_now(request: web.Request) -> web.StreamResponse:
    """Run the job for the admin who asked and answer with its result: the run is a
    background task (a closed tab never cancels it), awaited up to RUN_NOW_WAIT seconds.
    A form gets a redirect back with the result as a flash; a JSON client gets it as JSON
    (202 with ``queued`` when it is still running)."""
    viewer = W.require_admin(request)
    job = _job_of(request)
    token = JOB_ACTOR.set(f"admin:{viewer.user_id}")
    try:
        task = spawn(request.app, run_job(request.app, job, force=True))
    finally:
        JOB_ACTOR.reset(token)
    try:
        result: str | None = await asyncio.wait_for(asyncio.shield(task), RUN_NOW_WAIT)
    except TimeoutError:
        result = None
    if W.wants_json(request):
        if result is None:
            return web.json_response({"job": job.id, "queued": job.id}, status=202)
        return web.json_response({"job": job.id, "result": result,
                                  "ok": result.startswith("ok")})
    flash = (f"{job.id}: {result}." if result is not None else
             f"{job.id} is still running; its result will show on this page.")
    form = await request.post()
    back = form.get("back")
    if back == "/admin":
        from urllib.parse import quote

        raise W.redirect(f"/admin?flash={quote(flash[:300])}#sync")
    raise _back(flash)


async def pause(request: web.Request) -> web.StreamResponse:
    W.require_admin(request)
    job = _job_of(request)
    paused = request.match_info["action"] == "pause"
    await set_paused(request.app[T.pool_key], job.id, paused)
    raise _back(f"{job.id} {'paused' if paused else 'resumed'}.")


async def pending_action(request: web.Request) -> web.StreamResponse:
    viewer = W.require_admin(request)
    pool, config = request.app[T.pool_key], request.app[T.config_key]
    pending_id, action = request.match_info["pending_id"], request.match_info["action"]
    if action == "discard":
        if not await I.discard_pending(pool, pending_id):
            raise not_found("unknown_pending", "No such pending bundle.")
        raise _back("Discarded.")
    origin = await our_origin(pool, config)
    actor = f"admin:{viewer.user_id}"
    try:
        async with sync_job(pool, "approve", actor) as j:
            results = await I.approve_pending(pool, pending_id, our_origin=origin, actor=actor)
            for r in results:
                j.add_import(r)
    except I.SyncError as exc:
        raise AppError(404 if exc.code.startswith("unknown") else 409, exc.code,
                       exc.message) from None
    applied = sum(r.applied_total for r in results)
    raise _back(f"Key trusted; {plural(len(results), '%(num)d bundle', '%(num)d bundles')} "
                f"imported, {plural(applied, '%(num)d record', '%(num)d records')} applied.")


async def rotate_key(request: web.Request) -> web.StreamResponse:
    """Generate the next signing key and announce it signed by the current one."""
    viewer = W.require_admin(request)
    pool, config = request.app[T.pool_key], request.app[T.config_key]
    f = await _form(request)
    if f.get("confirm") != "rotate":
        return await _form_failed(request, bad_request(
            "confirmation_required", "Type rotate in the confirmation field to rotate the key.",
            confirm="type rotate"), "rotate", {})
    actor = f"admin:{viewer.user_id}"
    try:
        async with sync_job(pool, "rotate", actor) as j:
            res = await R.rotate_key(pool, config, actor=actor)
            j.bundles = 1
            j.details = res.as_json()
    except KeyFileError as exc:
        raise AppError(409, exc.code, exc.message) from None
    log.info("key rotated from the control center",
             extra={"by": viewer.user_id, "key_id": res.key_id})
    if W.wants_json(request):
        return web.json_response(res.as_json())
    raise _back(f"Signing key is now {res.key_id}; the announcement is chain link "
                f"#{res.sequence} and goes out with the next push.")


# --------------------------------------------------------------------------- /sync/public

async def public_preview(request: web.Request) -> web.StreamResponse:
    """Exactly what the next export would publish, and the current manifest."""
    W.require_admin(request)
    from node.sync.export import preview
    from protocol.containers import from_cbor
    from protocol.errors import ProtocolError
    from protocol.records import render_record
    from protocol.signature import verify_signature

    pool, config = request.app[T.pool_key], request.app[T.config_key]
    snapshot = request.query.get("snapshot") == "1"
    result, records = await preview(pool, config, snapshot=snapshot)
    files = []
    for rec in records[:PREVIEW_FILES]:
        text = render_record(rec).decode("utf-8", "replace")
        files.append({"path": rec.path, "deleted": rec.deleted,
                      "text": text[:PREVIEW_BYTES], "cut": len(text) > PREVIEW_BYTES})
    manifest: dict[str, Any] | None = None
    state = await Q.get_state(pool)
    if state is not None and state["sequence"]:
        row = await Q.outbox_get(pool, state["sequence"])
        if row is not None:
            bundle = from_cbor(bytes(row["envelope"]))
            try:
                sig = verify_signature(bundle.sig, bundle.manifest)
                verified, why = sig.key_id in (state["origin"], load_or_create_key(
                    config).key_id), None
                if not verified:
                    why = f"signed by {sig.key_id}, not this node's key"
            except ProtocolError as exc:
                verified, why = False, f"{exc.code}: {exc.message}"
            manifest = {"sequence": row["sequence"], "digest": row["digest"],
                        "kind": row["kind"], "records": row["record_count"],
                        "created_at": row["created_at"], "verified": verified, "why": why,
                        "text": bundle.manifest.decode("utf-8", "replace")[:8000]}
    from node.sync.service import leaves_in_text

    waiting = [{"path": w.record.path, "entity": w.record.entity, "id": w.record.id,
                "title": w.record.get("Title") or w.record.get("Username") or "",
                "leaves_in_seconds": w.leaves_in_seconds,
                "leaves_in": leaves_in_text(w.leaves_in_seconds), "leaves_at": w.leaves_at,
                "undo": {"request": f"/requests/{w.record.id}/scope",
                         "comment": f"/comments/{w.record.id}/scope"}.get(w.record.entity)}
               for w in result.waiting]
    ctx = {"result": result.as_json(), "files": files, "more": max(0, len(records) - len(files)),
           "manifest": manifest, "snapshot": snapshot, "waiting": waiting}
    body = {"next": result.as_json(), "paths": [r.path for r in records],
            "waiting": [{k: v for k, v in w.items() if k not in ("leaves_in", "undo")}
                        for w in waiting],
            "manifest": {k: v for k, v in (manifest or {}).items() if k != "text"} or None}
    return await W.respond(request, "node/sync/public.html", ctx, json_body=body)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(BASE, control_page, name="sync_control")
    r.add_post(f"{BASE}/peers", add_peer, name="sync_control_peer_add")
    r.add_post(BASE + "/peers/{name}/edit", edit_peer, name="sync_control_peer_edit")
    r.add_post(BASE + "/peers/{name}/remove", remove_peer, name="sync_control_peer_remove")
    r.add_post(BASE + "/peers/{name}/unpin", unpin, name="sync_control_peer_unpin")
    r.add_post(BASE + "/jobs/{job_id}/run", run_now, name="sync_control_job_run")
    r.add_post(BASE + "/jobs/{job_id}/{action:pause|resume}", pause,
               name="sync_control_job_pause")
    r.add_post(BASE + "/pending/{pending_id}/{action:approve|discard}", pending_action,
               name="sync_control_pending")
    r.add_post(f"{BASE}/rotate-key", rotate_key, name="sync_control_rotate_key")
    r.add_get("/sync/public", public_preview, name="sync_public")
