"""The live stream of direct messages (server-sent events on a GET): a new message reaches
the other member's open conversation and is read on arrival, the unread count follows,
a stream ends when its session is revoked (nothing more is sent to it), and an open
stream does not hold up the server's shutdown."""

from __future__ import annotations

import asyncio
import json
import time

from node.messages import live

TIMEOUT = 15.0


def notifier_of(member) -> live.Notifier:
    return live.notifier(member.client.server.app)


async def next_event(resp, wanted: tuple[str, ...] = ()) -> tuple[str, dict]:
    """The next event (of one of ``wanted`` kinds), or fail after TIMEOUT."""
    event, data = None, None
    while True:
        line = await asyncio.wait_for(resp.content.readline(), TIMEOUT)
        assert line, "the stream ended"
        text = line.decode().rstrip("\n")
        if text.startswith("event: "):
            event = text[len("event: "):]
        elif text.startswith("data: "):
            data = json.loads(text[len("data: "):])
        elif text == "" and event is not None:
            if not wanted or event in wanted:
                return event, data or {}
            event, data = None, None


async def test_a_message_arrives_in_the_open_conversation_and_is_read(member_factory, pool):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    r = await ann.api_post("/api/messages", {"to": "bob", "body": "first"})
    msg = (await r.json())["message"]
    tid = msg["conversation_id"]
    page = await (await bob.client.get(f"/messages/{tid}")).text()  # read: count 0
    assert 'data-after="' in page

    stream = await bob.client.get(f"/messages/events?conversation={tid}&after={msg['seq']}")
    assert stream.status == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    assert stream.headers["Cache-Control"] == "no-store"
    try:
        assert (await next_event(stream))[0] == "ready"
        assert await next_event(stream, ("unread", "message")) == ("unread", {"count": 0})
        r = await ann.api_post("/api/messages", {"to": "bob", "body": "live <b>one</b>"})
        assert r.status == 201
        kind, data = await next_event(stream, ("message",))
        assert data["body"] == "live <b>one</b>" and data["mine"] is False
        assert data["conversation_id"] == tid
        # read on arrival: the conversation is open
        assert await pool.fetchval("SELECT read_at FROM messages WHERE id = $1",
                                   data["id"]) is not None
        # bob's own reply comes back too (his other tabs), as his
        r = await bob.api_post(f"/messages/{tid}", {"body": "got it"})
        assert r.status == 201
        kind, data = await next_event(stream, ("message",))
        assert data["body"] == "got it" and data["mine"] is True
    finally:
        stream.close()


async def test_the_unread_count_follows_a_new_conversation(member_factory):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    stream = await bob.client.get("/messages/events")
    try:
        assert await next_event(stream, ("unread",)) == ("unread", {"count": 0})
        r = await ann.api_post("/api/messages", {"to": "bob", "body": "hello"})
        assert r.status == 201
        assert await next_event(stream, ("unread",)) == ("unread", {"count": 1})
        tid = (await r.json())["message"]["conversation_id"]
        await bob.client.get(f"/messages/{tid}")  # read in another tab
        assert await next_event(stream, ("unread",)) == ("unread", {"count": 0})
    finally:
        stream.close()


async def test_a_revoked_session_gets_nothing_more(member_factory, pool):
    ann = await member_factory("ann")
    bob = await member_factory("bob")
    r = await ann.api_post("/api/messages", {"to": "bob", "body": "before"})
    tid = (await r.json())["message"]["conversation_id"]
    stream = await bob.client.get(f"/messages/events?conversation={tid}")
    try:
        assert (await next_event(stream, ("message",)))[1]["body"] == "before"
        await pool.execute("UPDATE sessions SET revoked_at = now() WHERE user_id = $1",
                           bob.user_id)
        r = await ann.api_post("/api/messages", {"to": "bob", "body": "AFTER-REVOKE-77"})
        assert r.status == 201
        rest = await asyncio.wait_for(stream.content.read(), TIMEOUT)  # the stream ends
        assert b"event: closed" in rest and b"AFTER-REVOKE-77" not in rest
    finally:
        stream.close()
    assert await pool.fetchval("SELECT read_at FROM messages WHERE body = 'AFTER-REVOKE-77'") \
        is None


async def test_open_streams_do_not_hold_up_shutdown(member_factory, node_client):
    ann = await member_factory("ann")
    await member_factory("bob")
    streams = [await ann.client.get("/messages/events") for _ in range(3)]
    for s in streams:
        assert (await next_event(s))[0] == "ready"
    notifier = live.notifier(node_client.server.app)
    assert notifier.streams() == 3
    started = time.monotonic()
    await node_client.server.app.shutdown()  # what the runner does first on shutdown
    for s in streams:
        rest = await asyncio.wait_for(s.content.read(), TIMEOUT)
        assert b"event: message" not in rest
        s.close()
    assert time.monotonic() - started < TIMEOUT
    assert notifier.streams() == 0


async def test_one_member_cannot_hold_every_connection(member_factory):
    ann = await member_factory("ann")
    streams = []
    try:
        for _ in range(live.MAX_STREAMS_PER_MEMBER):
            s = await ann.client.get("/messages/events")
            assert (await next_event(s))[0] == "ready"
            streams.append(s)
        r = await ann.get_json("/messages/events")
        assert r.status == 429
        assert (await r.json())["error"]["code"] == "message_streams_limit"
        r = await ann.client.head("/messages/events")  # answered at once, holds nothing
        assert r.status == 200 and notifier_of(ann).streams() == live.MAX_STREAMS_PER_MEMBER
        # a tab closed: its place is free as soon as the server saw the connection go
        # (not at the stream's next poll)
        streams.pop().close()
        notifier = live.notifier(ann.client.server.app)
        deadline = time.monotonic() + TIMEOUT
        while notifier.open_for(ann.user_id) >= live.MAX_STREAMS_PER_MEMBER:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)  # until the server processed the disconnect
        s = await ann.client.get("/messages/events")
        assert s.status == 200 and (await next_event(s))[0] == "ready"
        streams.append(s)
    finally:
        for s in streams:
            s.close()
