"""#23: the new entities (a pin's note, a draft, a request promoted from a private comment)
never reach the copilot's model: every read-only tool runs over a community that holds
them, and what its result gate lets out is searched for their markers."""

from __future__ import annotations

import json

from node import typedefs as T
from node.copilot import egress as E
from node.copilot import service as S
from node.drafts import service as drafts
from node.pins import service as pins
from node.promotions import service as promotions
from node.requests.service import Actor
from tests.factories import create_user
from tests.node.copilot.helpers import add_comment, add_request, ctx_of, enable

MARK = "cfprivmark"


async def test_pins_drafts_and_promotions_stay_out_of_every_tool(copilot_client):
    app = copilot_client.server.app
    pool = app[T.pool_key]
    admin = await create_user(pool, "admin", admin=True)
    ann = await create_user(pool, "ann", scope="public", invited_by=admin)
    await enable(pool, admin)
    rid = await add_request(pool, ann, "Ladder wanted", "for the roof", scope="public",
                            age_days=2)
    await pins.pin(pool, Actor(admin, True, True), rid, limit=3, note=f"{MARK} pin")
    await drafts.save(pool, Actor(ann, False, True),
                      {"title": f"{MARK} draft", "description": f"{MARK} draft body",
                       "sync_scope": "public"})
    cid = await add_comment(pool, rid, ann, f"{MARK} promoted comment")
    promoted = await promotions.promote(pool, Actor(ann, False, True), cid,
                                        title=f"{MARK} promoted title")
    assert promoted["sync_scope"] == "private"

    ctx = ctx_of(app, admin)
    seen = []
    for name, args in (("triage_requests", {"limit": 50}), ("suggest_scope_changes", {}),
                       ("sync_preview", {}), ("sync_preview", {"snapshot": True})):
        raw = await S.run_tool(ctx, name, args, rate_limited=False)
        seen.append(json.dumps(raw, default=str))  # the tools ran over this community
        gated = E.tool_result(name, raw, share_private=False)
        assert MARK not in json.dumps(gated, default=str), name
    # the public request is there; the pin's note and the draft are not even read
    assert rid in seen[0] and promoted["id"] in seen[0]
    assert f"{MARK} promoted title" in seen[0]  # the gate is what keeps it in
    assert f"{MARK} pin" not in "".join(seen) and f"{MARK} draft" not in "".join(seen)
