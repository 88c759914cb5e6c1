"""The built-in SIS's store: OneRoster objects in SQLite (a file or memory), queried as the API asks.

Canonical content is the 1.2 wire form of each object (what `spec_for("1.2").to_wire` produces),
one table per entity kind, as compact JSON text. Every GUIDRef is stored complete (`type` filled
in) with an href relative to the OneRoster root, e.g. `/rostering/v1p2/orgs/org-sch-001`, whatever
href it arrived with: the server serves hrefs under the root it is reached on. In the stored
text such an href is written `"\\/rostering/...`: a JSON escape of "/" that Python's json module
never writes, so `absolute_hrefs` can root every href of a page of stored text with one string
replacement, exactly, without decoding and re-encoding it (the fast path of a 1.2 page).

Relationships (a class's students, a teacher's classes, a term's grading periods ...) are
answered from side tables, indexed both ways: `enrollment_links` holds one row per enrolment
(its user, class, school and role: enrolments are nine records in ten of a district, and the
join behind every roster endpoint), `refs` one row per other GUIDRef an object carries (`class`,
`course`, `terms[]`, `roles[].org` with the role, ...).

Conventions a loader must know:
- A category belongs to a class when its `metadata` carries `{"classSourcedId": "<class id>"}`
  (OneRoster's CategoryDType has no class field). A category with no class is district-wide and
  listed for every class.
- Every record needs `sourcedId`; inserting a record whose sourcedId exists replaces it.

Thread-safe: one connection guarded by a lock; `iter_all` streams in batches without holding it.
Paging in the default order (insertion order) remembers where each page ended, so paging a
400,000-row collection with offset is linear, not quadratic. `bulk_load()` defers the
relationship indexes while a district is loaded, then builds them in one pass.
"""

# SQL is assembled from table names of ENTITIES and field paths checked against _FIELD_PATH and
# FIELDS; every value travels as a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

import contextlib
import functools
import json
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeGuard

from sislink.oneroster.filters import Filter, FilterSyntaxError, Predicate
from sislink.oneroster.models import ENTITY_MODELS, format_datetime
from sislink.oneroster.versions import ENTITIES as ENTITY_KINDS
from sislink.oneroster.versions import Version, spec_for

ENTITIES: tuple[str, ...] = (
    "org",
    "academicSession",
    "course",
    "class",
    "user",
    "enrollment",
    "category",
    "lineItem",
    "result",
    "scoreScale",
)
"""The entity kinds the store holds (OneRoster type names)."""

CATEGORY_CLASS_KEY = "classSourcedId"
"""Key in a category's metadata naming the class it belongs to."""

BATCH_SIZE = 5000

# Fields that hold arrays: a filter or sort on them (or below them) looks inside each element.
_ARRAY_FIELDS = frozenset(
    {
        "terms",
        "roles",
        "children",
        "userIds",
        "agents",
        "grades",
        "subjects",
        "subjectCodes",
        "periods",
        "scoreScaleValue",
        "resources",
        "userProfiles",
        "learningObjectiveSet",
    }
)
_NUMERIC_FIELDS = frozenset({"score", "resultValueMin", "resultValueMax", "weight"})
_DATETIME_FIELDS = frozenset({"assignDate", "dueDate"})
_COLUMNS = {"sourcedId": "t.sourced_id", "status": "t.status", "dateLastModified": "t.modified"}
# Fields 1.2 defines beyond what the models carry; filtering on them is valid (matches nothing).
_EXTRA_FIELDS: dict[str, frozenset[str]] = {
    "user": frozenset(
        {
            "userMasterIdentifier",
            "preferredMiddleName",
            "preferredLastName",
            "pronouns",
            "userProfiles",
            "resources",
        }
    ),
    "class": frozenset({"subjectCodes", "resources"}),
    "course": frozenset({"subjectCodes", "resources"}),
    "lineItem": frozenset({"academicSession", "learningObjectiveSet"}),
    "result": frozenset({"learningObjectiveSet", "inProgress", "incomplete"}),
}


STORED_FORM = 2
"""Version of the stored form (SQLite's user_version). 0: hrefs kept as they arrived; 2: hrefs
relative to the OneRoster root, written `"\\/...`, and enrolments' links in a table of their own.
Opening an older file rewrites its records."""


_REF_INDEXES = {
    # "Who points at X through field F (with role R)": relationship endpoints; covering.
    "refs_target": "CREATE INDEX IF NOT EXISTS refs_target "
    "ON refs(entity, field, target, sourced_id, role)",
    # "What does X point at": dropping a replaced record's refs.
    "refs_owner": "CREATE INDEX IF NOT EXISTS refs_owner ON refs(entity, sourced_id)",
    # A class's members, a user's classes (covering, with the role), a school's enrolments.
    "enrollment_links_class": "CREATE INDEX IF NOT EXISTS enrollment_links_class "
    "ON enrollment_links(class_id, role, user_id)",
    "enrollment_links_user": "CREATE INDEX IF NOT EXISTS enrollment_links_user "
    "ON enrollment_links(user_id, role, class_id)",
    "enrollment_links_school": "CREATE INDEX IF NOT EXISTS enrollment_links_school "
    "ON enrollment_links(school_id)",
}

_LINK_COLUMNS = {"user": "user_id", "class": "class_id", "school": "school_id"}
"""An enrolment's GUIDRef fields and their columns in `enrollment_links`."""


class UnknownEntityError(KeyError):
    """An entity kind the store does not hold."""


def _fields_of(entity: str) -> frozenset[str]:
    model = ENTITY_MODELS[entity]
    names = {info.alias or name for name, info in model.model_fields.items()}
    return frozenset(names) | _EXTRA_FIELDS.get(entity, frozenset())


FIELDS: dict[str, frozenset[str]] = {entity: _fields_of(entity) for entity in ENTITIES}
"""The top-level wire fields of each entity (what filter, sort and fields may name)."""


# ---- the stored form ------------------------------------------------------------------------

_SPEC_1_2 = spec_for(Version.V1_2)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_HREF_PREFIX = {name: _SPEC_1_2.href("", name, "") for name in ENTITY_KINDS}
"""The root-relative href of each GUIDRef type, less the sourcedId: `/rostering/v1p2/orgs/`."""
_STORED_HREF = '"\\/'
"""How a stored href begins in the JSON text (its opening quote and an escaped "/")."""


def _learn_ref_fields() -> dict[str, dict[str, str]]:
    """Per entity, the fields whose GUIDRefs the wire rebuilds, with the type each one defaults
    to: asked of `VersionSpec.reshape` itself, so that the stored form and the wire agree."""
    candidates = set().union(*FIELDS.values(), {"parent", "children"}) - {"roles"}
    learned: dict[str, dict[str, str]] = {}
    for entity in ENTITIES:
        probe: dict[str, Any] = {name: {"sourcedId": "probe"} for name in sorted(candidates)}
        _SPEC_1_2.reshape(probe, entity, "")
        learned[entity] = {
            name: str(ref["type"])
            for name, ref in probe.items()
            if isinstance(ref, dict) and "href" in ref
        }
    return learned


_REF_FIELDS = _learn_ref_fields()
_ROLE_ORG_TYPE = str(
    _SPEC_1_2.reshape({"roles": [{"org": {"sourcedId": "probe"}}]}, "user", "")["roles"][0]["org"][
        "type"
    ]
)

RefRow = tuple[str, str, str, str, str | None]
"""A row of the `refs` side table: (entity, field, target sourcedId, owner sourcedId, role)."""


def stored_text(entity: str, record: dict[str, Any]) -> tuple[str, list[RefRow]]:
    """A record's stored JSON text and its `refs` rows. The record itself is left as it is.

    The text is what `json.dumps(record, ensure_ascii=False, separators=(",", ":"))` would give
    once every GUIDRef is complete: its type filled in when missing, its href (replaced, or
    added last) relative to the root and written `"\\/...`. It is assembled here, field by
    field, from values the json module encodes: nothing is searched or replaced afterwards, so
    no string in the record can be taken for an href; and a GUIDRef is encoded once per shape
    and target, since a district's enrolments name the same classes thousands of times.
    """
    owner = str(record.get("sourcedId"))
    ref_fields = _REF_FIELDS[entity]
    parts: list[str] = []
    refs: list[RefRow] = []
    role = record.get("role") if entity == "enrollment" else None
    ref_role = role if isinstance(role, str) else None
    listed = False  # only lists (terms, children, roles ...) can name a target twice
    for name, value in record.items():
        if not isinstance(name, str):
            raise ValueError(f"A {entity} record has a field named {name!r}; names are text")
        if type(value) is str:  # most fields: first, and quickly
            parts.append(f"{_encode(name)}:{_encode(value)}")
            continue
        default_type = ref_fields.get(name)
        if default_type is not None and _is_ref(value):
            text = _ref_text(entity, name, value, default_type)
            refs.append((entity, name, str(value["sourcedId"]), owner, ref_role))
        elif default_type is not None and isinstance(value, list) and any(map(_is_ref, value)):
            listed = True
            items = []
            for item in value:
                if _is_ref(item):
                    items.append(_ref_text(entity, name, item, default_type))
                    refs.append((entity, name, str(item["sourcedId"]), owner, ref_role))
                else:
                    items.append(_encode(item))
            text = f"[{','.join(items)}]"
        elif name == "roles" and entity == "user" and isinstance(value, list):
            listed = True
            items = []
            for item in value:
                org = item.get("org") if isinstance(item, dict) else None
                if not isinstance(item, dict) or not _is_ref(org):
                    items.append(_encode(item))
                    continue
                org_text = _ref_text(entity, "roles.org", org, _ROLE_ORG_TYPE)
                items.append(_object_text(item, {"org": org_text}))
                given = item.get("role")
                refs.append(
                    (
                        entity,
                        "roles.org",
                        str(org["sourcedId"]),
                        owner,
                        given if isinstance(given, str) else None,
                    )
                )
            text = f"[{','.join(items)}]"
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            # grades, subjects, periods: strings encode fast one by one, a list call does not.
            text = f"[{','.join(map(_encode, value))}]"
        else:
            text = _encode(value)
        parts.append(f"{_encode(name)}:{text}")
    if entity == "category":
        metadata = record.get("metadata")
        if isinstance(metadata, dict) and metadata.get(CATEGORY_CLASS_KEY):
            refs.append((entity, "class", str(metadata[CATEGORY_CLASS_KEY]), owner, None))
    # One row per (field, target, role): a user with two roles at one org keeps both.
    return f"{{{','.join(parts)}}}", list(dict.fromkeys(refs)) if listed else refs


_encode = _ENCODER.encode


def _is_ref(value: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and "sourcedId" in value


def _ref_text(entity: str, name: str, ref: dict[str, Any], default_type: str) -> str:
    """The stored text of one GUIDRef: as given, with its type and its relative href."""
    ref_type = ref.get("type") or default_type
    if ref_type not in _HREF_PREFIX:
        raise ValueError(
            f"A {entity} record's {name} points at type {ref_type!r}, which is not a "
            f"OneRoster type; use one of: {', '.join(ENTITY_KINDS)}"
        )
    sourced_id = ref["sourcedId"]
    if isinstance(sourced_id, str) and ref.keys() <= _PLAIN_REF_KEYS:
        return _plain_ref_text(tuple(ref), ref_type, sourced_id)
    completed = dict(ref)
    completed["type"] = ref_type
    return _object_text(completed, {"href": _href_text(ref_type, str(sourced_id))})


_PLAIN_REF_KEYS = frozenset({"sourcedId", "type", "href"})


@functools.lru_cache(maxsize=65536)
def _plain_ref_text(keys: tuple[str, ...], ref_type: str, sourced_id: str) -> str:
    """A GUIDRef with no fields beyond sourcedId, type and href, its keys in the given order."""
    completed: dict[str, Any] = dict.fromkeys(keys)
    completed["sourcedId"] = sourced_id
    completed["type"] = ref_type
    return _object_text(completed, {"href": _href_text(ref_type, sourced_id)})


def _href_text(ref_type: str, sourced_id: str) -> str:
    # `"\\/rostering/v1p2/orgs/` + the encoded id: the escaped "/" decodes to the "/" it is.
    return f'"\\{_HREF_PREFIX[ref_type]}{_encode(sourced_id)[1:]}'


def _object_text(obj: dict[str, Any], texts: dict[str, str]) -> str:
    """`obj` encoded as the json module would, but with the keys of `texts` taking the
    already-encoded values given there (in their place, or appended when `obj` lacks them)."""
    if not all(isinstance(k, str) for k in obj):
        raise ValueError(f"An object in a GUIDRef field has a field name that is not text: {obj!r}")
    parts = [f"{_encode(k)}:{texts[k] if k in texts else _encode(v)}" for k, v in obj.items()]
    parts += [f"{_encode(k)}:{text}" for k, text in texts.items() if k not in obj]
    return f"{{{','.join(parts)}}}"


def absolute_hrefs(json_text: str, root_url: str) -> str:
    """Stored JSON text (one record, or a body assembled from records) with every GUIDRef href
    under `root_url`, e.g. `http://host/ims/oneroster`: the 1.2 wire text of those records."""
    root = json.dumps(root_url.rstrip("/"), ensure_ascii=False)[1:-1]
    return json_text.replace(_STORED_HREF, f'"{root}/')


_CANONICAL_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@functools.lru_cache(maxsize=1024)  # a district's records share a few dateLastModified values
def normalise_datetime(text: str) -> str:
    """A filter's date-time (or date) value in the stored form, `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    value = text.strip()
    if _CANONICAL_DATETIME.fullmatch(value):
        return value
    if len(value) == 10:
        value += "T00:00:00Z"
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise FilterSyntaxError(
            f"{text!r} is not a date-time; write it as ISO 8601, e.g. 2026-01-01T00:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return format_datetime(parsed)


@dataclass(frozen=True)
class Condition:
    """A piece of WHERE clause over the entity table aliased `t`, with its parameters."""

    sql: str
    params: tuple[Any, ...] = ()


@dataclass
class Page:
    """One page of a query: the records and how many match in all."""

    records: list[dict[str, Any]]
    total: int


@dataclass
class TextPage:
    """One page of a query as stored JSON texts (see `absolute_hrefs`), and how many match."""

    texts: list[str]
    total: int


@dataclass
class _Query:
    entity: str
    where: list[Condition] = field(default_factory=list)


LinkRow = tuple[str, str | None, str | None, str | None, str | None]
"""A row of `enrollment_links`: (enrolment sourcedId, user, class, school, role)."""


@dataclass
class _Prepared:
    """A batch ready for SQLite: entity-table rows (sourcedId, status, modified, text), refs
    rows and, for enrolments, their links."""

    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    ref_rows: list[RefRow] = field(default_factory=list)
    link_rows: list[LinkRow] = field(default_factory=list)


def _prepare(entity: str, batch: Sequence[dict[str, Any]]) -> _Prepared:
    # The last record wins when a batch names one sourcedId twice.
    by_id: dict[str, dict[str, Any]] = {}
    for record in batch:
        sourced_id = record.get("sourcedId")
        if not isinstance(sourced_id, str) or not sourced_id:
            raise ValueError(f"A {entity} record has no sourcedId: {record!r:.200}")
        by_id[sourced_id] = record
    prepared = _Prepared()
    now = format_datetime(datetime.now(UTC))
    for sourced_id, record in by_id.items():
        text, refs = stored_text(entity, record)
        prepared.rows.append(
            (
                sourced_id,
                record.get("status", "active"),
                normalise_datetime(record.get("dateLastModified") or now),
                text,
            )
        )
        if entity == "enrollment":
            # An enrolment's user, class and school go to its link row (one each: a repeated
            # field's last one); any other GUIDRef it carries goes to refs.
            link = dict.fromkeys(_LINK_COLUMNS, None)
            for row in refs:
                if row[1] in link:
                    link[row[1]] = row[2]
                else:
                    prepared.ref_rows.append(row)
            role = record.get("role")
            prepared.link_rows.append(
                (
                    sourced_id,
                    link["user"],
                    link["class"],
                    link["school"],
                    role if isinstance(role, str) else None,
                )
            )
        else:
            prepared.ref_rows += refs
    return prepared


def _batches(records: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class ProviderStore:
    """OneRoster objects by entity kind, in SQLite. `path=None` keeps them in memory."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            ":memory:" if path is None else str(path),
            check_same_thread=False,
            isolation_level=None,  # transactions are explicit
        )
        self._db.execute(
            "PRAGMA journal_mode=WAL" if path is not None else "PRAGMA journal_mode=MEMORY"
        )
        self._db.execute("PRAGMA synchronous=OFF")  # a sandbox: speed over durability
        self._db.execute("PRAGMA temp_store=MEMORY")
        self._db.execute("PRAGMA cache_size=-65536")
        self._cursors: OrderedDict[tuple[Any, ...], int] = OrderedDict()
        self._totals: OrderedDict[tuple[Any, ...], int] = OrderedDict()
        self._bulk_loads = 0
        self._create_schema()
        self._upgrade_stored_form()

    # ---- schema ----------------------------------------------------------------------------

    def _create_schema(self) -> None:
        with self._lock:
            for entity in ENTITIES:
                table = _table(entity)
                self._db.execute(
                    f"CREATE TABLE IF NOT EXISTS {table} ("
                    "seq INTEGER PRIMARY KEY, sourced_id TEXT NOT NULL UNIQUE, "
                    "status TEXT NOT NULL, modified TEXT NOT NULL, data TEXT NOT NULL)"
                )
                self._db.execute(
                    f"CREATE INDEX IF NOT EXISTS {table}_modified ON {table}(modified)"
                )
            # One row per (owner, field, target, role): writes drop an owner's old rows first. Its
            # indexes are kept apart so that `bulk_load` can build them once, after the rows.
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS refs (entity TEXT NOT NULL, field TEXT NOT NULL, "
                "target TEXT NOT NULL, sourced_id TEXT NOT NULL, role TEXT)"
            )
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS enrollment_links (sourced_id TEXT PRIMARY KEY, "
                "user_id TEXT, class_id TEXT, school_id TEXT, role TEXT) WITHOUT ROWID"
            )
            if not self._bulk_loads:
                self._create_ref_indexes()

    def _create_ref_indexes(self) -> None:
        for sql in _REF_INDEXES.values():
            self._db.execute(sql)

    @contextlib.contextmanager
    def bulk_load(self) -> Iterator[None]:
        """Write many records faster: the relationship indexes are dropped meanwhile and built
        in one pass at the end. Meanwhile relationship queries, and replacing records, are slow."""
        with self._lock:
            if not self._bulk_loads:
                for name in _REF_INDEXES:
                    self._db.execute(f"DROP INDEX IF EXISTS {name}")
            self._bulk_loads += 1
        try:
            yield
        finally:
            with self._lock:
                self._bulk_loads -= 1
                if not self._bulk_loads:
                    # Sort in temporary files, not memory: a district's million refs would
                    # otherwise double the process's peak memory.
                    self._db.execute("PRAGMA temp_store=FILE")
                    self._create_ref_indexes()
                    self._db.execute("PRAGMA temp_store=MEMORY")

    def _upgrade_stored_form(self) -> None:
        """Rewrite the records of a file written by an older sislink into the current form."""
        with self._lock:
            (form,) = self._db.execute("PRAGMA user_version").fetchone()
        if form >= STORED_FORM:
            return
        with self._lock:
            # Rewriting every record fills the relationship tables afresh (form 0's refs had a
            # primary key and held enrolments' links too).
            self._db.execute("DROP TABLE refs")
            self._db.execute("DROP TABLE enrollment_links")
            self._create_schema()
        for entity in ENTITIES:
            # Rewriting keeps each record's place (seq): iter_all's batches stay valid.
            self.insert_many(entity, self.iter_all(entity))
        with self._lock:
            self._db.execute(f"PRAGMA user_version = {STORED_FORM:d}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> ProviderStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing ---------------------------------------------------------------------------

    def insert_many(self, entity: str, records: Iterable[dict[str, Any]]) -> int:
        """Insert (or replace, by sourcedId) records in batches, each committed on its own;
        returns how many were written."""
        _check(entity)
        return sum(
            self._write_prepared(entity, _prepare(entity, batch))
            for batch in _batches(records, BATCH_SIZE)
        )

    def put(self, entity: str, record: dict[str, Any]) -> bool:
        """Insert or replace one record; True when it was created, False when it replaced one."""
        _check(entity)
        with self._lock:
            existed = self._exists(entity, str(record["sourcedId"]))
            self._write_batch(entity, [record])
        return not existed

    def delete(self, entity: str, sourced_id: str) -> bool:
        """Remove a record; True when there was one."""
        _check(entity)
        with self._lock:
            self._db.execute("BEGIN")
            try:
                cursor = self._db.execute(
                    f"DELETE FROM {_table(entity)} WHERE sourced_id = ?", (sourced_id,)
                )
                self._db.execute(
                    "DELETE FROM refs WHERE entity = ? AND sourced_id = ?", (entity, sourced_id)
                )
                if entity == "enrollment":
                    self._db.execute(
                        "DELETE FROM enrollment_links WHERE sourced_id = ?", (sourced_id,)
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._forget_cursors()
            return cursor.rowcount > 0

    def _write_batch(self, entity: str, batch: Sequence[dict[str, Any]]) -> int:
        return self._write_prepared(entity, _prepare(entity, batch))

    def _write_prepared(self, entity: str, prepared: _Prepared) -> int:
        table = _table(entity)
        with self._lock:
            self._db.execute("BEGIN")
            try:
                # Only replaced records have old refs to drop (a fresh load skips the deletes).
                replaced = self._db.execute(
                    f"SELECT sourced_id FROM {table} WHERE sourced_id IN "
                    "(SELECT value FROM json_each(?))",
                    (json.dumps([row[0] for row in prepared.rows]),),
                ).fetchall()
                self._db.executemany(
                    "DELETE FROM refs WHERE entity = ? AND sourced_id = ?",
                    [(entity, sourced_id) for (sourced_id,) in replaced],
                )
                self._db.executemany(
                    f"INSERT INTO {table} (sourced_id, status, modified, data) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT(sourced_id) DO UPDATE SET "
                    "status = excluded.status, modified = excluded.modified, data = excluded.data",
                    prepared.rows,
                )
                self._db.executemany(
                    "INSERT INTO refs (entity, field, target, sourced_id, role) "
                    "VALUES (?, ?, ?, ?, ?)",
                    prepared.ref_rows,
                )
                self._db.executemany(
                    "INSERT OR REPLACE INTO enrollment_links "
                    "(sourced_id, user_id, class_id, school_id, role) VALUES (?, ?, ?, ?, ?)",
                    prepared.link_rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._forget_cursors()
        return len(prepared.rows)

    def _forget_cursors(self) -> None:
        self._cursors.clear()
        self._totals.clear()

    # ---- reading ---------------------------------------------------------------------------

    def get(self, entity: str, sourced_id: str) -> dict[str, Any] | None:
        _check(entity)
        with self._lock:
            row = self._db.execute(
                f"SELECT data FROM {_table(entity)} WHERE sourced_id = ?", (sourced_id,)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def exists(self, entity: str, sourced_id: str) -> bool:
        _check(entity)
        with self._lock:
            return self._exists(entity, sourced_id)

    def _exists(self, entity: str, sourced_id: str) -> bool:
        row = self._db.execute(
            f"SELECT 1 FROM {_table(entity)} WHERE sourced_id = ?", (sourced_id,)
        ).fetchone()
        return row is not None

    def count(self, entity: str) -> int:
        _check(entity)
        with self._lock:
            (n,) = self._db.execute(f"SELECT COUNT(*) FROM {_table(entity)}").fetchone()
        return int(n)

    def iter_all(self, entity: str) -> Iterator[dict[str, Any]]:
        """Every record of a kind in insertion order, read in batches (constant memory)."""
        _check(entity)
        last = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT seq, data FROM {_table(entity)} WHERE seq > ? ORDER BY seq LIMIT ?",
                    (last, BATCH_SIZE),
                ).fetchall()
            if not rows:
                return
            for seq, data in rows:
                last = seq
                yield json.loads(data)

    def query(
        self,
        entity: str,
        *,
        conditions: Sequence[Condition] = (),
        filter: Filter | None = None,
        sort: str | None = None,
        descending: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        """One page of records matching the conditions and the filter, with the total count.

        Raises FilterSyntaxError when the filter or sort names a field the entity lacks, or a
        value does not fit its field (a date-time, a number).
        """
        texts, total = self._page(entity, conditions, filter, sort, descending, limit, offset)
        return Page([json.loads(text) for text in texts], total)

    def query_text(
        self,
        entity: str,
        *,
        conditions: Sequence[Condition] = (),
        filter: Filter | None = None,
        sort: str | None = None,
        descending: bool = False,
        limit: int = 100,
        offset: int = 0,
    ) -> TextPage:
        """`query`, with each record as its stored JSON text instead of a dict (nothing decoded)."""
        texts, total = self._page(entity, conditions, filter, sort, descending, limit, offset)
        return TextPage(texts, total)

    def _page(
        self,
        entity: str,
        conditions: Sequence[Condition],
        filter: Filter | None,
        sort: str | None,
        descending: bool,
        limit: int,
        offset: int,
    ) -> tuple[list[str], int]:
        _check(entity)
        where = list(conditions)
        if filter is not None:
            where.append(filter_condition(entity, filter))
        where_sql = " AND ".join(f"({c.sql})" for c in where) or "1"
        params: tuple[Any, ...] = tuple(p for c in where for p in c.params)
        table = _table(entity)
        if sort:
            order_sql, order_params = _sort_expression(entity, sort)
            direction = "DESC" if descending else "ASC"
            order = f"ORDER BY {order_sql} {direction}, t.seq {direction}"
        else:
            order_params = ()
            order = "ORDER BY t.seq DESC" if descending else "ORDER BY t.seq"
        key = (entity, where_sql, params, sort, descending)
        with self._lock:
            total = self._totals.get(key)
            if total is None:
                (total,) = self._db.execute(
                    f"SELECT COUNT(*) FROM {table} t WHERE {where_sql}", params
                ).fetchone()
                _remember(self._totals, key, total)
            after = self._cursors.get((*key, offset)) if not sort and offset else None
            if after is not None:
                comparison = "<" if descending else ">"
                rows = self._db.execute(
                    f"SELECT t.seq, t.data FROM {table} t WHERE {where_sql} AND t.seq {comparison} ? "
                    f"{order} LIMIT ?",
                    (*params, after, limit),
                ).fetchall()
            else:
                rows = self._db.execute(
                    f"SELECT t.seq, t.data FROM {table} t WHERE {where_sql} {order} LIMIT ? OFFSET ?",
                    (*params, *order_params, limit, offset),
                ).fetchall()
            if rows and not sort:
                _remember(self._cursors, (*key, offset + len(rows)), rows[-1][0])
        return [data for _, data in rows], int(total)

    # ---- conditions for relationship endpoints ---------------------------------------------

    @staticmethod
    def referencing(entity: str, ref_field: str, target: str) -> Condition:
        """Objects whose GUIDRef field (`class`, `school`, `terms`, `parent`, `roles.org` ...)
        points at `target`."""
        table, owner, pointer, where, params = _ref_source(entity, ref_field)
        return Condition(
            f"t.sourced_id IN (SELECT {owner} FROM {table} WHERE {where} AND {pointer} = ?)",
            (*params, target),
        )

    @staticmethod
    def referencing_nothing(entity: str, ref_field: str) -> Condition:
        """Objects that carry no GUIDRef in `ref_field` (e.g. district-wide categories)."""
        table, owner, pointer, where, params = _ref_source(entity, ref_field)
        return Condition(
            f"t.sourced_id NOT IN (SELECT {owner} FROM {table} WHERE {where} "
            f"AND {pointer} IS NOT NULL)",
            params,
        )

    @staticmethod
    def with_role(roles: Sequence[str], org: str | None = None) -> Condition:
        """Users holding one of `roles` (at `org`, when given)."""
        marks = ",".join("?" * len(roles))
        if org is None:
            return Condition(
                "t.sourced_id IN (SELECT sourced_id FROM refs WHERE entity = 'user' "
                f"AND field = 'roles.org' AND role IN ({marks}))",
                tuple(roles),
            )
        return Condition(
            "t.sourced_id IN (SELECT sourced_id FROM refs WHERE entity = 'user' "
            f"AND field = 'roles.org' AND target = ? AND role IN ({marks}))",
            (org, *roles),
        )

    @staticmethod
    def enrolled_in(class_id: str, roles: Sequence[str] | None = None) -> Condition:
        """Users enrolled in a class (with one of `roles`, when given)."""
        role_sql, role_params = _role_clause("role", roles)
        return Condition(
            f"t.sourced_id IN (SELECT user_id FROM enrollment_links WHERE class_id = ?{role_sql})",
            (class_id, *role_params),
        )

    @staticmethod
    def classes_of(user_id: str, roles: Sequence[str] | None = None) -> Condition:
        """Classes a user is enrolled in (with one of `roles`, when given)."""
        role_sql, role_params = _role_clause("role", roles)
        return Condition(
            f"t.sourced_id IN (SELECT class_id FROM enrollment_links WHERE user_id = ?{role_sql})",
            (user_id, *role_params),
        )

    @staticmethod
    def field_equals(entity: str, name: str, value: str) -> Condition:
        """A top-level field equals a value (e.g. academicSession type = 'term')."""
        return filter_condition(entity, Filter(Predicate(name, "=", value)))

    @staticmethod
    def any_of(*conditions: Condition) -> Condition:
        return Condition(
            " OR ".join(f"({c.sql})" for c in conditions),
            tuple(p for c in conditions for p in c.params),
        )

    @staticmethod
    def sub_select(entity: str, conditions: Sequence[Condition]) -> str:
        """SQL selecting the sourcedIds of `entity` matching conditions (for nesting)."""
        where = " AND ".join(f"({c.sql})" for c in conditions) or "1"
        return f"SELECT t.sourced_id FROM {_table(entity)} t WHERE {where}"

    @staticmethod
    def referencing_any(
        entity: str, ref_field: str, of_entity: str, conditions: Sequence[Condition]
    ) -> Condition:
        """Objects whose `ref_field` points at any `of_entity` matching `conditions`
        (e.g. results whose lineItem belongs to a class)."""
        inner = ProviderStore.sub_select(of_entity, conditions)
        table, owner, pointer, where, params = _ref_source(entity, ref_field)
        return Condition(
            f"t.sourced_id IN (SELECT {owner} FROM {table} WHERE {where} "
            f"AND {pointer} IN ({inner}))",
            (*params, *(p for c in conditions for p in c.params)),
        )

    @staticmethod
    def referenced_by(
        entity: str, of_entity: str, ref_field: str, conditions: Sequence[Condition]
    ) -> Condition:
        """Objects that some `of_entity` matching `conditions` points at through `ref_field`
        (e.g. the terms that a school's classes use)."""
        inner = ProviderStore.sub_select(of_entity, conditions)
        table, owner, pointer, where, params = _ref_source(of_entity, ref_field)
        return Condition(
            f"t.sourced_id IN (SELECT {pointer} FROM {table} WHERE {where} "
            f"AND {owner} IN ({inner}))",
            (*params, *(p for c in conditions for p in c.params)),
        )


def _ref_source(entity: str, ref_field: str) -> tuple[str, str, str, str, tuple[str, ...]]:
    """Where the GUIDRefs of `entity`'s `ref_field` are kept: (table, owner column, target
    column, WHERE clause that picks them, its parameters)."""
    if entity == "enrollment" and ref_field in _LINK_COLUMNS:
        return "enrollment_links", "sourced_id", _LINK_COLUMNS[ref_field], "1", ()
    return "refs", "sourced_id", "target", "entity = ? AND field = ?", (entity, ref_field)


def _remember(cache: OrderedDict[tuple[Any, ...], int], key: tuple[Any, ...], value: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > 512:
        cache.popitem(last=False)


def _role_clause(column: str, roles: Sequence[str] | None) -> tuple[str, tuple[str, ...]]:
    if not roles:
        return "", ()
    return f" AND {column} IN ({','.join('?' * len(roles))})", tuple(roles)


def _check(entity: str) -> None:
    if entity not in FIELDS:
        raise UnknownEntityError(f"The store holds no {entity!r}; kinds: {', '.join(ENTITIES)}")


def _table(entity: str) -> str:
    return f"e_{entity}"


_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def check_field(entity: str, path: str) -> None:
    """Raise FilterSyntaxError unless `path` (maybe dotted) names a field of `entity`."""
    _check_field_path(entity, path)


def _check_field_path(entity: str, path: str) -> list[str]:
    if not _FIELD_PATH.fullmatch(path):
        raise FilterSyntaxError(f"{path!r} is not a field name; use letters, digits and dots")
    parts = path.split(".")
    if parts[0] not in FIELDS[entity] and parts[0] != "metadata":
        known = ", ".join(sorted(FIELDS[entity]))
        raise FilterSyntaxError(f"{entity} has no field {parts[0]!r}; its fields are: {known}")
    return parts


def _sort_expression(entity: str, sort: str) -> tuple[str, tuple[Any, ...]]:
    parts = _check_field_path(entity, sort)
    if sort in _COLUMNS:
        return _COLUMNS[sort], ()
    if parts[0] in _ARRAY_FIELDS:
        rest = "$" + "".join(f".{p}" for p in parts[1:]) if len(parts) > 1 else "$"
        return (
            f"(SELECT MIN(json_extract(je.value, '{rest}')) FROM json_each(t.data, '$.{parts[0]}') je)",
            (),
        )
    return f"json_extract(t.data, '$.{sort}')", ()


def filter_condition(entity: str, parsed: Filter) -> Condition:
    """SQL for a parsed OneRoster filter over entity table `t`."""
    first = _predicate(entity, parsed.first)
    if parsed.second is None:
        return first
    second = _predicate(entity, parsed.second)
    return Condition(f"({first.sql}) {parsed.join} ({second.sql})", (*first.params, *second.params))


def _predicate(entity: str, predicate: Predicate) -> Condition:
    parts = _check_field_path(entity, predicate.field)
    value: Any = predicate.value
    top = parts[0]
    if predicate.field in _COLUMNS:
        subject = _COLUMNS[predicate.field]
        if predicate.field == "dateLastModified":
            value = normalise_datetime(value)
        return _compare(subject, predicate.op, value)
    if top in _NUMERIC_FIELDS and len(parts) == 1 and predicate.op != "~":
        try:
            value = float(value)
        except ValueError:
            raise FilterSyntaxError(
                f"{predicate.field} is a number; {predicate.value!r} is not one"
            ) from None
    elif top in _DATETIME_FIELDS and len(parts) == 1 and predicate.op != "~":
        value = normalise_datetime(value)
    if top in _ARRAY_FIELDS:
        rest = "$" + "".join(f".{p}" for p in parts[1:])
        subject = "je.value" if len(parts) == 1 else f"json_extract(je.value, '{rest}')"
        if predicate.op == "!=":
            inner = _compare(subject, "=", value)
            return Condition(
                f"NOT EXISTS (SELECT 1 FROM json_each(t.data, '$.{top}') je WHERE {inner.sql})",
                inner.params,
            )
        inner = _compare(subject, predicate.op, value)
        return Condition(
            f"EXISTS (SELECT 1 FROM json_each(t.data, '$.{top}') je WHERE {inner.sql})",
            inner.params,
        )
    return _compare(f"json_extract(t.data, '$.{predicate.field}')", predicate.op, value)


def _compare(subject: str, op: str, value: Any) -> Condition:
    if op == "~":
        return Condition(f"instr(lower(CAST({subject} AS TEXT)), lower(?)) > 0", (str(value),))
    if op == "!=":
        return Condition(f"({subject} IS NULL OR {subject} != ?)", (value,))
    return Condition(f"{subject} {op} ?", (value,))
