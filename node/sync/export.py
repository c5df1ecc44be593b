"""Export: the next link of this node's signed hash chain.

A delta reads only the local rows changed since an export last looked at them (the
``*_sync_dirty`` partial indexes), turns live rows into records and rows that were
published but are no longer live into tombstones, signs the bundle and stores its
exact CBOR envelope in ``sync_outbox`` - all in one transaction. A snapshot carries
every live record and leaves the delta bookkeeping alone.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from node.publication import queries as scope_queries
from node.sync import queries as Q
from node.sync.identity import NodeKey, ensure_state, load_or_create_key
from protocol.bundle import Bundle, build_bundle
from protocol.containers import to_cbor
from protocol.errors import ProtocolError
from protocol.records import (
    CONTROL_CLASS,
    ENTITY_HEADERS,
    SCHEMA_VERSION,
    Record,
    make_record,
    make_tombstone,
    parse_record,
)
from service.settings import Config

# the protocol's control characters (C0, DEL, C1, U+2028/9; docs/protocol.md section 1)
# and LF: a header value never holds them
_CONTROL = re.compile(f"[\n{CONTROL_CLASS}]+")


def rfc3339(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def line(value: str | None) -> str | None:
    """A single-line header value: control characters and line breaks become spaces."""
    if value is None:
        return None
    return " ".join(_CONTROL.sub(" ", value).split()) or None


def body_text(value: str | None) -> str:
    return (value or "").replace("\x00", "")


def next_revision(row: Any) -> int:
    """Revision to publish: newer than anything this row was published with before."""
    rev = row["revision"]
    published = row["published_revision"]
    if published is not None and rev <= published:
        return published + 1
    return rev


@dataclass
class Waiting:
    """A public change held by the publishing grace period (WB_PUBLISH_DELAY)."""

    record: Record
    leaves_at: dt.datetime
    leaves_in_seconds: int


class Hold:
    """Which live rows are still inside the grace period, judged at one database instant."""

    def __init__(self, now: dt.datetime, delay: float) -> None:
        self.now = now
        self.delay = dt.timedelta(seconds=max(0.0, delay))
        self.cutoff = now - self.delay

    def changed_at(self, row: Any) -> dt.datetime:
        """The last change that restarts the wait: the row's own, and for a comment on a
        local request that request's too (a comment never leaves ahead of its request)."""
        at = row["updated_at"]
        if "request_updated_at" in row.keys() and row["request_origin"] is None \
                and row["request_updated_at"] is not None:
            at = max(at, row["request_updated_at"])
        return at

    def held(self, row: Any) -> bool:
        return bool(self.delay) and bool(row["live"]) and self.changed_at(row) > self.cutoff

    def waiting(self, rec: Record, row: Any) -> Waiting:
        leaves_at = self.changed_at(row) + self.delay
        seconds = max(0, int(-(-(leaves_at - self.now).total_seconds() // 1)))
        return Waiting(rec, leaves_at, seconds)


@dataclass
class Plan:
    records: dict[str, Record] = field(default_factory=dict)
    waiting: dict[str, Waiting] = field(default_factory=dict)
    marks: dict[str, dict[str, tuple[str, int, int, bool]]] = field(
        default_factory=lambda: {"users": {}, "requests": {}, "comments": {}})
    watermark: int = 0
    tombstones: int = 0

    def add(self, rec: Record) -> None:
        if rec.path not in self.records:
            self.records[rec.path] = rec
            if rec.deleted:
                self.tombstones += 1

    def mark(self, table: str, row: Any, new_rev: int, live: bool) -> None:
        self.marks[table].setdefault(row["id"], (row["id"], row["revision"], new_rev, live))
        if row["change_seq"] is not None:
            self.watermark = max(self.watermark, row["change_seq"])

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for rec in self.records.values():
            name = f"{rec.entity}_tombstones" if rec.deleted else rec.entity
            out[name] = out.get(name, 0) + 1
        return out


class RecordMaker:
    """Rows of this node -> schema-2 records with Origin and Instance filled in."""

    def __init__(self, origin: str, instance: str) -> None:
        self.origin = origin
        self.instance = instance

    def _common(self, row: Any, revision: int) -> dict[str, Any]:
        return {"ID": row["id"], "Origin": self.origin, "Instance": self.instance,
                "Revision": revision, "Updated-At": rfc3339(row["updated_at"]),
                "Sync-Scope": "public"}

    def _record(self, entity: str, fields: dict[str, Any], body: str) -> Record:
        """``make_record(entity, fields, body)``, cheaper: render the canonical text
        directly and let the strict parser validate it. Values here are already
        single-line and trimmed (``line``, IDs, timestamps), so whenever the parser
        accepts the text it is exactly what make_record renders; anything it refuses
        (or a CR in the body, which make_record normalises) goes through make_record,
        which normalises or raises as before."""
        if "\r" not in body:
            parts = []
            for name in ENTITY_HEADERS[entity]:
                if name == "Entity":
                    value: Any = entity
                elif name == "Schema-Version":
                    value = fields.get(name, SCHEMA_VERSION)
                else:
                    value = fields.get(name)
                if value is not None and value != "":
                    parts.append(f"{name}: {value}\n")
            parts.append("\n")
            head = "".join(parts)
            # a line break inside a value (an ID is not run through ``line``) would end the
            # header block early and still parse: make_record decides about those
            if head.count("\n") == len(parts) and "\r" not in head:
                try:
                    return parse_record((head + body).encode())
                except ProtocolError:
                    pass
        return make_record(entity, fields, body)

    def ref(self, local_id: str) -> str:
        return f"{self.origin}/{local_id}"

    def tombstone(self, entity: str, row: Any, revision: int) -> Record:
        return make_tombstone(entity, row["id"], origin=self.origin, instance=self.instance,
                              revision=revision, updated_at=rfc3339(row["updated_at"]) or "")

    def user(self, row: Any, revision: int) -> Record:
        fields = self._common(row, revision)
        fields.update({
            "Username": line(row["username"]) or f"member-{row['id']}",
            "Display-Name": line(row["display_name"]),
            "Invited-By": self.ref(row["inviter_id"]) if row["inviter_live"] else None,
            "Created-At": rfc3339(row["created_at"]),
            "Contact-Email": line(row["contact_email"]) if row["share_contact"] else None,
        })
        return self._record("user", fields, body_text(row["bio"]))

    def vouch(self, row: Any, *, live: bool) -> Record:
        """Inviter -> invitee edge of a user row; ID = the invitee's ID."""
        revision = max(row["change_seq"] or 1, row["inviter_seq"] or 1)
        if not live:
            return make_tombstone("vouch", row["id"], origin=self.origin,
                                  instance=self.instance, revision=revision,
                                  updated_at=rfc3339(row["updated_at"]) or "")
        fields = self._common(row, revision)
        fields.update({"Inviter": self.ref(row["inviter_id"]), "Invitee": self.ref(row["id"]),
                       "Created-At": rfc3339(row["created_at"])})
        return self._record("vouch", fields, "")

    def request(self, row: Any, revision: int) -> Record:
        fields = self._common(row, revision)
        description = body_text(row["description"])
        title = line(row["title"]) or line(description[:120]) or "Untitled request"
        fields.update({
            "Title": title, "Status": row["status"], "Created-By": self.ref(row["created_by"]),
            "Created-At": rfc3339(row["created_at"]),
            "Completed-At": rfc3339(row["completed_at"]),
            "Tags": row.get("tags") or None,  # optional for readers (docs/protocol.md)
        })
        return self._record("request", fields, description)

    def comment(self, row: Any, revision: int) -> Record:
        fields = self._common(row, revision)
        if row["request_origin"] is not None:
            request_ref = f"{row['request_origin']}/{row['request_origin_id']}"
        else:
            request_ref = self.ref(row["request_id"])
        fields.update({"Request": request_ref, "Created-By": self.ref(row["created_by"]),
                       "Created-At": rfc3339(row["created_at"])})
        return self._record("comment", fields, body_text(row["body"]))


def _emit(plan: Plan, maker: RecordMaker, entity: str, table: str, row: Any) -> None:
    """Live row -> record; published but no longer live -> tombstone; else nothing."""
    revision = next_revision(row)
    if row["live"]:
        plan.add(getattr(maker, entity)(row, revision))
        plan.mark(table, row, revision, True)
    elif row["published"]:
        plan.add(maker.tombstone(entity, row, revision))
        plan.mark(table, row, revision, False)
    else:
        plan.mark(table, row, row["revision"], False)


def _emit_vouch(plan: Plan, maker: RecordMaker, row: Any) -> None:
    if row["inviter_id"] is None:
        return
    if row["live"] and row["inviter_live"]:
        plan.add(maker.vouch(row, live=True))
    elif row["published"]:
        plan.add(maker.vouch(row, live=False))


def _wait(plan: Plan, hold: Hold, rec: Record, row: Any) -> None:
    plan.waiting.setdefault(rec.path, hold.waiting(rec, row))


async def plan_delta(conn: asyncpg.Connection, maker: RecordMaker,
                     hold: Hold | None = None) -> Plan:
    """What changed since the last export. Live rows ``hold`` says are inside the grace
    period are neither published nor marked: they stay dirty and wait in
    ``plan.waiting``. Tombstones never wait."""
    plan = Plan()
    hold = hold or Hold(dt.datetime.now(dt.UTC), 0)
    users = await Q.dirty_users(conn)
    requests = await Q.dirty_requests(conn)
    comments = await Q.dirty_comments(conn)
    held: set[str] = set()
    for row in users:
        if hold.held(row):
            _wait(plan, hold, maker.user(row, next_revision(row)), row)
            held.add(row["id"])
            continue
        _emit(plan, maker, "user", "users", row)
        _emit_vouch(plan, maker, row)
    for row in requests:
        if hold.held(row):
            _wait(plan, hold, maker.request(row, next_revision(row)), row)
            held.add(row["id"])
            continue
        _emit(plan, maker, "request", "requests", row)
    for row in comments:
        if hold.held(row):
            _wait(plan, hold, maker.comment(row, next_revision(row)), row)
            held.add(row["id"])
            continue
        _emit(plan, maker, "comment", "comments", row)
    # Cascades: a request that appears or disappears takes its comments along; a
    # member who appears or disappears takes the vouches for their invitees along.
    flipped_requests = [r["id"] for r in requests
                        if bool(r["live"]) != r["published"] and r["id"] not in held]
    for row in await Q.comments_of_requests(conn, flipped_requests):
        if row["id"] in plan.marks["comments"] or row["id"] in held:
            continue
        if row["live"] != row["published"]:
            if hold.held(row):
                _wait(plan, hold, maker.comment(row, next_revision(row)), row)
                continue
            _emit(plan, maker, "comment", "comments", row)
    flipped_users = [u["id"] for u in users
                     if bool(u["live"]) != u["published"] and u["id"] not in held]
    for row in await Q.invitees_of(conn, flipped_users):
        if row["id"] not in held:
            _emit_vouch(plan, maker, row)
    return plan


async def plan_withdrawn(conn: asyncpg.Connection, maker: RecordMaker) -> Plan:
    """SYNC_PUBLIC_SCOPE=off: nothing leaves but tombstones for what is out there now.
    Rows never published are left alone (still dirty), so raising the mode again
    publishes what is marked public then."""
    plan = Plan()
    users, requests, comments = await Q.published_rows(conn)
    for row in users:
        gone = dict(row, live=False)
        _emit(plan, maker, "user", "users", gone)
        _emit_vouch(plan, maker, gone)
    for row in requests:
        _emit(plan, maker, "request", "requests", dict(row, live=False))
    for row in comments:
        _emit(plan, maker, "comment", "comments", dict(row, live=False))
    return plan


async def _plan(conn: asyncpg.Connection, maker: RecordMaker, hold: Hold,
                snapshot: bool) -> Plan:
    if await scope_queries.get_mode(conn) == "off":
        return await plan_withdrawn(conn, maker)
    return await (plan_snapshot(conn, maker, hold) if snapshot
                  else plan_delta(conn, maker, hold))


async def plan_snapshot(conn: asyncpg.Connection, maker: RecordMaker,
                        hold: Hold | None = None) -> Plan:
    """Everything public, minus what is still inside the grace period (it leaves with
    the next delta once the period is over)."""
    plan = Plan()
    hold = hold or Hold(dt.datetime.now(dt.UTC), 0)
    for row in await Q.live_users(conn):
        if hold.held(row):
            _wait(plan, hold, maker.user(row, next_revision(row)), row)
            continue
        plan.add(maker.user(row, next_revision(row)))
        if row["inviter_live"]:
            plan.add(maker.vouch(row, live=True))
    for row in await Q.live_requests(conn):
        if hold.held(row):
            _wait(plan, hold, maker.request(row, next_revision(row)), row)
            continue
        plan.add(maker.request(row, next_revision(row)))
    for row in await Q.live_comments(conn):
        if hold.held(row):
            _wait(plan, hold, maker.comment(row, next_revision(row)), row)
            continue
        plan.add(maker.comment(row, next_revision(row)))
    return plan


@dataclass
class ExportResult:
    sequence: int | None
    digest: str | None
    kind: str
    counts: dict[str, int]
    record_count: int
    bundle: Bundle | None
    envelope: bytes | None
    origin: str
    seconds: float
    waiting: list[Waiting] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"sequence": self.sequence, "digest": self.digest, "kind": self.kind,
                "origin": self.origin, "records": self.record_count, "counts": self.counts,
                "bytes": len(self.envelope or b""), "seconds": round(self.seconds, 4)}


def publish_delay(config: Config) -> float:
    """WB_PUBLISH_DELAY in seconds (never negative)."""
    return float(max(0, config.get_int("WB_PUBLISH_DELAY")))


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def export(pool: asyncpg.Pool, config: Config, *, snapshot: bool = False,
                 key: NodeKey | None = None) -> ExportResult:
    """Write the next chain link into ``sync_outbox`` (or nothing if nothing changed)."""
    started = time.perf_counter()
    key = key or load_or_create_key(config)
    kind = "snapshot" if snapshot else "delta"
    async with pool.acquire() as conn:
        origin = await ensure_state(conn, key)
        maker = RecordMaker(origin, config.site_url)
        async with conn.transaction():
            state = await Q.lock_state(conn)
            hold = Hold(await Q.db_now(conn), publish_delay(config))
            plan = await _plan(conn, maker, hold, snapshot)
            result = ExportResult(None, None, kind, plan.counts(), len(plan.records), None,
                                  None, origin, 0.0)
            result.waiting = sorted(plan.waiting.values(), key=lambda w: w.leaves_at)
            if plan.records:
                sequence = state["sequence"] + 1
                now = _now()
                bundle = build_bundle(
                    plan.records.values(), seed=key.seed, origin=origin,
                    instance=config.site_url, sequence=sequence,
                    previous=state["last_digest"], kind=kind, created_at=now, signed_at=now)
                envelope = to_cbor(bundle)
                await Q.store_outbox(conn, sequence, bundle.digest, kind, len(plan.records),
                                     envelope)
                await Q.advance_state(conn, sequence, bundle.digest, plan.watermark)
                result.sequence, result.digest = sequence, bundle.digest
                result.bundle, result.envelope = bundle, envelope
            for table, marks in plan.marks.items():
                await Q.mark_examined(conn, table, list(marks.values()))
    result.seconds = time.perf_counter() - started
    return result


async def preview(pool: asyncpg.Pool, config: Config, *, snapshot: bool = False
                  ) -> tuple[ExportResult, list[Record]]:
    """What the next export would publish; changes nothing (it plans, under the same lock
    as ``export``, and writes no row)."""
    started = time.perf_counter()
    key = load_or_create_key(config)
    kind = "snapshot" if snapshot else "delta"
    async with pool.acquire() as conn:
        origin = await ensure_state(conn, key)
        maker = RecordMaker(origin, config.site_url)
        async with conn.transaction():
            await Q.lock_state(conn)
            hold = Hold(await Q.db_now(conn), publish_delay(config))
            plan = await _plan(conn, maker, hold, snapshot)
    result = ExportResult(None, None, kind, plan.counts(), len(plan.records), None, None,
                          origin, time.perf_counter() - started)
    result.waiting = sorted(plan.waiting.values(), key=lambda w: w.leaves_at)
    return result, list(plan.records.values())
