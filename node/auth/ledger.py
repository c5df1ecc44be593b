"""The approval ledger: every decision on a sign-in request, hash-chained.

Each entry's ``hash`` is ``SHA-256(prev_hash + "\\n" + canonical(entry))`` where
``canonical`` is the entry's fields (:data:`FIELDS`) as compact JSON with sorted keys
and the time in UTC with microseconds; the first entry follows :data:`GENESIS`. The last
hash (the *head*) is therefore a checksum of the whole ledger: an admin who keeps it can
later prove nothing was changed before it. Entries are appended in the transaction that
makes the decision, under a lock (:func:`append`), so concurrent decisions form one
chain. :func:`verify` names the first row that does not fit (edited, deleted, inserted
or reordered); the audit log records each decision's row number too, so rows cut from
the end are noticed as well (:func:`verify_database`).

Local state: the ledger and its notes never leave the node (not exported, not sent to a
hub, not in feeds, not given to the copilot).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg

from node.auth import queries_review as QR

GENESIS = "0" * 64
FIELDS = ("seq", "at", "request_id", "member_id", "member", "reviewer_id", "reviewer",
          "capacity", "decision", "note")
#: In whose name a decision was made.
CAPACITIES = ("own_device", "admin", "reviewer", "inviter", "operator")
OPERATOR = "(operator)"  # the reviewer name of a decision made with `wb session`
TITLE = "# WhiteBalloon sign-in approval ledger"


def iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical(entry: Mapping[str, Any]) -> bytes:
    """The bytes an entry's hash covers (its time as ISO text, UTC, microseconds)."""
    fields = {k: entry[k] for k in FIELDS}
    if isinstance(fields["at"], dt.datetime):
        fields["at"] = iso(fields["at"])
    return json.dumps(fields, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()


def entry_hash(prev_hash: str, entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + canonical(entry)).hexdigest()


def as_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """A database row (or a parsed line) as a plain entry with ``prev_hash`` and ``hash``."""
    entry = {k: row[k] for k in (*FIELDS, "prev_hash", "hash")}
    if isinstance(entry["at"], dt.datetime):
        entry["at"] = iso(entry["at"])
    return entry


async def append(conn: asyncpg.Connection, *, request_id: str, member_id: str, member: str,
                 reviewer_id: str | None, capacity: str, decision: str,
                 note: str = "") -> dict[str, Any]:
    """Append one decision, inside the caller's transaction. Waits for the ledger lock
    first, so the row's number, time and predecessor are those of the chain as it is."""
    assert capacity in CAPACITIES and decision in ("approved", "denied")
    await QR.lock_ledger(conn)
    head = await QR.ledger_head(conn)
    reviewer = (await QR.username_of(conn, reviewer_id) if reviewer_id else None) or OPERATOR
    entry: dict[str, Any] = {
        "seq": (head["seq"] + 1) if head else 1, "at": dt.datetime.now(dt.UTC),
        "request_id": request_id, "member_id": member_id, "member": member,
        "reviewer_id": reviewer_id, "reviewer": reviewer, "capacity": capacity,
        "decision": decision, "note": note}
    prev = head["hash"] if head else GENESIS
    digest = entry_hash(prev, entry)
    await QR.insert_ledger_row(conn, **entry, prev_hash=prev, hash=digest)
    return as_entry({**entry, "prev_hash": prev, "hash": digest})


def verify(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Problems found walking the chain, each naming its row (1-based), or []."""
    problems: list[str] = []
    prev = GENESIS
    for number, entry in enumerate(entries, 1):
        if entry.get("seq") != number:
            problems.append(f"row {number}: missing or out of place (found row number "
                            f"{entry.get('seq')!r} there)")
            break  # every later row is shifted; the first gap is the finding
        if entry.get("prev_hash") != prev:
            problems.append(f"row {number}: does not follow row {number - 1} (a row was "
                            "deleted, inserted or reordered)")
        try:
            actual = entry_hash(str(entry.get("prev_hash")), entry)
        except (KeyError, TypeError, ValueError):
            actual = ""
        if actual != entry.get("hash"):
            problems.append(f"row {number}: altered (its hash does not match its content)")
        prev = str(entry.get("hash"))
    return problems


async def verify_database(conn: asyncpg.Pool | asyncpg.Connection
                          ) -> tuple[list[dict[str, Any]], list[str]]:
    """The ledger's entries and the problems :func:`verify` finds, plus rows the audit
    log says were written but are no longer there."""
    entries = [as_entry(r) for r in await QR.ledger_rows(conn)]
    problems = verify(entries)
    recorded = await QR.ledger_seq_in_audit(conn)
    if not problems and recorded > len(entries):
        problems.append(f"row {len(entries) + 1}: missing (the audit log records "
                        f"{recorded} decisions, the ledger holds {len(entries)})")
    return entries, problems


def head(entries: list[Mapping[str, Any]]) -> str:
    return str(entries[-1]["hash"]) if entries else GENESIS


def render(entries: list[Mapping[str, Any]]) -> str:
    """The downloadable text: a header with the row count and the head hash (the ledger's
    checksum), then one JSON object per line (the hashed fields, ``prev_hash``, ``hash``)."""
    lines = [TITLE, f"# rows: {len(entries)}", f"# sha256-chain-head: {head(entries)}",
             "# each row: hash = SHA-256(prev_hash + '\\n' + the row's other fields as "
             "compact sorted JSON); verify with `wb session ledger --verify --input FILE`"]
    lines += [json.dumps(as_entry(e), sort_keys=True, separators=(",", ":"),
                         ensure_ascii=False) for e in entries]
    return "\n".join(lines) + "\n"


#: the keys of a row in the downloaded text: the hashed fields and the two hashes
ROW_KEYS = frozenset((*FIELDS, "prev_hash", "hash"))


def _row(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object without a repeated key (a reader would see one value, the verifier
    the other)."""
    row = dict(pairs)
    if len(row) != len(pairs):
        raise ValueError("a key appears twice")
    return row


def parse(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Entries of a downloaded ledger, and problems with the file itself (a line that is
    not an entry, a header that does not match the rows)."""
    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    stated_head = stated_rows = None
    # line feeds and carriage returns only (json.dumps escapes both inside a row): a note
    # may hold U+2028, NEL and the like, which it leaves as they are and which
    # str.splitlines() would break a row on
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line.startswith("# sha256-chain-head: "):
            stated_head = line.split(": ", 1)[1].strip()
        elif line.startswith("# rows: "):
            stated_rows = line.split(": ", 1)[1].strip()
        elif line.startswith("#") or not line.strip():
            continue
        else:
            try:
                item = json.loads(line, object_pairs_hook=_row)
                if not isinstance(item, dict):
                    raise ValueError
                entries.append(item)
            except ValueError:
                problems.append(f"row {len(entries) + 1}: not a ledger entry")
                break
            if set(item) != ROW_KEYS:  # a field the hash does not cover, or one missing
                problems.append(f"row {len(entries)}: not a ledger entry (its fields are "
                                "not the ledger's)")
    if stated_rows is not None and stated_rows != str(len(entries)):
        problems.append(f"header: says {stated_rows} rows, the file holds {len(entries)}")
    if stated_head is not None and stated_head != head(entries):
        problems.append("header: the stated chain head is not the last row's hash")
    return entries, problems
