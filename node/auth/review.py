"""Peer approval pages (#23): the reviewers' queue /review/sign-ins with approve and deny,
and the approval ledger for admins (/admin/approvals/ledger.txt).

Reviewers (and, with WB_INVITER_MAY_APPROVE, inviters) decide OTHER members' sign-ins;
they never see the code: they type the one the member reads to them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from node import typedefs as T
from node import web as W
from node.auth import approval as A
from node.auth import ledger
from node.auth.handlers import answer, form_error, json_client, rate_limit, read_input
from node.errors import AppError

QUEUE = "/review/sign-ins"
_DONE = {"approved": "Approved: that device is signed in now.",
         "denied": "Denied: that device was turned away."}


def _voucher(request: web.Request) -> A.Voucher:
    viewer = W.require_active(request)
    return A.voucher(viewer.user_id, is_admin=viewer.is_admin, roles=viewer.roles,
                     config=request.app[T.config_key])


async def _context(request: web.Request, v: A.Voucher, **extra: Any) -> dict[str, Any]:
    items = await A.review_queue(request.app[T.pool_key], v)
    return {"requests": items, "inviter_may": v.inviter_may, "reviewer": v.reviewer,
            **extra}


async def queue_page(request: web.Request) -> web.StreamResponse:
    v = _voucher(request)
    ctx = await _context(request, v, done=_DONE.get(request.query.get("done", ""), ""))
    return answer(request, "node/auth/review.html", ctx, {"pending": ctx["requests"]})


async def review_approve(request: web.Request) -> web.StreamResponse:
    v = _voucher(request)
    data, _ = await read_input(request)
    request_id = request.match_info["request_id"]
    try:
        rate_limit(request, "code")
        decision = await A.approve(
            request.app[T.pool_key], request.app[T.config_key], request_id,
            actor_id=v.user_id, ip=W.client_ip(request), code=str(data.get("code") or ""),
            vouch=v, note=data.get("note"))
    except AppError as exc:
        if getattr(exc, "locked", False):
            request.app[T.metrics_key].logins.labels("locked").inc()
        return form_error(request, exc, "node/auth/review.html",
                          await _context(request, v, failed_id=request_id,
                                         values={"note": data.get("note", "")}))
    return _decided(request, "approved", decision)


async def review_deny(request: web.Request) -> web.StreamResponse:
    v = _voucher(request)
    data, _ = await read_input(request)
    decision = await A.deny(request.app[T.pool_key], request.match_info["request_id"],
                            actor_id=v.user_id, ip=W.client_ip(request), vouch=v,
                            note=data.get("note"))
    return _decided(request, "denied", decision)


def _decided(request: web.Request, status: str, decision: Any) -> web.StreamResponse:
    """Count the decision, then answer JSON or go back to the queue."""
    request.app[T.metrics_key].logins.labels(status).inc()
    if json_client(request):
        return web.json_response({"status": status, "request_id": decision.request_id,
                                  "ledger_row": decision.ledger_seq})
    raise W.redirect(f"{QUEUE}?done={status}")


async def ledger_download(request: web.Request) -> web.StreamResponse:
    """The whole ledger with its checksum (the chain head), for admins; JSON clients get
    the entries, the head and what verification found."""
    W.require_admin(request)
    entries, problems = await ledger.verify_database(request.app[T.pool_key])
    chain_head = ledger.head(entries)
    headers = {"X-Ledger-Head": chain_head, "X-Ledger-Rows": str(len(entries)),
               "Cache-Control": "no-store"}
    if W.wants_json(request):
        return web.json_response({"rows": len(entries), "head": chain_head,
                                  "problems": problems, "entries": entries},
                                 headers=headers, dumps=W.json_dumps)
    headers["Content-Disposition"] = 'attachment; filename="approval-ledger.txt"'
    return web.Response(text=ledger.render(entries), content_type="text/plain",
                        charset="utf-8", headers=headers)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(QUEUE, queue_page, name="review_signins")
    r.add_post(QUEUE + "/{request_id}/approve", review_approve, name="review_signin_approve")
    r.add_post(QUEUE + "/{request_id}/deny", review_deny, name="review_signin_deny")
    r.add_get("/admin/approvals/ledger.txt", ledger_download, name="admin_approvals_ledger")
