"""Half a UTF-16 pair ("\\ud800") is valid JSON that UTF-8 cannot hold: every JSON route
reads bodies through node.web.read_json_object and answers 400 invalid_json, never a 500
(the skin choice and the publication review note read JSON by hand before)."""

from __future__ import annotations

import json

from tests.factories import create_user, sign_in

BODY_SKIN = json.dumps({"skin": "dark\ud800"}).encode()
BODY_NOTE = json.dumps({"note": "ok \ud800"}).encode()


async def _post(client, path, body, csrf):
    return await client.post(path, data=body, headers={
        "Content-Type": "application/json", "Accept": "application/json",
        "X-CSRF-Token": csrf})


async def test_skin_choice_refuses_a_lone_surrogate(node_client, node_pool):
    ann = await create_user(node_pool, "ann")
    csrf = await sign_in(node_client, ann)
    r = await _post(node_client, "/settings/skin", BODY_SKIN, csrf)
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"
    assert await node_pool.fetchval("SELECT count(*) FROM member_skins") == 0


async def test_publication_note_refuses_a_lone_surrogate(node_client, node_pool):
    admin = await create_user(node_pool, "root", admin=True)
    csrf = await sign_in(node_client, admin)
    r = await _post(node_client, "/sync/review/01J0000000000000000000000/approve",
                    BODY_NOTE, csrf)
    assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"
