"""Nothing private and no contact detail reaches the gateway.

A community where every field of every private entity carries a marker and every free
text field of every public entity carries a phone number, an e-mail address and a
street address; the admin drives every tool and a multi-turn chat through the
recording fake gateway, and everything the gateway received is searched.
"""

from __future__ import annotations

import json

import pytest

from node.copilot import egress as E
from node.copilot import service as S
from tests.factories import create_user
from tests.node.copilot.fake_gateway import answer, tool_calls
from tests.node.copilot.helpers import (
    add_comment,
    add_request,
    enable,
    gateway_settings,
)

MARK = "zqprivq"
PII = ("415-555-01", "4155550", "example.net", "Elm Street", "Oak Avenue", "Hauptstraße",
       "/register/")


@pytest.fixture
def copilot_overrides(gateway):
    # With a grace period the public records also pass through sync_preview's "waiting".
    return gateway_settings(gateway) | {"COPILOT_RATE_PER_MINUTE": "100",
                                        "WB_PUBLISH_DELAY": "120"}


async def _person(pool, username, *, scope, invited_by=None, admin=False, private=False):
    uid = await create_user(pool, username, scope=scope, invited_by=invited_by, admin=admin)
    if private:
        await pool.execute(
            "UPDATE users SET display_name = $2, bio = $3, contact_email = $4 WHERE id = $1",
            uid, f"{MARK} Name 415-555-0142", f"{MARK} bio at 3 Elm Street",
            f"{MARK}@example.net")
    else:
        await pool.execute(
            "UPDATE users SET display_name = $2, bio = $3, contact_email = $4 WHERE id = $1",
            uid, f"{username.title()} 415-555-0177 {username}@example.net",
            "find me at 9 Oak Avenue or Hauptstraße 5, (415) 555-0166",
            f"{username}@example.net")
    return uid


async def _world(pool):
    """Public and private members, requests and comments, PII everywhere."""
    u = {}
    u["admin"] = await _person(pool, "admin", scope="private", admin=True)
    u["pubann"] = await _person(pool, "pubann", scope="public", invited_by=u["admin"])
    u["privbo"] = await _person(pool, f"{MARK}bo", scope="private", invited_by=u["pubann"],
                                private=True)
    u["pubcy"] = await _person(pool, "pubcy", scope="public", invited_by=u["pubann"])
    u["privdi"] = await _person(pool, f"{MARK}di", scope="private", invited_by=u["admin"],
                                private=True)
    reqs = {}
    # Open requests: public (by a public and by a private member) and private.
    reqs["pub"] = await add_request(
        pool, u["pubann"], "Ladder call 415-555-0188 or pubann@example.net",
        "ladder to 9 Oak Avenue, phone (415) 555-0199", scope="public", age_days=2)
    reqs["pub_by_private"] = await add_request(
        pool, u["privbo"], "Ladder loan near 12 Elm Street pubann@example.net",
        f"{MARK} ladder 415-555-0111", scope="public", age_days=1)
    reqs["priv"] = await add_request(
        pool, u["privdi"], f"{MARK} ladder call 415-555-0123 or {MARK}@example.net",
        f"{MARK} insulin, please share this, 12 Elm Street", scope="private", age_days=3)
    reqs["priv_wish"] = await add_request(
        pool, u["privbo"], f"{MARK} ladder please share this", f"{MARK} ladder needed",
        scope="private")
    # Completed similar requests the helpers commented on (so they are suggested).
    done = await add_request(pool, u["pubann"], "Ladder borrowed", "ladder ladder",
                             status="completed", scope="public")
    for helper in ("privbo", "pubcy", "privdi"):
        await add_comment(pool, done, u[helper],
                          f"{MARK} I have a ladder, call 415-555-0155" if helper.startswith(
                              "priv") else "Ladder here, 415-555-0156, pubcy@example.net")
    await pool.execute("UPDATE comments SET sync_scope = 'public' WHERE created_by = $1",
                       u["pubcy"])
    await add_comment(pool, reqs["priv"], u["privbo"], f"{MARK} on my way 415-555-0157")
    return u, reqs


def _leaks(gateway) -> list[str]:
    sent = json.dumps([c["body"] for c in gateway.calls], ensure_ascii=False)
    return [p for p in (MARK, *PII) if p.lower() in sent.lower()]


async def _chat(client, csrf, text):
    r = await client.post("/admin/copilot", data={"message": text, "csrf_token": csrf},
                          allow_redirects=False)
    assert r.status == 303, await r.text()


async def test_every_tool_and_a_multi_turn_chat_leak_nothing(copilot_client, gateway):
    from node import typedefs as T
    from tests.factories import sign_in

    pool = copilot_client.server.app[T.pool_key]
    u, reqs = await _world(pool)
    await enable(pool, u["admin"])
    csrf = await sign_in(copilot_client, u["admin"])

    all_tools = [("triage_requests", {"limit": 50, "helpers": 10}),
                 ("suggest_scope_changes", {}),
                 ("sync_preview", {}), ("sync_preview", {"snapshot": True}),
                 ("set_scope", {"kind": "request", "id": reqs["priv"], "scope": "public"}),
                 ("create_invite", {"max_uses": 2, "gratitude": "thanks 415-555-0100"}),
                 ("set_scope", {"kind": "request", "id": "no-such-id", "scope": "private"})]
    gateway.script = [tool_calls(*all_tools[:4]), tool_calls(*all_tools[4:]),
                      answer("Three ladder requests; one asks to be shared.")]
    await _chat(copilot_client, csrf,
                "Triage please; I am boss@example.net, 415-555-0190, 12 Elm Street")
    assert len(gateway.calls) == 3
    # The tools really ran and saw the private data (the gate is what stopped it).
    tool_msgs = [json.loads(m["content"]) for m in gateway.calls[2]["body"]["messages"]
                 if m["role"] == "tool"]
    triage = tool_msgs[0]
    ids = [r["id"] for r in triage["requests"]]
    assert reqs["priv"] in ids and reqs["pub"] in ids
    priv = next(r for r in triage["requests"] if r["id"] == reqs["priv"])
    assert "title" not in priv and priv["sync_scope"] == "private" and priv["comments"] == 1
    assert priv["requester"] == {"ref": f"member:{u['privdi']}", "private": True}
    pub = next(r for r in triage["requests"] if r["id"] == reqs["pub"])
    assert pub["title"].startswith("Ladder call [phone] or [email]")
    assert pub["requester"]["username"] == "pubann"
    assert "[phone]" in pub["requester"]["display_name"]
    helpers = {h.get("username") or h.get("ref") for r in triage["requests"]
               for h in r["suggested_helpers"]}
    assert "pubcy" in helpers and f"member:{u['privbo']}" in helpers
    scope = tool_msgs[1]
    assert {s["id"] for s in scope["suggestions"]} >= {reqs["pub"], reqs["priv_wish"]}
    assert tool_msgs[2]["safe"] is False and tool_msgs[3]["kind"] == "snapshot"
    assert reqs["pub"] in {w["id"] for w in tool_msgs[2]["waiting"]}
    assert all("[phone]" in w["title"] for w in tool_msgs[2]["waiting"]
               if w["id"] == reqs["pub"])
    assert tool_msgs[4]["status"] == "proposed" and tool_msgs[5]["status"] == "proposed"

    # Second and third turns: the stored history goes out again.
    gateway.script = [tool_calls(("triage_requests", {})), answer("Still three.")]
    await _chat(copilot_client, csrf, "And now? call me at pubann@example.net")
    # Confirming the proposals (the invite link is shown to the admin only).
    for pid in await pool.fetch("SELECT id FROM copilot_proposals ORDER BY created_at"):
        r = await copilot_client.post(f"/admin/copilot/proposals/{pid['id']}/confirm",
                                      data={"csrf_token": csrf})
        assert r.status in (200, 404)  # the set_scope of "no-such-id" fails: 404
    gateway.script = [answer("Done.")]
    await _chat(copilot_client, csrf, "Thanks")
    assert len(gateway.calls) == 6
    assert any(m["role"] == "assistant" and "Still three" in (m["content"] or "")
               for m in gateway.calls[-1]["body"]["messages"])
    assert _leaks(gateway) == []


async def test_streamed_chat_leaks_nothing_either(copilot_client, gateway):
    from node import typedefs as T
    from tests.factories import sign_in

    pool = copilot_client.server.app[T.pool_key]
    u, reqs = await _world(pool)
    await enable(pool, u["admin"])
    csrf = await sign_in(copilot_client, u["admin"])
    gateway.script = [tool_calls(("triage_requests", {}), ("suggest_scope_changes", {}),
                                 ("sync_preview", {})), answer("ok")]
    r = await copilot_client.post("/admin/copilot/stream",
                                  data={"message": "triage 415-555-0190", "csrf_token": csrf})
    assert "event: done" in await r.text()
    assert len(gateway.calls) == 2 and _leaks(gateway) == []


async def test_share_private_sends_scrubbed_titles_and_is_audited(
        aiohttp_client, node_db_url, tmp_path, gateway):
    from node import typedefs as T
    from node.app import create_app
    from tests.conftest import make_node_config
    from tests.factories import sign_in

    config = make_node_config(node_db_url, tmp_path / "node", ENABLE_COPILOT="true",
                              COPILOT_SHARE_PRIVATE="true", **gateway_settings(gateway))
    client = await aiohttp_client(create_app(config))
    pool = client.server.app[T.pool_key]
    u, reqs = await _world(pool)
    await enable(pool, u["admin"])
    csrf = await sign_in(client, u["admin"])
    page = await (await client.get("/admin/dedalus")).text()
    assert 'id="share-private-warning"' in page
    gateway.script = [tool_calls(("triage_requests", {})), answer("ok")]
    await _chat(client, csrf, "triage")
    tool = next(json.loads(m["content"]) for m in gateway.calls[1]["body"]["messages"]
                if m["role"] == "tool")
    priv = next(r for r in tool["requests"] if r["id"] == reqs["priv"])
    assert priv["title"] == f"{MARK} ladder call [phone] or [email]"
    # Titles only: descriptions, bodies, private members' names and PII stay home.
    assert _leaks(gateway) == [MARK]
    sent = json.dumps([c["body"] for c in gateway.calls])
    assert "insulin" not in sent and f"{MARK}bo" not in sent and f"{MARK} Name" not in sent
    row = await pool.fetchrow("SELECT arguments, result_summary FROM copilot_audit "
                              "WHERE tool = 'chat'")
    assert json.loads(row["arguments"])["share_private"] is True
    assert "private titles shared" in row["result_summary"]


def test_every_tool_has_a_gate():
    assert set(E.RESULT_GATES) == set(S.TOOLS)
    assert E.tool_result("some_new_tool", {"secret": MARK}, share_private=True) == {"ok": True}


def test_gate_drops_fields_it_does_not_name():
    result = {"requests": [{"id": "r1", "sync_scope": "public", "title": "t", "age_hours": 1,
                            "comments": 0, "helpers": 0, "reasons": [], "created_at": "x",
                            "secret_new_field": MARK, "suggested_helpers": [
                                {"user_id": "u1", "sync_scope": "private", "username": MARK,
                                 "display_name": MARK, "invite_hops": 1,
                                 "similar_requests": 1, "completed_similar": 0, "score": 1}]}],
              "count": 1}
    out = E.tool_result("triage_requests", result, share_private=False)
    assert MARK not in json.dumps(out)
    link = E.tool_result("create_invite", {"invite_id": "i", "link": "http://x/register/abc",
                                           "max_uses": 1, "expires_at": None,
                                           "auto_approve": False}, share_private=True)
    assert "link" not in link and "register" not in json.dumps(link)


def test_outgoing_scrubs_every_message_once_more():
    msgs = [{"role": "system", "content": "call 415-555-0123"},
            {"role": "tool", "tool_call_id": "c", "content": json.dumps({"t": "a@b.net"})},
            {"role": "tool", "tool_call_id": "d", "content": "not json 12 Elm Street"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c", "function": {"name": "x", "arguments": "{\"q\": \"a@b.net\"}"}}]}]
    out = json.dumps(E.outgoing(msgs))
    assert "555" not in out and "a@b.net" not in out and "Elm" not in out
