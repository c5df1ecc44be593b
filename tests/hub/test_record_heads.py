"""A record's header block is stored once, in the bundle's envelope, and its row names
the bundle by id, not by digest (migration 0024): every answer still shows each
record's own head and bundle digest, exactly, after the envelope it points into is
scrubbed, pruned, re-encoded or scrubbed on arrival."""

from __future__ import annotations

import pytest

from hub import queries as Q
from hub.retention import prune
from protocol.records import render_record
from tests.hub.test_ingest import push

# both ways of storing the index rows (``tests/hub/conftest.py``), for the tests that push
stagings = pytest.mark.usefixtures("both_stagings")


def head_of(rec) -> str:
    return render_record(rec).split(b"\n\n", 1)[0].decode()


async def served(pool) -> dict[str, tuple[str, str]]:
    """id -> (head, bundle digest) of every live record, as the hub's readers answer."""
    rows = await Q.search_records(pool, origin=None, entity=None, q=None, after=None,
                                  limit=1000)
    return {r["id"]: (r["head"], r["digest"]) for r in rows}


async def served_heads(pool) -> dict[str, str]:
    return {i: head for i, (head, _) in (await served(pool)).items()}


async def stored_as(pool) -> dict[str, str]:
    """id -> 'pointer' or 'inline', as each live row keeps its head and digest (both
    the same way: the constraint of migration 0024)."""
    rows = await pool.fetch("SELECT id, bundle IS NOT NULL AS p FROM hub_records "
                            "WHERE NOT deleted")
    return {r["id"]: "pointer" if r["p"] else "inline" for r in rows}


def varied(origin, n: int, prefix: str = "R"):
    """Requests whose heads differ in length (so a stale pointer reads wrong bytes)."""
    return [origin.request(f"{prefix}{i}", title="t" * (1 + 7 * i), body=f"body {i}")
            for i in range(n)]


@stagings
async def test_heads_are_pointers_and_read_back_exactly(hub_client, hub_pool, peer, origin):
    recs = varied(origin, 5)
    comment = origin.comment("C1", f"{origin.origin}/R1", body="on my way")
    b = origin.bundle([*recs, comment])
    assert (await push(hub_client, peer, b)).status == 201
    assert set((await stored_as(hub_pool)).values()) == {"pointer"}
    assert await served(hub_pool) == {r.id: (head_of(r), b.digest) for r in [*recs, comment]}
    # each pointer is its head's bytes in the stored envelope
    container = bytes(await hub_pool.fetchval("SELECT container FROM hub_bundles"))
    for row in await hub_pool.fetch("SELECT id, head_at, head_len FROM hub_records"):
        assert container[row["head_at"]:row["head_at"] + row["head_len"]].decode() == \
            head_of(next(r for r in [*recs, comment] if r.id == row["id"]))
    # every reader of heads answers them: the feed, an origin's feed, comments
    feed = {r["id"]: r["head"] for r in await Q.feed(hub_pool, limit=50, offset=0)}
    assert feed == {r.id: head_of(r) for r in recs}
    mine = await Q.feed_of_origin(hub_pool, origin.origin, limit=50)
    assert {r["id"]: r["head"] for r in mine} == feed
    [c] = await Q.comments_for(hub_pool, [f"{origin.origin}/R1"])
    assert c["head"] == head_of(comment)
    api = (await (await hub_client.get("/api/v2/records?limit=50")).json())["records"]
    assert {r["id"]: r["headers"]["Title"] for r in api if "Title" in r["headers"]} == \
        {r.id: r.get("Title") for r in recs}


@stagings
async def test_heads_survive_a_scrub_of_their_envelope(hub_client, hub_pool, peer, origin):
    recs = varied(origin, 4)
    assert (await push(hub_client, peer, origin.bundle(recs))).status == 201
    # withdrawing the first record removes its file from the stored envelope: the files
    # after it move, and the other rows' heads must not read the moved bytes
    tomb = origin.bundle([origin.tombstone("request", "R0", 2)])
    assert (await push(hub_client, peer, tomb)).status == 201
    assert await served_heads(hub_pool) == {r.id: head_of(r) for r in recs[1:]}
    assert set((await stored_as(hub_pool)).values()) == {"inline"}


@stagings
async def test_heads_survive_pruning_of_their_bundle(hub_client, hub_pool, peer, origin):
    recs = varied(origin, 3)
    first = origin.bundle(recs)
    assert (await push(hub_client, peer, first)).status == 201
    later = varied(origin, 2, prefix="L")
    second = origin.bundle(later)
    assert (await push(hub_client, peer, second)).status == 201
    result = await prune(hub_pool, before_seq=2)  # the first bundle is deleted
    assert (result.entries, result.bundles) == (1, 1)
    assert await served(hub_pool) == {**{r.id: (head_of(r), first.digest) for r in recs},
                                      **{r.id: (head_of(r), second.digest) for r in later}}
    assert await stored_as(hub_pool) == {**{r.id: "inline" for r in recs},
                                         **{r.id: "pointer" for r in later}}


@stagings
async def test_a_bundle_scrubbed_on_arrival_keeps_its_other_heads(hub_client, hub_pool, peer,
                                                                  origin):
    tomb = origin.bundle([origin.tombstone("request", "R0", 5)])
    assert (await push(hub_client, peer, tomb)).status == 201
    # an older copy of the withdrawn record arrives with others: it is withheld from the
    # stored envelope, so the others' files move before it is stored
    recs = varied(origin, 4)
    assert (await push(hub_client, peer, origin.bundle(recs))).status == 201
    assert await served_heads(hub_pool) == {r.id: head_of(r) for r in recs[1:]}
    container = bytes(await hub_pool.fetchval(
        "SELECT container FROM hub_bundles ORDER BY received_at DESC LIMIT 1"))
    assert render_record(recs[0]) not in container


@stagings
async def test_a_reencoded_envelope_is_pointed_into(hub_client, hub_pool, peer, origin):
    # a private file is dropped, so the hub stores an envelope of its own making (in
    # canonical order, not the order received)
    recs = varied(origin, 4)
    secret = origin.request("S1", title="secret", body="secret", scope="private")
    b = origin.bundle([*reversed(recs), secret])
    assert (await push(hub_client, peer, b)).status == 201
    assert await stored_as(hub_pool) == {r.id: "pointer" for r in recs}
    assert await served_heads(hub_pool) == {r.id: head_of(r) for r in recs}


async def test_rows_stored_before_the_migration_keep_their_heads(pg, tmp_path, origin):
    """A hub upgraded with rows in its index: they keep their own head and digest (the
    table's constraint admits them as they are), and every reader answers them."""
    import shutil

    import asyncpg

    from hub.app import MIGRATIONS
    from service import db

    before = tmp_path / "migrations"
    before.mkdir()
    for path in MIGRATIONS.glob("*.sql"):
        if path.name < "0024":
            shutil.copy(path, before / path.name)
    url = await pg.new_database()
    try:
        assert (await db.migrate_url(url, "hub", before))[-1] == "0023_ingest_begin"
        old = origin.request("OLD1", title="stored before")
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                """INSERT INTO hub_bundles (digest, origin, schema_version, key_id, container,
                                            record_count, withheld_count)
                   VALUES ('d0', $1, 2, $1, '\\x00', 1, 0)""", origin.origin)
            await conn.execute(
                """INSERT INTO hub_records (origin, entity, id, revision, instance, updated_at,
                                            head, body, title, digest)
                   VALUES ($1, 'request', 'OLD1', 1, $2, $3, $4, 'b', 't', 'd0')""",
                origin.origin, origin.instance, old.get("Updated-At"), head_of(old))
            assert await db.migrate_url(url, "hub", MIGRATIONS) == [
                "0024_records_point_into_bundles"]
            assert await served(conn) == {"OLD1": (head_of(old), "d0")}
            assert await stored_as(conn) == {"OLD1": "inline"}
        finally:
            await conn.close()
    finally:
        await pg.drop(url)
