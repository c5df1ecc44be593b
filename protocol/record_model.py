"""The :class:`Record` value (entity, ordered headers, body), its path and its canonical
bytes. Parsing and building live in :mod:`protocol.records`, which re-exports every
name here (``from protocol.records import Record`` keeps working).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import compress
from operator import itemgetter

_new_slots = object.__new__


class _RecordSlots:
    """Storage of :class:`Record`. The parser fills an instance of this (mutable)
    class with plain attribute stores and then turns it into a Record by assigning
    ``__class__`` (same layout): far cheaper than one ``object.__setattr__`` per slot.
    """

    __slots__ = ("entity", "_body", "_names", "_values", "_index", "_headers", "_raw")

    entity: str
    #: the body, or None until first read when it is taken from ``_raw`` (see ``body``)
    _body: str | None
    _names: tuple[str, ...]
    _values: tuple[str | None, ...]
    _index: Mapping[str, int]
    _headers: tuple[tuple[str, str], ...] | None
    #: the exact bytes this record was parsed from (canonical by construction), or None
    _raw: bytes | None


class Record(_RecordSlots):
    """One record: its entity, its ordered headers (``Entity`` first) and its body.

    Immutable and hashable; equal when entity, headers and body are equal. Build
    records with :func:`make_record`, :func:`make_tombstone` or :func:`parse_record`;
    the constructor itself does not validate.
    """

    __slots__ = ()

    def __init__(self, entity: str, headers: tuple[tuple[str, str], ...], body: str = "") -> None:
        headers = tuple(headers)
        init = object.__setattr__
        init(self, "entity", entity)
        init(self, "_body", body)
        init(self, "_names", tuple(name for name, _ in headers))
        init(self, "_values", tuple(value for _, value in headers))
        init(self, "_index", {name: i for i, (name, _) in enumerate(headers)})
        init(self, "_headers", headers)
        init(self, "_raw", None)

    @classmethod
    def _from_groups(
        cls,
        entity: str,
        names: tuple[str, ...],
        index: Mapping[str, int],
        values: tuple[str | None, ...],
        body: str,
        raw: bytes | None = None,
    ) -> Record:
        """Fast constructor for the parser: ``values`` aligned with ``names``, ``None``
        for absent optional headers; ``headers`` is materialised on first use.
        ``raw``, when given, must be the canonical rendering of the record."""
        rec = _new_slots(_RecordSlots)
        rec.entity = entity
        rec._body = body
        rec._names = names
        rec._values = values
        rec._index = index
        rec._headers = None
        rec._raw = raw
        rec.__class__ = Record
        return rec  # type: ignore[return-value]

    @property
    def body(self) -> str:
        """The body. A parsed record decodes it from its bytes on first read: what
        follows the first blank line (no header value holds an LF). Verification reads
        no body, and keeping 10,000 of them it had not asked for was a tenth of
        ``verify_bundle``'s time (issue 24)."""
        body = self._body
        if body is None:
            raw = self._raw
            assert raw is not None  # only the parser leaves the body out, with the bytes
            body = raw[raw.index(b"\n\n") + 2 :].decode("utf-8")
            object.__setattr__(self, "_body", body)
        return body

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        headers = self._headers
        if headers is None:
            values = self._values
            headers = tuple(compress(zip(self._names, values, strict=True), values))  # type: ignore[arg-type]
            object.__setattr__(self, "_headers", headers)
        return headers

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Record is immutable (cannot set {name})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Record is immutable (cannot delete {name})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (
            self.entity == other.entity
            and self.body == other.body
            and self.headers == other.headers
        )

    def __hash__(self) -> int:
        return hash((self.entity, self.headers, self.body))

    def __repr__(self) -> str:
        return f"Record(entity={self.entity!r}, headers={self.headers!r}, body={self.body!r})"

    def __reduce__(self) -> tuple[type[Record], tuple[str, tuple[tuple[str, str], ...], str]]:
        return (Record, (self.entity, self.headers, self.body))

    def get(self, name: str, default: str | None = None) -> str | None:
        i = self._index.get(name)
        if i is None:
            return default
        value = self._values[i]
        return default if value is None else value

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    @property
    def id(self) -> str:
        return self["ID"]

    @property
    def origin(self) -> str:
        return self["Origin"]

    @property
    def instance(self) -> str:
        return self["Instance"]

    @property
    def revision(self) -> int:
        return int(self["Revision"])

    @property
    def updated_at(self) -> str:
        return self["Updated-At"]

    @property
    def scope(self) -> str:
        return self["Sync-Scope"]

    @property
    def deleted(self) -> bool:
        return self.get("Deleted") == "true"

    @property
    def schema_version(self) -> int:
        return int(self["Schema-Version"])

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity of the record: ``(origin, entity, id)``."""
        return (self["Origin"], self.entity, self["ID"])

    @property
    def ref(self) -> str:
        """Cross-node reference ``origin/id`` as used by ``Request:``, ``Created-By:``..."""
        return f"{self['Origin']}/{self['ID']}"

    @property
    def path(self) -> str:
        return record_path(self.entity, self["ID"])

    def as_dict(self) -> dict[str, str]:
        return dict(self.headers)


def header_values(
    records: Iterable[Record], names: tuple[str, ...]
) -> Iterator[tuple[str | None, ...]]:
    """For each record, its values of ``names`` (None where it has none), as
    ``rec.get(name)`` gives them.

    Read by position: the records the parser's fast path makes share one header layout
    per entity, so each name is looked up once per layout, not once per record (the
    hub's index rows for a 1,000-record bundle: 1.3 -> ~0.5 ms)."""
    if len(names) < 2:
        raise ValueError("header_values needs two names or more")
    layouts: dict[int, tuple[Mapping[str, int], itemgetter[tuple[str | None, ...]]]] = {}
    end = (None,)
    for rec in records:
        index = rec._index
        layout = layouts.get(id(index))
        if layout is None or layout[0] is not index:
            # a name the layout lacks reads the None appended past the end; the
            # layout is held, so its id cannot be reused by another while we run
            past = len(rec._values)
            layout = (index, itemgetter(*[index.get(name, past) for name in names]))
            layouts[id(index)] = layout
        yield layout[1](rec._values + end)


def record_path(entity: str, record_id: str) -> str:
    """Path of a schema-2 record inside a bundle: ``<entity>s/<id>.sync.txt``."""
    return f"{entity}s/{record_id}.sync.txt"


def render_record(rec: Record) -> bytes:
    """Canonical bytes of a record."""
    raw = rec._raw
    if raw is not None:
        return raw
    head = "\n".join(f"{name}: {value}" for name, value in rec.headers)
    return f"{head}\n\n{rec.body}".encode()
