"""The streaming chat (POST /admin/copilot/stream) against the fake streaming gateway."""

from __future__ import annotations

import asyncio
import json

import pytest

from node import typedefs as T
from tests.factories import create_user, sign_in
from tests.node.copilot.fake_gateway import (
    CUT,
    END,
    GATE,
    JsonAnyway,
    Stream,
    answer,
    delta,
    tool_calls,
)
from tests.node.copilot.helpers import (
    add_request,
    enable,
    gateway_settings,
    signed_in_admin,
)


@pytest.fixture
def copilot_overrides(gateway):
    return gateway_settings(gateway)


async def _open(client, csrf, text):
    return await client.post("/admin/copilot/stream", data={"message": text},
                             headers={"X-CSRF-Token": csrf,
                                      "Accept": "text/event-stream, application/json"})


class Events:
    """Reads server-sent events off a response one at a time."""

    def __init__(self, resp) -> None:
        self.resp = resp

    async def next(self) -> tuple[str, dict] | None:
        event, data = "message", ""
        while True:
            line = await self.resp.content.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line == "":
                if data:
                    return event, json.loads(data)
                continue
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data += line[6:]

    async def rest(self) -> list[tuple[str, dict]]:
        out = []
        while (ev := await self.next()) is not None:
            out.append(ev)
        return out


async def _all(resp) -> list[tuple[str, dict]]:
    assert resp.status == 200, await resp.text()
    assert resp.content_type == "text/event-stream"
    return await Events(resp).rest()


async def test_text_arrives_in_several_chunks_before_the_gateway_finishes(
        copilot_client, gateway):
    pool, u, csrf = await signed_in_admin(copilot_client)
    gateway.script = [Stream([delta(role="assistant", content=""), delta(content="Bob "),
                              delta(content="needs "), GATE, delta(content="a ladder.")])]
    r = await _open(copilot_client, csrf, "who needs help? mail me at boss@example.org")
    assert r.status == 200 and r.content_type == "text/event-stream"
    events = Events(r)
    assert await events.next() == ("start", {})
    # Two deltas reach us while the gateway is still holding back the rest.
    assert await events.next() == ("delta", {"text": "Bob "})
    assert await events.next() == ("delta", {"text": "needs "})
    assert not gateway.gate.is_set()
    assert await pool.fetchval("SELECT count(*) FROM copilot_messages") == 0
    gateway.gate.set()
    rest = await events.rest()
    assert rest[0] == ("delta", {"text": "a ladder."})
    kind, done = rest[-1]
    assert kind == "done" and done["answer"] == "Bob needs a ladder."
    assert len(rest) == 2

    body = gateway.calls[0]["body"]
    assert body["stream"] is True and body["model"] == "test-model"
    assert "example.org" not in body["messages"][-1]["content"]
    rows = await pool.fetch("SELECT id, role, content FROM copilot_messages ORDER BY id")
    assert [(m["role"], m["content"]) for m in rows] == [
        ("user", "who needs help? mail me at [email]"), ("assistant", "Bob needs a ladder.")]
    assert rows[1]["id"] == done["message_id"]
    audit = await pool.fetchrow("SELECT * FROM copilot_audit")
    assert (audit["tool"], audit["success"], audit["response"]) == (
        "chat", True, "Bob needs a ladder.")

    # Feedback on the streamed answer works exactly as on a posted one.
    r = await copilot_client.post(f"/admin/copilot/feedback/{done['message_id']}",
                                  data={"value": "up"},
                                  headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
    assert r.status == 200 and (await r.json())["feedback"] == 1
    assert await pool.fetchval("SELECT feedback FROM copilot_audit WHERE tool='chat'") == 1
    page = await (await copilot_client.get("/admin/copilot")).text()
    assert "Bob needs a ladder." in page and 'src="/static/copilot.js"' in page


async def test_tool_calls_mid_stream_run_propose_and_refuse_like_the_form(
        copilot_client, gateway):
    pool, u, csrf = await signed_in_admin(copilot_client)
    rid = await add_request(pool, u["bob"], "Ladder", "roof", age_days=3)
    set_args = json.dumps({"kind": "request", "id": rid, "scope": "public"})
    first_round = [
        delta(role="assistant", content="Let me look. "),
        delta(tool_calls=[{"index": 0, "id": "call_a", "type": "function",
                           "function": {"name": "triage_", "arguments": ""}}]),
        delta(tool_calls=[{"index": 0, "function": {"name": "requests",
                                                    "arguments": '{"lim'}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": 'it": 5}'}}]),
        delta(tool_calls=[{"index": 1, "id": "call_b", "type": "function",
                           "function": {"name": "set_scope", "arguments": set_args[:9]}}]),
        delta(tool_calls=[{"index": 1, "function": {"arguments": set_args[9:]}}]),
        delta(tool_calls=[{"index": 2, "id": "call_c", "type": "function",
                           "function": {"name": "delete_all_members", "arguments": "{}"}}]),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"total_tokens": 12}},
    ]
    gateway.script = [Stream(first_round), answer("Bob's ladder waits longest; I proposed "
                                                  "making it public.")]
    events = await _all(await _open(copilot_client, csrf, "who needs help?"))
    kinds = [k for k, _ in events]
    assert kinds[0] == "start" and kinds[1] == "delta" and kinds[-1] == "done"
    tools = [d for k, d in events if k == "tool"]
    assert tools == [{"name": "triage_requests", "status": "ran"},
                     {"name": "set_scope", "status": "proposed"},
                     {"name": "delete_all_members", "status": "refused",
                      "code": "tool_not_allowed"}]
    (proposal,) = [d for k, d in events if k == "proposal"]
    assert proposal["tool"] == "set_scope" and proposal["arguments"]["id"] == rid
    # the tool events come before the final answer's text
    assert kinds.index("proposal") < len(kinds) - 1 - kinds[::-1].index("delta")
    final_text = "".join(d["text"] for k, d in events[kinds.index("proposal"):]
                         if k == "delta")
    assert final_text == "Bob's ladder waits longest; I proposed making it public."
    assert events[-1][1]["answer"] == final_text

    # The model got back the reassembled calls and the tools' results.
    second = gateway.calls[1]["body"]["messages"]
    sent_calls = [m for m in second if m["role"] == "assistant"][-1]["tool_calls"]
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in sent_calls] == [
        ("call_a", "triage_requests", {"limit": 5}),
        ("call_b", "set_scope", json.loads(set_args)),
        ("call_c", "delete_all_members", {})]
    results = {m["tool_call_id"]: json.loads(m["content"]) for m in second
               if m["role"] == "tool"}
    assert results["call_a"]["requests"][0]["id"] == rid
    assert results["call_b"] == {"status": "proposed", "proposal_id": proposal["id"],
                                 "message": results["call_b"]["message"]}
    assert results["call_c"]["error"] == "tool_not_allowed"

    # Same audit trail as the form path, and nothing changed until the admin confirms.
    audit = await pool.fetch("SELECT tool, success, error_code FROM copilot_audit ORDER BY id")
    assert [tuple(a) for a in audit] == [
        ("triage_requests", True, None), ("set_scope", True, "proposed"),
        ("delete_all_members", False, "tool_not_allowed"), ("chat", True, None)]
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1", rid) == "private"
    r = await copilot_client.post(f"/admin/copilot/proposals/{proposal['id']}/confirm",
                                  data={"csrf_token": csrf})
    assert r.status == 200 and "Confirmed set_scope" in await r.text()
    assert await pool.fetchval("SELECT sync_scope FROM requests WHERE id=$1", rid) == "public"


@pytest.mark.parametrize("step,code,partial", [
    (Stream([delta(content="Hal"), {"error": {"message": "overloaded"}}]), "gateway_error",
     True),
    (Stream([delta(content="Hal"), CUT]), "gateway_stream_broken", True),
    (Stream([delta(content="Hal"), END]), "gateway_malformed", True),
    (Stream([delta(content="Hal"), "{not json"]), "gateway_malformed", True),
    (Stream([delta(content=7)]), "gateway_malformed", False),
    (Stream([delta(tool_calls=[{"index": 0, "function": {"arguments": "{}"}}])]),
     "gateway_malformed", False),
    (500, "gateway_error", False),
    (401, "gateway_key_rejected", False),
    ("hang", "gateway_timeout", False),
], ids=["error-chunk", "cut", "no-done", "bad-json", "bad-content", "nameless-call",
        "http-500", "http-401", "timeout"])
async def test_gateway_failure_mid_stream_is_one_clean_error_event_and_audited(
        copilot_client, gateway, step, code, partial):
    pool, u, csrf = await signed_in_admin(copilot_client)
    copilot_client.server.app[T.extras_key]["copilot_timeout"] = 0.5
    gateway.script = [step]
    events = await _all(await _open(copilot_client, csrf, "hi"))
    assert events[0] == ("start", {})
    assert (("delta", {"text": "Hal"}) in events) is partial
    kind, error = events[-1]
    assert kind == "error" and error["code"] == code and error["message"]
    assert [k for k, _ in events].count("error") == 1
    assert "done" not in [k for k, _ in events]
    assert await pool.fetchval("SELECT count(*) FROM copilot_messages") == 0
    row = await pool.fetchrow("SELECT * FROM copilot_audit")
    assert (row["tool"], row["success"], row["error_code"]) == ("chat", False, code)
    assert row["prompt"] == "hi"


async def test_gateway_that_ignores_stream_still_answers(copilot_client, gateway):
    pool, u, csrf = await signed_in_admin(copilot_client)
    gateway.script = [JsonAnyway(tool_calls(("sync_preview", {}))),
                      JsonAnyway(answer("Nothing to publish yet."))]
    events = await _all(await _open(copilot_client, csrf, "sync?"))
    assert [k for k, _ in events] == ["start", "tool", "delta", "done"]
    assert events[1][1] == {"name": "sync_preview", "status": "ran"}
    assert events[2][1] == {"text": "Nothing to publish yet."}


async def test_streamed_turns_carry_the_conversation(copilot_client, gateway):
    pool, u, csrf = await signed_in_admin(copilot_client)
    gateway.script = [answer("First."), answer("Second.")]
    await _all(await _open(copilot_client, csrf, "one"))
    # a plain form post continues the same conversation
    r = await copilot_client.post("/admin/copilot", data={"message": "two", "csrf_token": csrf},
                                  allow_redirects=False)
    assert r.status == 303
    assert [(m["role"], m["content"]) for m in gateway.calls[1]["body"]["messages"][1:]] == [
        ("user", "one"), ("assistant", "First."), ("user", "two")]
    assert "stream" not in gateway.calls[1]["body"]


async def test_refusals_before_the_stream_match_the_form_path(copilot_client, gateway):
    pool, u, csrf = await signed_in_admin(copilot_client)
    json_accept = {"Accept": "text/event-stream, application/json"}

    async def both(data, headers):
        out = []
        for path in ("/admin/copilot", "/admin/copilot/stream"):
            r = await copilot_client.post(path, data=data, headers={**json_accept, **headers})
            out.append((r.status, (await r.json())["error"]["code"]))
        assert out[0] == out[1], out
        return out[1]

    # CSRF required
    assert await both({"message": "hi"}, {}) == (403, "csrf_failed")
    assert await both({"message": "hi"}, {"X-CSRF-Token": "forged"}) == (403, "csrf_failed")
    # empty message
    assert await both({"message": "  "}, {"X-CSRF-Token": csrf}) == (400, "empty_message")
    # switched off by an admin
    assert (await copilot_client.post("/admin/dedalus/disable",
                                      data={"csrf_token": csrf})).status == 200
    assert await both({"message": "hi"}, {"X-CSRF-Token": csrf}) == (403, "copilot_disabled")
    assert gateway.calls == []
    assert await pool.fetchval("SELECT count(*) FROM copilot_audit WHERE tool='chat'") == 0
    await enable(pool, u["admin"])
    # rate limit (5 a minute): shared between the form post and the stream
    gateway.script = [answer("ok")] * 5
    for i in range(5):
        if i % 2:
            await _all(await _open(copilot_client, csrf, "again"))
        else:
            r = await copilot_client.post("/admin/copilot", allow_redirects=False,
                                          data={"message": "again", "csrf_token": csrf})
            assert r.status == 303
    r = await _open(copilot_client, csrf, "again")
    assert r.status == 429 and (await r.json())["error"]["code"] == "rate_limited"
    assert len(gateway.calls) == 5


async def test_members_and_nodes_without_copilot_get_the_same_codes(
        copilot_client, node_client):
    pool = copilot_client.server.app[T.pool_key]
    member = await create_user(pool, "mem")
    await enable(pool)
    csrf = await sign_in(copilot_client, member)
    r = await copilot_client.post("/admin/copilot/stream", data={"message": "hi"},
                                  headers={"X-CSRF-Token": csrf,
                                           "Accept": "application/json"})
    assert r.status == 403 and (await r.json())["error"]["code"] == "admin_only"

    other = node_client.server.app[T.pool_key]
    admin = await create_user(other, "root", admin=True)
    await enable(other, admin)
    csrf = await sign_in(node_client, admin)
    for path in ("/admin/copilot", "/admin/copilot/stream"):
        r = await node_client.post(path, data={"message": "hi"},
                                   headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
        assert r.status == 404, path
        assert (await r.json())["error"]["code"] == "copilot_unavailable"


async def test_a_browser_leaving_mid_answer_does_not_lose_the_turn(copilot_client, gateway):
    """The test server cancels a handler whose client went away; the turn still ends."""
    pool, u, csrf = await signed_in_admin(copilot_client)
    gateway.script = [Stream([delta(content="Half "), GATE, delta(content="and the rest.")])]
    r = await _open(copilot_client, csrf, "hello")
    events = Events(r)
    assert await events.next() == ("start", {})
    assert await events.next() == ("delta", {"text": "Half "})
    (turn,) = copilot_client.server.app[T.extras_key]["copilot_turns"]
    r.close()  # the admin navigated away
    gateway.gate.set()
    await asyncio.wait_for(turn, 10)
    assert await pool.fetchval("SELECT content FROM copilot_messages WHERE role='assistant'") \
        == "Half and the rest."
    assert await pool.fetchval("SELECT success FROM copilot_audit WHERE tool='chat'") is True
