"""SQL of the transparency log (hub_tlog_*) and of its witnesses (hub_tlog_cosignatures,
hub_witness_logs). The tree math is :mod:`protocol.tlog`.

Leaves are appended by the trigger ``hub_tlog_append`` on ``hub_log`` (migrations 0007,
0020), inside the ingest transaction and in commit order, with no extra round trip; the
trigger writes only the leaf. :func:`extend` hashes the leaves beyond the tree (leaf and
subtree hashes, the frontier) in batches, before each checkpoint is signed:
``hub_tlog_state`` is the hashed prefix of the leaves, the tree the next checkpoint signs.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from protocol import tlog as L

Conn = asyncpg.Connection | asyncpg.Pool


@dataclass(frozen=True)
class TreeState:
    size: int
    frontier: list[bytes]
    last_hub_seq: int

    @property
    def root(self) -> bytes:
        return L.frontier_root(self.frontier)


def _frontier(raw: bytes) -> list[bytes]:
    return [raw[i:i + L.HASH_SIZE] for i in range(0, len(raw), L.HASH_SIZE)]


async def state(conn: Conn) -> TreeState:
    row = await conn.fetchrow("SELECT size, frontier, last_hub_seq FROM hub_tlog_state")
    assert row is not None
    return TreeState(row["size"], _frontier(bytes(row["frontier"])), row["last_hub_seq"])


_HASHED = """
WITH s AS (UPDATE hub_tlog_state SET size = $1, frontier = $2, last_hub_seq = $3 WHERE id = 1)
INSERT INTO hub_tlog_hashes (level, idx, hash)
SELECT * FROM unnest($4::smallint[], $5::bigint[], $6::bytea[])
"""

_LEAVES = """
INSERT INTO hub_tlog_leaves (idx, hub_seq, origin, sequence, entry)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], $5::bytea[])
"""

EXTEND_BATCH = 20_000  # leaves hashed per transaction


async def _hash(conn: asyncpg.Connection, st: TreeState,
                leaves: list[tuple[int, bytes]]) -> TreeState:
    """Hash ``leaves`` ((hub_seq, entry), from index ``st.size`` on) into the tree."""
    size, frontier = st.size, st.frontier
    hashes: tuple[list, list, list] = ([], [], [])
    for _, entry in leaves:
        rows, frontier = L.append_stored(size, frontier, L.leaf_hash(entry))
        for level, idx, h in rows:
            hashes[0].append(level)
            hashes[1].append(idx)
            hashes[2].append(h)
        size += 1
    await conn.execute(_HASHED, size, b"".join(frontier), leaves[-1][0], *hashes)
    return TreeState(size, frontier, leaves[-1][0])


async def _write(conn: asyncpg.Connection, st: TreeState,
                 facts: list[tuple[int, str, int | None, str]]) -> None:
    """Append leaves for ``facts`` (hub_seq, origin, sequence, digest) and hash them."""
    entries = [L.leaf_entry(*f) for f in facts]
    await conn.execute(_LEAVES, list(range(st.size, st.size + len(facts))),
                       [f[0] for f in facts], [f[1] for f in facts], [f[2] for f in facts],
                       entries)
    await _hash(conn, st, [(f[0], e) for f, e in zip(facts, entries, strict=True)])


async def extend(conn: asyncpg.Connection) -> int:
    """Hash every leaf beyond the tree; the number hashed. Processes of one hub take
    turns on the ``hub_tlog_state`` row lock; ingest never waits for it."""
    done = 0
    while True:
        async with conn.transaction():
            row = await conn.fetchrow("SELECT size, frontier, last_hub_seq FROM hub_tlog_state "
                                      "WHERE id = 1 FOR UPDATE")
            st = TreeState(row["size"], _frontier(bytes(row["frontier"])), row["last_hub_seq"])
            rows = await conn.fetch(
                "SELECT idx, hub_seq, entry FROM hub_tlog_leaves WHERE idx >= $1 "
                "ORDER BY idx LIMIT $2", st.size, EXTEND_BATCH)
            if not rows:
                return done
            assert rows[0]["idx"] == st.size and rows[-1]["idx"] == st.size + len(rows) - 1
            await _hash(conn, st, [(r["hub_seq"], bytes(r["entry"])) for r in rows])
        done += len(rows)
        if len(rows) < EXTEND_BATCH:
            return done


async def catch_up(conn: asyncpg.Connection) -> int:
    """Append a leaf for every retained log entry beyond the last leaf (a hub upgraded
    with a log, a trigger once disabled), in log order, then hash them; the number of
    leaves appended."""
    async with conn.transaction():
        last = await conn.fetchval("SELECT last_seq FROM hub_state WHERE id = 1 FOR UPDATE")
        top = await conn.fetchrow(
            "SELECT idx, hub_seq FROM hub_tlog_leaves ORDER BY idx DESC LIMIT 1")
        size, seq = (0, 0) if top is None else (top["idx"] + 1, top["hub_seq"])
        added = 0
        if seq < last:
            rows = await conn.fetch(
                """SELECT l.seq, l.origin, b.sequence, l.digest
                     FROM hub_log l JOIN hub_bundles b USING (digest)
                    WHERE l.seq > $1 ORDER BY l.seq""", seq)
            if rows:
                facts = [(r["seq"], r["origin"], r["sequence"], r["digest"]) for r in rows]
                await conn.execute(_LEAVES, list(range(size, size + len(facts))),
                                   [f[0] for f in facts], [f[1] for f in facts],
                                   [f[2] for f in facts], [L.leaf_entry(*f) for f in facts])
                added = len(rows)
    await extend(conn)
    return added


async def hashes(conn: Conn, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    if not wanted:
        return {}
    levels, idxs = zip(*sorted(wanted), strict=True)
    rows = await conn.fetch(
        """SELECT h.level, h.idx, h.hash FROM hub_tlog_hashes h
             JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, idx)
               ON h.level = w.level AND h.idx = w.idx""", list(levels), list(idxs))
    return {(r["level"], r["idx"]): bytes(r["hash"]) for r in rows}


async def hash_range(conn: Conn, level: int, start: int, count: int) -> list[bytes]:
    rows = await conn.fetch(
        "SELECT hash FROM hub_tlog_hashes WHERE level = $1 AND idx >= $2 AND idx < $3 "
        "ORDER BY idx", level, start, start + count)
    return [bytes(r["hash"]) for r in rows]


async def entries(conn: Conn, start: int, count: int) -> list[bytes]:
    rows = await conn.fetch(
        "SELECT entry FROM hub_tlog_leaves WHERE idx >= $1 AND idx < $2 ORDER BY idx",
        start, start + count)
    return [bytes(r["entry"]) for r in rows]


async def leaf_by_hub_seq(conn: Conn, hub_seq: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT idx, hub_seq, entry FROM hub_tlog_leaves WHERE hub_seq = $1", hub_seq)


async def leaf_by_origin(conn: Conn, origin: str, sequence: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT idx, hub_seq, entry FROM hub_tlog_leaves WHERE origin = $1 AND sequence = $2",
        origin, sequence)


async def latest_checkpoint(conn: Conn) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT size, root, note, last_hub_seq, created_at FROM hub_tlog_checkpoints "
        "ORDER BY size DESC LIMIT 1")


async def checkpoint_at(conn: Conn, size: int) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT size, root, note, last_hub_seq, created_at FROM hub_tlog_checkpoints "
        "WHERE size = $1", size)


async def save_checkpoint(conn: Conn, size: int, root: bytes, note: bytes,
                          last_hub_seq: int) -> None:
    await conn.execute(
        "INSERT INTO hub_tlog_checkpoints (size, root, note, last_hub_seq) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (size) DO NOTHING", size, root, note, last_hub_seq)


# ------------------------------------------------------------------ witnesses (hub/witness.py)

async def is_cosigned(conn: Conn, witness: str, size: int) -> bool:
    return await conn.fetchval(
        "SELECT 1 FROM hub_tlog_cosignatures WHERE witness = $1 AND size = $2",
        witness, size) is not None


async def last_cosigned_size(conn: Conn, witness: str) -> int:
    return await conn.fetchval("SELECT max(size) FROM hub_tlog_cosignatures "
                               "WHERE witness = $1", witness) or 0


async def save_cosignature(conn: Conn, witness: str, size: int, line: str) -> None:
    await conn.execute(
        "INSERT INTO hub_tlog_cosignatures (witness, size, line) VALUES ($1, $2, $3) "
        "ON CONFLICT DO NOTHING", witness, size, line)


async def cosignature_lines(conn: Conn, size: int) -> list[str]:
    rows = await conn.fetch("SELECT line FROM hub_tlog_cosignatures WHERE size = $1 "
                            "ORDER BY witness", size)
    return [r["line"] for r in rows]


async def witnessed_log_for_update(conn: asyncpg.Connection,
                                   origin: str) -> asyncpg.Record | None:
    """The witness's kept checkpoint of ``origin``, locked until the transaction ends."""
    return await conn.fetchrow(
        "SELECT size, root FROM hub_witness_logs WHERE origin = $1 FOR UPDATE", origin)


async def save_witnessed_log(conn: Conn, origin: str, size: int, root: bytes,
                             note: bytes) -> None:
    await conn.execute(
        """INSERT INTO hub_witness_logs (origin, size, root, note) VALUES ($1, $2, $3, $4)
           ON CONFLICT (origin) DO UPDATE SET size = $2, root = $3, note = $4,
                                              updated_at = now()""",
        origin, size, root, note)
