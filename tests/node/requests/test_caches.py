"""The node's in-process caches (#24): whatever they hold, a write anywhere shows on the
next page (this process at once; another process once its NOTIFY arrives), one member's
view never reaches another, nothing is cached while the listener is down, and every
cache stays within WB_CACHE_ENTRIES.

Writes "from another process" go through a separate asyncpg connection, which has no
query logger: only migration 0290's trigger can tell the app about them.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from node import caches
from node import typedefs as T
from service.ids import ulid
from service.tablecache import StampedCache, TableWatch, written_tables
from tests.conftest import make_node_config


@pytest.fixture
async def outside(node_db_url):
    """A connection of another process (a CLI command, a job, psql)."""
    conn = await asyncpg.connect(node_db_url)
    yield conn
    await conn.close()


def _watch(node_client) -> TableWatch:
    return node_client.server.app[T.table_watch_key]


async def _until(predicate, within: float = 10.0) -> None:
    """Wait for an event that arrives asynchronously (a notification), polling."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "the condition never became true"
        await asyncio.sleep(0.01)


async def _notified(node_client, conn, sql: str, *args, table: str) -> None:
    """Run ``sql`` on ``conn`` and wait until the app has heard of ``table`` changing."""
    watch = _watch(node_client)
    before = watch.stamp((table,))
    assert before is not None, "the listener is not connected"
    await conn.execute(sql, *args)
    await _until(lambda: watch.stamp((table,)) != before)


async def _request(pool_or_conn, owner: str, title: str, *, status: str = "open",
                   contact: str | None = None) -> str:
    rid = ulid()
    await pool_or_conn.execute(
        "INSERT INTO requests (id, title, description, created_by, status, contact_email) "
        "VALUES ($1, $2, 'body', $3, $4, $5)", rid, title, owner, status, contact)
    return rid


async def _page(member, path: str = "/") -> str:
    r = await member.client.get(path, allow_redirects=False)
    return f"{r.status} {r.headers.get('Location', '')}\n{await r.text()}"


async def _api(member, path: str = "/api/requests") -> dict:
    r = await member.client.get(path)
    assert r.status == 200, await r.text()
    return await r.json()


# --------------------------------------------------------------------------- sessions

async def test_a_session_revoked_by_another_process_ends_on_the_next_page(
        member_factory, node_client, outside):
    mel = await member_factory("mel")
    assert (await _page(mel)).startswith("200")
    assert "Mel" in await _page(mel)  # cached now
    await _notified(node_client, outside,
                    "UPDATE sessions SET revoked_at = now() WHERE user_id = $1",
                    mel.user_id, table="sessions")
    r = await mel.client.get("/api/requests")
    assert r.status == 401
    assert "Mel" not in await _page(mel)


async def test_a_member_disabled_or_demoted_elsewhere_loses_access_at_once(
        member_factory, node_client, pool, outside):
    ada = await member_factory("ada", admin=True)
    assert (await ada.client.get("/admin")).status == 200
    # this process's own pool: no waiting at all (the query logger)
    await pool.execute("UPDATE users SET is_admin = false WHERE id = $1", ada.user_id)
    r = await ada.client.get("/admin", headers={"Accept": "application/json"})
    assert r.status == 403
    await _notified(node_client, outside, "UPDATE users SET disabled = true WHERE id = $1",
                    ada.user_id, table="users")
    r = await ada.client.get("/api/requests")
    assert r.status == 401


async def test_the_last_seen_touch_does_not_empty_the_session_cache(member_factory,
                                                                    node_client, pool):
    mel = await member_factory("mel")
    await pool.execute("UPDATE sessions SET last_seen_at = now() - interval '2 minutes'")
    assert (await mel.client.get("/api/requests")).status == 200  # cached, touched
    seen = await pool.fetchval("SELECT now() - last_seen_at FROM sessions WHERE user_id = $1",
                               mel.user_id)
    assert seen.total_seconds() < 30
    stamp = _watch(node_client).stamp(caches.TABLES["viewer"])
    assert (await mel.client.get("/api/requests")).status == 200
    assert _watch(node_client).stamp(caches.TABLES["viewer"]) == stamp


async def test_a_session_that_expires_is_not_served_from_the_cache(member_factory, pool):
    mel = await member_factory("mel")
    await pool.execute("UPDATE sessions SET expires_at = now() + interval '1 second' "
                       "WHERE user_id = $1", mel.user_id)
    assert (await mel.client.get("/api/requests")).status == 200
    expires = await pool.fetchval("SELECT expires_at - now() FROM sessions")
    await asyncio.sleep(expires.total_seconds() + 0.05)  # the clock is the subject here
    assert (await mel.client.get("/api/requests")).status == 401


# --------------------------------------------------------------------------- the feed

async def test_a_request_written_elsewhere_shows_on_the_next_page_and_api(
        member_factory, node_client, outside):
    mel = await member_factory("mel")
    assert "Boxes" not in await _page(mel)
    assert (await _api(mel))["requests"] == []
    await _notified(node_client, outside,
                    "INSERT INTO requests (id, title, description, created_by) "
                    "VALUES ($1, 'Boxes', 'body', $2)", ulid(), mel.user_id, table="requests")
    assert "Boxes" in await _page(mel)
    assert [r["title"] for r in (await _api(mel))["requests"]] == ["Boxes"]


async def test_writes_through_the_app_show_at_once(member_factory, pool):
    mel = await member_factory("mel")
    sam = await member_factory("sam")
    rid = await _request(pool, sam.user_id, "Ladder")
    assert "0 comments" in await _page(mel)
    r = await sam.post(f"/requests/{rid}/comments", {"body": "on my way"})
    assert r.status == 303
    assert "1 comment" in await _page(mel)
    assert (await _api(mel))["requests"][0]["comment_count"] == 1
    r = await sam.post(f"/requests/{rid}/complete")
    assert r.status == 303
    assert "Ladder" not in await _page(mel)
    assert (await _api(mel))["requests"] == []
    assert "Ladder" in await _page(mel, "/?status=completed")


async def test_pins_and_tags_written_elsewhere_show(member_factory, node_client, pool,
                                                   outside):
    ada = await member_factory("ada", admin=True)
    mel = await member_factory("mel")
    rid = await _request(pool, mel.user_id, "Firewood")
    page = await _page(mel)
    assert "Pinned" not in page and "Any tag" not in page
    await _notified(node_client, outside,
                    "INSERT INTO request_pins (request_id, position, pinned_by) "
                    "VALUES ($1, 1, $2)", rid, ada.user_id, table="request_pins")
    assert 'id="pinned-' in await _page(mel)
    await _notified(node_client, outside,
                    "INSERT INTO community_tags (name, colour, text_colour) "
                    "VALUES ('garden', '#00ff00', '#000000')", table="community_tags")
    assert '<option value="garden"' in await _page(mel)


async def test_a_pin_that_ends_drops_out_without_a_write(member_factory, pool):
    ada = await member_factory("ada", admin=True)
    mel = await member_factory("mel")
    rid = await _request(pool, mel.user_id, "Firewood")
    await pool.execute("INSERT INTO request_pins (request_id, position, pinned_by, ends_at) "
                       "VALUES ($1, 1, $2, now() + interval '1 second')", rid, ada.user_id)
    assert 'id="pinned-' in await _page(mel)
    ends = await pool.fetchval("SELECT ends_at - now() FROM request_pins")
    await asyncio.sleep(ends.total_seconds() + 0.05)  # the clock is the subject here
    assert 'id="pinned-' not in await _page(mel, "/?status=open")
    assert 'id="pinned-' not in await _page(mel)


# --------------------------------------------------------------------------- privacy

async def test_one_members_view_never_reaches_another(member_factory, pool):
    ada = await member_factory("ada", admin=True)
    mel = await member_factory("mel")
    sam = await member_factory("sam")
    await _request(pool, mel.user_id, "Mel's open", contact="mel@example.org")
    await _request(pool, mel.user_id, "Mel's pending", status="pending",
                   contact="pending@example.org")

    # each one first, in an order that would leak if keys were shared
    for member in (mel, ada, sam, mel, sam):
        body = await _api(member)
        (item,) = body["requests"]
        own_or_admin = member in (mel, ada)
        assert ("contact_email" in item) is own_or_admin, member.user_id
        assert item["can_complete"] is own_or_admin
        everything = await _api(member, "/api/requests?status=all")
        titles = {r["title"] for r in everything["requests"]}
        assert ("Mel's pending" in titles) is own_or_admin
        page = await _page(member)
        name = {mel: "Mel", ada: "Ada", sam: "Sam"}[member]
        assert f'<a href="/profile">{name}</a>' in page
        assert page.count('<a href="/profile">') == 1
        assert "mel@example.org" not in page
        all_page = await _page(member, "/?status=all")
        assert ("Mel&#39;s pending" in all_page or "Mel's pending" in all_page) \
            is own_or_admin


async def test_the_start_page_is_per_session(member_factory, node_client):
    mel = await member_factory("mel")
    sam = await member_factory("sam")
    mine = await _page(mel)
    theirs = await _page(sam)
    assert '<a href="/profile">Sam</a>' in theirs and "Sam" not in mine
    token = mel.csrf
    assert token in mine and token not in theirs
    assert sam.csrf in await _page(sam)  # from the cache now
    assert token not in await _page(sam)


# --------------------------------------------------------------------------- plumbing

async def test_nothing_is_cached_while_the_listener_is_down(member_factory, node_client,
                                                           pool, outside):
    mel = await member_factory("mel")
    watch = _watch(node_client)
    assert watch.live
    await _page(mel)
    pid = await pool.fetchval(
        "SELECT pid FROM pg_stat_activity WHERE query ILIKE 'LISTEN%' "
        "AND datname = current_database()")
    assert pid is not None
    await outside.execute("SELECT pg_terminate_backend($1)", pid)
    await _until(lambda: not watch.live)
    assert watch.stamp(("requests",)) is None
    # a write nobody is told about is still seen: nothing is served from a cache
    await outside.execute("ALTER TABLE requests DISABLE TRIGGER wb_table_changed")
    try:
        await _request(outside, mel.user_id, "Unannounced")
        assert "Unannounced" in await _page(mel)
    finally:
        await outside.execute("ALTER TABLE requests ENABLE TRIGGER wb_table_changed")
    await _until(lambda: watch.live)  # reconnects by itself
    assert watch.stamp(("requests",)) is not None


async def test_every_cache_is_bounded(aiohttp_client, node_db_url, tmp_path):
    from node.app import create_app
    from tests.factories import create_user, sign_in

    app = create_app(make_node_config(node_db_url, tmp_path / "n", WB_CACHE_ENTRIES="3"))
    client = await aiohttp_client(app)
    user = await create_user(app[T.pool_key], "mel")
    await sign_in(client, user)
    for n in range(10):
        assert (await client.get(f"/?q=x{n}")).status == 200
        assert (await client.get(f"/api/requests?q=x{n}")).status == 200
    for name, cache in app[caches.caches_key].items():
        assert len(cache) <= 3, name
    assert len(app[caches.caches_key]["pages"]) == 3

    off = create_app(make_node_config(node_db_url, tmp_path / "o", WB_CACHE_ENTRIES="0"))
    client = await aiohttp_client(off)
    await sign_in(client, user)
    assert (await client.get("/")).status == 200
    assert all(len(c) == 0 for c in off[caches.caches_key].values())


def test_written_tables_knows_what_may_write() -> None:
    assert written_tables("SELECT * FROM requests WHERE id = $1") == ()
    assert written_tables("INSERT INTO comments (id) VALUES ($1)") == ("comments",)
    assert written_tables("UPDATE users SET disabled = true WHERE id = $1") == ("users",)
    # a DELETE cascades to tables it does not name; CTEs and several statements may
    # write anywhere: all of them move the epoch
    for sql in ("DELETE FROM requests WHERE id = $1", "COMMIT;",
                "WITH d AS (DELETE FROM x RETURNING 1) SELECT 1",
                "UPDATE a SET b = 1; DELETE FROM c", "SELECT 1; INSERT INTO a VALUES (1)",
                "TRUNCATE users", "SELECT * FROM requests FOR UPDATE",
                "INSERT INTO a (x) VALUES (1) ON CONFLICT (x) DO UPDATE SET x = 2"):
        assert written_tables(sql) is None, sql


def test_a_stamped_entry_dies_with_its_tables_its_deadline_or_its_epoch() -> None:
    watch = TableWatch()
    assert watch.stamp(("a",)) is None  # not listening: no caching at all
    class Open:
        def is_closed(self) -> bool:
            return False

    watch._conn = Open()  # type: ignore[assignment]  (listening, for this unit test)
    cache: StampedCache[str] = StampedCache(watch, ("a", "b"), 10)
    stamp = cache.stamp()
    cache.put("k", stamp, "v")
    assert cache.get("k", cache.stamp()) == "v"
    watch.changed("other")
    assert cache.get("k", cache.stamp()) == "v"
    watch.changed("b")
    assert cache.get("k", cache.stamp()) is None
    cache.put("k", cache.stamp(), "v")
    watch.changed()
    assert cache.get("k", cache.stamp()) is None
    cache.put("k", cache.stamp(), "v", ttl=-1)
    assert cache.get("k", cache.stamp()) is None
    # an answer read before a change is stored under the stamp taken before it: stale
    stamp = cache.stamp()
    watch.changed("a")
    cache.put("k", stamp, "old")
    assert cache.get("k", cache.stamp()) is None


class _Silent(asyncpg.Connection):
    """A connection whose network path can drop without a FIN: queries never return."""

    silent = False

    async def fetchval(self, *args, **kwargs):
        if self.silent:
            await asyncio.sleep(3600)
        return await super().fetchval(*args, **kwargs)


async def test_a_listener_that_stops_answering_turns_the_caches_off(node_db_url):
    watch = TableWatch()
    watch.probe_seconds, watch.probe_timeout = 0.05, 0.2
    await watch.start(lambda: asyncpg.connect(node_db_url, connection_class=_Silent))
    try:
        assert watch.live and watch.stamp(("requests",)) is not None
        conn = watch._conn
        await asyncio.sleep(0.2)  # a few probes answered: still listening
        assert watch.live
        conn.silent = True
        await _until(lambda: not watch.live)
        assert watch.stamp(("requests",)) is None
        assert conn.is_closed()
    finally:
        await watch.close()


async def test_refused_posts_leave_the_caches_warm_and_others_do_not(member_factory,
                                                                     node_client, pool):
    mel = await member_factory("mel")
    watch = _watch(node_client)
    stamp = watch.stamp(())
    for data in ({"csrf_token": "forged", "description": "x"}, {"csrf_token": mel.csrf}):
        r = await mel.client.post("/requests", data=data, allow_redirects=False)
        assert 400 <= r.status < 500
    assert watch.stamp(()) == stamp  # nothing written, nothing dropped
    assert await pool.fetchval("SELECT count(*) FROM requests") == 0
    r = await mel.post("/requests", {"description": "Soup for two"})
    assert r.status == 303
    assert watch.stamp(()) != stamp


async def test_a_members_own_change_and_a_waiting_sign_in_show_on_the_cached_page(
        member_factory, node_client, outside):
    ada = await member_factory("ada", admin=True)
    assert '<a href="/profile">Ada</a>' in await _page(ada)
    assert 'class="count"' not in await _page(ada)  # cached now
    r = await ada.post("/settings/account", {"display_name": "Ada L.", "scope": "private"})
    assert r.status == 303
    assert '<a href="/profile">Ada L.</a>' in await _page(ada)
    # a device of someone else starts signing in (another process wrote it)
    other = await outside.fetchval(
        "INSERT INTO users (id, username) VALUES ($1, 'bob') RETURNING id", ulid())
    await outside.execute("INSERT INTO sessions (id_hash, user_id, status, expires_at) "
                          "VALUES ('h-bob', $1, 'pending', now() + interval '1 day')", other)
    await _notified(node_client, outside,
                    "INSERT INTO auth_requests (id, user_id, session_hash, code, expires_at) "
                    "VALUES ($1, $2, 'h-bob', '123456', now() + interval '1 hour')",
                    ulid(), other, table="auth_requests")
    assert '1 sign-in waits for approval' in await _page(ada)


async def test_every_table_a_cache_reads_has_the_change_trigger(pool):
    """A cached answer is only as fresh as the triggers on the tables it was read from:
    a table named in caches.TABLES without one would go stale when another process
    writes it (migrations 0290, 0291)."""
    rows = await pool.fetch(
        "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE t.tgname LIKE 'wb_table_changed%'")
    watched = {r["relname"] for r in rows}
    read = {t for tables in caches.TABLES.values() for t in tables}
    assert read - watched == set()


async def test_a_role_granted_or_taken_elsewhere_counts_on_the_next_request(
        member_factory, node_client, outside):
    """The session cache holds the member's roles (#23): `wb roles revoke` in another
    process must end a reviewer's access on their next request, not at the cache's end."""
    rita = await member_factory("rita")
    r = await rita.client.get("/review/sign-ins", headers={"Accept": "application/json"})
    assert r.status == 403  # cached: no role yet
    await _notified(node_client, outside,
                    "INSERT INTO member_roles (user_id, role) VALUES ($1, 'reviewer')",
                    rita.user_id, table="member_roles")
    r = await rita.client.get("/review/sign-ins", headers={"Accept": "application/json"})
    assert r.status == 200
    await _notified(node_client, outside, "DELETE FROM member_roles WHERE user_id = $1",
                    rita.user_id, table="member_roles")
    r = await rita.client.get("/review/sign-ins", headers={"Accept": "application/json"})
    assert r.status == 403
