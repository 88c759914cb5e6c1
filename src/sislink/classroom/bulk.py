"""Bulk upserts of roster rows keyed by SIS sourcedId, with created/updated/unchanged counts.

The roster import writes up to hundreds of thousands of rows in batches. Each batch is one
fetch of the rows it names, a comparison in Python, then one multi-row INSERT for new rows
and one executemany UPDATE for changed rows: an unchanged re-import only reads. The same
code runs on SQLite and PostgreSQL, and the counts are exact (the import report shows them).

Rows that cannot be written (a reference that was not imported, an email another person
already uses) are not written and come back in `UpsertCounts.skipped` with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    BindParameter,
    Boolean,
    ColumnElement,
    Connection,
    DateTime,
    Float,
    Integer,
    String,
    Table,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSON as JSON_PG
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from sislink.classroom.models import (
    ApiToken,
    Class,
    Course,
    Enrolment,
    EnrolmentRole,
    GradingPeriod,
    LoginAccount,
    Person,
    Role,
    School,
    Term,
)

# Bound parameters per statement stay well under SQLite's limit (32766) at this batch size.
LOOKUP_CHUNK = 5000
# ANALYZE a PostgreSQL table after an insert when the batch is at least 1/4 of its known size.
ANALYZE_WHEN_BATCH_EXCEEDS = 4


@dataclass(frozen=True, slots=True)
class SkippedRow:
    """A row that was not written, and why (in words for the import report)."""

    sourced_id: str
    reason: str


# As many as an import report lists as examples of one kind of change.
CREATED_IDS_KEPT = 5


@dataclass(slots=True)
class UpsertCounts:
    """What one upsert did: rows created, updated, unchanged, and skipped with a reason."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[SkippedRow] = field(default_factory=list)
    # A person re-numbered by the SIS: (old SIS id, new SIS id) of each row taken over.
    taken_over: list[tuple[str, str]] = field(default_factory=list)
    # Rows not written, to be given again once the whole import is known (`defer_held`).
    deferred: list[Any] = field(default_factory=list)
    # The SIS ids of the first rows created (CREATED_IDS_KEPT at most): what an import report
    # shows as examples, told by the upsert itself instead of looked up before it.
    created_ids: list[str] = field(default_factory=list)

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.created + other.created,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
            [*self.skipped, *other.skipped],
            [*self.taken_over, *other.taken_over],
            [*self.deferred, *other.deferred],
            [*self.created_ids, *other.created_ids][:CREATED_IDS_KEPT],
        )

    def note_created(self, sourced_id: str) -> None:
        self.created += 1
        if len(self.created_ids) < CREATED_IDS_KEPT:
            self.created_ids.append(sourced_id)

    @property
    def written(self) -> int:
        return self.created + self.updated


@dataclass(frozen=True, slots=True)
class SchoolRow:
    sourced_id: str
    name: str
    identifier: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class TermRow:
    sourced_id: str
    title: str
    start_date: date | None = None
    end_date: date | None = None
    school_year: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class GradingPeriodRow:
    sourced_id: str
    title: str
    term_sourced_id: str | None
    start_date: date | None = None
    end_date: date | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class CourseRow:
    sourced_id: str
    title: str
    course_code: str | None = None
    school_sourced_id: str | None = None
    active: bool = True


@dataclass(frozen=True, slots=True)
class ClassRow:
    sourced_id: str
    title: str
    section: str | None = None
    school_sourced_id: str | None = None
    term_sourced_id: str | None = None
    course_sourced_id: str | None = None
    active: bool = True


# People and enrolments are most of a district's rows (52,500 and 408,000 at 50,000
# students): their rows are named tuples, not frozen dataclasses, because a frozen dataclass
# is several times dearer to make (one object.__setattr__ per field) and to pickle (SQLite's
# import spools its pages: Python's __getstate__/__setstate__ per row), on the import's reader
# side of the GIL. Immutable and compared by value either way.
class PersonRow(NamedTuple):
    """A person from the SIS. `roles` may hold teacher and student; admin is never imported."""

    sourced_id: str
    name: str
    email: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    identifier: str | None = None
    roles: frozenset[Role] = frozenset()
    active: bool = True


class EnrolmentRow(NamedTuple):
    sourced_id: str
    class_sourced_id: str
    person_sourced_id: str
    role: EnrolmentRole
    is_primary: bool = False
    active: bool = True


ImportedModel = (
    type[School]
    | type[Term]
    | type[GradingPeriod]
    | type[Course]
    | type[Class]
    | type[Person]
    | type[Enrolment]
)


def _table(model: ImportedModel) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def normalise_email(email: str | None) -> tuple[str | None, str | None]:
    """The email as shown (trimmed) and its case-insensitive key; (None, None) when blank."""
    if email is None or not email.strip():
        return None, None
    shown = email.strip()
    return shown, shown.casefold()


# --- the shared write path ---------------------------------------------------------------


def _chunks(items: Sequence[Any], size: int = LOOKUP_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _dedupe(rows: Iterable[Any]) -> list[Any]:
    """One row per sourcedId, the last one winning (as a later line of an export would)."""
    by_id: dict[str, Any] = {}
    for row in rows:
        by_id[row.sourced_id] = row
    return list(by_id.values())


def _fetch_by(
    session: Session, table: Table, column: str, keys: Iterable[Any], columns: Sequence[str]
) -> dict[Any, dict[str, Any]]:
    """Existing rows whose `column` is one of `keys`, as plain dicts keyed by that column."""
    unique_keys = list(dict.fromkeys(keys))
    found: dict[Any, dict[str, Any]] = {}
    if not unique_keys:
        return found
    names = list(dict.fromkeys(["id", column, *columns]))
    position = names.index(column)
    connection = session.connection()
    if all(isinstance(table.c[name].type, _PLAIN_TYPES) for name in names):
        # The per-page lookups: on the driver's cursor (see _driver_rows).
        for key, row in _fetch_rows(session, table, column, unique_keys, names).items():
            found[key] = dict(zip(names, row, strict=True))
        return found
    selected = [table.c[name] for name in names]
    for chunk in _chunks(unique_keys):
        condition = _one_of(connection.dialect.name, table, column, chunk)
        for row in connection.execute(select(*selected).where(condition)).all():
            found[row[position]] = dict(zip(names, row, strict=True))
    return found


def _fetch_rows(
    session: Session, table: Table, column: str, keys: Iterable[Any], names: Sequence[str]
) -> dict[Any, tuple[Any, ...]]:
    """Existing rows whose `column` is one of `keys`, as tuples of the `names` columns (all
    of _PLAIN_TYPES) keyed by that column, read on the driver's cursor (see _driver_rows)."""
    found: dict[Any, tuple[Any, ...]] = {}
    unique_keys = list(dict.fromkeys(keys))
    if not unique_keys:
        return found
    connection = session.connection()
    position = list(names).index(column)
    sql, positional = _compiled_lookup(connection, table, column, tuple(names))
    for chunk in _chunks(unique_keys):
        keys_json = json.dumps(chunk)
        params = (keys_json,) if positional else {"keys": keys_json}
        for row in _driver_rows(connection, sql, params):
            found[row[position]] = tuple(row)
    return found


# Column types whose values the drivers return as SQLAlchemy would (SQLite's booleans come
# back as 1 and 0, which compare equal to True and False): read without SQLAlchemy's result
# processing. Dates, timestamps and JSON need it on SQLite.
_PLAIN_TYPES = (Integer, String, Boolean, Float)
# (dialect, paramstyle, table, key column, columns) -> the lookup's SQL, and whether it takes
# its one parameter by position.
_LOOKUPS: dict[tuple[str, ...], tuple[str, bool]] = {}


def _compiled_lookup(
    connection: Connection, table: Table, column: str, names: tuple[str, ...]
) -> tuple[str, bool]:
    """The SQL of `SELECT names FROM table WHERE column IN (:keys as JSON)`, compiled once."""
    dialect = connection.dialect
    cache_key = (dialect.name, str(dialect.paramstyle), table.name, column, *names)
    known = _LOOKUPS.get(cache_key)
    if known is None:
        condition = _one_of(dialect.name, table, column, [], name="keys")
        statement = select(*(table.c[name] for name in names)).where(condition)
        compiled = statement.compile(dialect=dialect)
        known = _LOOKUPS[cache_key] = (str(compiled), bool(compiled.positional))
    return known


def _driver_rows(connection: Connection, sql: str, params: Any) -> list[Any]:
    """Rows of a read run on the driver's cursor, in the session's transaction.

    Each page of an import runs a few lookups; through SQLAlchemy each costs more of the
    writer's CPU (building, cache key, execution context, result rows) than the database
    takes to answer it. Errors are raised as SQLAlchemy raises them.
    """
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    driver_error = connection.dialect.loaded_dbapi.Error
    cursor = driver_connection.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    except driver_error as exc:
        raise DBAPIError.instance(sql, params, exc, driver_error) from exc
    finally:
        cursor.close()


def _one_of(
    dialect: str, table: Table, column: str, keys: Sequence[Any], name: str | None = None
) -> ColumnElement[bool]:
    """`column IN keys` with the keys as ONE parameter: a JSON array the database unpacks.

    An IN list of thousands of parameters costs more to build and parse than the query
    takes to run; a single JSON text is cheap to send and keeps the statement cacheable.
    """
    target = table.c[column]
    as_json: BindParameter[str] = bindparam(name, json.dumps(list(keys)))
    if dialect == "postgresql":
        each_value = func.json_array_elements_text(cast(as_json, JSON_PG))
        return target.in_(select(cast(each_value, target.type)))
    each_key: ColumnElement[Any] = literal_column("value")
    return target.in_(select(each_key).select_from(func.json_each(as_json)))


class SourcedIdCache:
    """sourcedId to row id, remembered across the batches of one import.

    Enrolment batches name thousands of classes and people each; looking each one up once
    per import instead of once per batch halves the reads. Ids never change once a row
    exists, so the cache stays right while the import runs. Use one cache per import, and
    drop it if a batch is rolled back (it may hold ids of rows that batch created).
    """

    def __init__(self) -> None:
        self._known: dict[str, dict[str, int]] = {}

    def ids(
        self, session: Session, model: ImportedModel, sourced_ids: Iterable[str | None]
    ) -> dict[str, int]:
        known = self._known.setdefault(_table(model).name, {})
        wanted = [sid for sid in dict.fromkeys(sourced_ids) if sid is not None]
        unknown = [sid for sid in wanted if sid not in known]
        if unknown:
            known.update(_ids_by_sourced_id(session, model, unknown))
        return {sid: known[sid] for sid in wanted if sid in known}

    def known(
        self, session: Session, model: ImportedModel, sourced_ids: Iterable[str | None]
    ) -> Mapping[str, int]:
        """As `ids`, but every id known so far (those asked for among them): for a caller
        that only looks the asked ids up, without a dict of them made for each batch."""
        known = self._known.setdefault(_table(model).name, {})
        unknown = set(sourced_ids).difference(known)
        unknown.discard(None)
        if unknown:
            known.update(_ids_by_sourced_id(session, model, unknown))
        return known

    def forget(self, model: ImportedModel, sourced_ids: Iterable[str]) -> None:
        """Ask the database again next time: rows an import put off (`defer_held`) may have
        lost their id by then (a moved enrolment ends and gives its id to the new one)."""
        known = self._known.get(_table(model).name, {})
        for sourced_id in sourced_ids:
            known.pop(sourced_id, None)


def _ids_by_sourced_id(
    session: Session, model: ImportedModel, sourced_ids: Iterable[str | None]
) -> dict[str, int]:
    wanted = [sid for sid in dict.fromkeys(sourced_ids) if sid is not None]
    found: dict[str, int] = {}
    if not wanted:
        return found
    connection = session.connection()
    names = ("id", "sis_sourced_id")
    sql, positional = _compiled_lookup(connection, _table(model), "sis_sourced_id", names)
    for chunk in _chunks(wanted):
        keys = json.dumps(chunk)
        for row_id, sourced_id in _driver_rows(
            connection, sql, (keys,) if positional else {"keys": keys}
        ):
            found[sourced_id] = row_id
    return found


def _resolver(
    cache: SourcedIdCache | None,
) -> Callable[[Session, ImportedModel, Iterable[str | None]], dict[str, int]]:
    return _ids_by_sourced_id if cache is None else cache.ids


@dataclass(slots=True)
class _Plan:
    """Rows to insert and rows to update (each update a full set of columns plus `_id`)."""

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    counts: UpsertCounts = field(default_factory=UpsertCounts)

    def add(
        self,
        existing: Mapping[str, Any] | None,
        values: dict[str, Any],
        protected: Iterable[str] = (),
    ) -> None:
        if existing is None:
            self.inserts.append(values)
            self.counts.note_created(values["sis_sourced_id"])
            return
        for name in protected:
            if name in values:
                values[name] = existing[name]
        # One comparison of two tuples in C (a row's values are in the order of its columns).
        if itemgetter(*values)(existing) == itemgetter(*values)(values):
            self.counts.unchanged += 1
            return
        self.updates.append({"_id": existing["id"], **values})
        self.counts.updated += 1

    def skip(self, sourced_id: str, reason: str) -> None:
        self.counts.skipped.append(SkippedRow(sourced_id, reason))

    def write(self, session: Session, table: Table) -> UpsertCounts:
        connection = session.connection()
        if self.inserts:
            _insert_rows(connection, table, self.inserts)
        if self.updates:
            _update_rows(connection, table, self.updates)
        return self.counts


def _update_rows(connection: Connection, table: Table, updates: list[dict[str, Any]]) -> None:
    """Update rows by id (`_id`), each with the same columns (Core applies their onupdate)."""
    names = [name for name in updates[0] if name != "_id"]
    statement = (
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values({name: bindparam(name) for name in names})
    )
    connection.execute(statement, updates)


def _insert_rows(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows: COPY on PostgreSQL (many times faster), executemany on SQLite."""
    names = list(rows[0])
    values_of = itemgetter(*names) if len(names) > 1 else _one_value(names[0])
    _insert_values(connection, table, names, [values_of(row) for row in rows])


def insert_new_rows(
    session: Session, model: type[Any], names: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert rows that are new (no key of theirs is taken), given as tuples of the `names`
    columns' values; the other columns take their defaults, as new ORM rows would. One COPY
    on PostgreSQL, the driver's executemany on SQLite: for thousands of rows at once, where
    Core's executemany spends most of its time on each row's parameters (JSON above all)."""
    if rows:
        _insert_values(session.connection(), _table(model), names, rows)


def _insert_values(
    connection: Connection, table: Table, names: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """`_insert_rows` of rows given as tuples of the `names` columns' values."""
    defaults = _python_defaults(table, names)
    # Defaults the same for every row of the batch, made once: constants, and timestamps
    # (the batch's rows are written at one moment: `created_at` and `updated_at` are the
    # batch's). Turning a timestamp into text costs the driver more than the rest of a row.
    once = {name: make() for name, make in defaults.items() if _once_per_batch(table.c[name])}
    per_row = {name: make for name, make in defaults.items() if name not in once}
    if connection.dialect.name != "postgresql":
        _insert_many(connection, table, rows, names, once, per_row)
        return
    columns = [*names, *once, *per_row]
    statement = "COPY {} ({}) FROM STDIN".format(
        _quoted(connection, table.name), ", ".join(_quoted(connection, name) for name in columns)
    )
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    driver_error = connection.dialect.loaded_dbapi.Error
    try:
        _copy_rows(connection, driver_connection, table, rows, statement, names, once, per_row)
    except driver_error as exc:
        # Raised as SQLAlchemy raises any other statement's error, so that callers catch one
        # kind (and the row in the driver's message is not shown as if it were the cause).
        raise DBAPIError.instance(statement, None, exc, driver_error) from exc


def _once_per_batch(column: Any) -> bool:
    if column.default.is_scalar:
        return True
    return isinstance(getattr(column.type, "impl_instance", column.type), DateTime)


def _insert_many(
    connection: Connection,
    table: Table,
    rows: list[tuple[Any, ...]],
    names: Sequence[str],
    once: dict[str, Any],
    per_row: dict[str, Callable[[], Any]],
) -> None:
    """One executemany of tuples, as Core's `insert(table)` with these rows would (the same
    defaults and bind processing), without Core making and reading its parameters per row:
    only columns of other than plain types (timestamps, JSON) go through their processor
    (the driver binds a bool as SQLAlchemy stores it, 1 or 0)."""
    dialect = connection.dialect

    def processor(name: str) -> Callable[[Any], Any] | None:
        if isinstance(table.c[name].type, _PLAIN_TYPES):
            return None
        return table.c[name].type.dialect_impl(dialect).bind_processor(dialect)

    processors = [processor(name) for name in [*names, *per_row]]
    constant = tuple(
        value if (process := processor(name)) is None else process(value)
        for name, value in once.items()
    )
    makers = list(per_row.values())
    parameters: list[Any]
    if not makers and not any(processors):
        parameters = [row + constant for row in rows] if constant else rows
    else:
        parameters = []
        for row in rows:
            values = [*row, *(make() for make in makers)]
            for position, process in enumerate(processors):
                if process is not None:
                    values[position] = process(values[position])
            parameters.append((*values[: len(row)], *constant, *values[len(row) :]))
    columns = [*names, *once, *per_row]
    quote = dialect.identifier_preparer.quote
    statement = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 (the model's names)
        quote(table.name), ", ".join(quote(name) for name in columns), ", ".join("?" * len(columns))
    )
    connection.exec_driver_sql(statement, parameters)


def _copy_rows(
    connection: Connection,
    driver_connection: Any,
    table: Table,
    rows: list[tuple[Any, ...]],
    statement: str,
    names: Sequence[str],
    once: dict[str, Any],
    per_row: dict[str, Callable[[], Any]],
) -> None:
    # Each row a tuple in the COPY's column order; JSON columns (rare among the rows an
    # import writes) are decided once for the batch, not per value.
    def as_text(name: str, value: Any) -> Any:
        if isinstance(table.c[name].type, JSON):
            return json.dumps(value)
        return value.isoformat() if isinstance(value, datetime) else value

    constant = tuple(as_text(name, value) for name, value in once.items())
    # A JSON column among the values given (none of the import's kinds has one; a caller's
    # rows may) goes in as its text, as the per-row defaults' do: psycopg's COPY would write
    # a list as an array.
    given_json = [
        position for position, name in enumerate(names) if isinstance(table.c[name].type, JSON)
    ]
    if given_json:
        rows = [_dumped(row, given_json) for row in rows]
    json_positions = [
        len(constant) + position
        for position, name in enumerate(per_row)
        if isinstance(table.c[name].type, JSON)
    ]
    makers = list(per_row.values())
    with driver_connection.cursor() as cursor:
        with cursor.copy(statement) as copy:
            write_row = copy.write_row
            if not makers:
                for row in rows:
                    write_row(row + constant if constant else row)
            else:
                for row in rows:
                    values = [*constant, *(make() for make in makers)]
                    for position in json_positions:
                        values[position] = json.dumps(values[position])
                    write_row((*row, *values))
        quoted_table = _quoted(connection, table.name)
        if _statistics_are_stale(connection, cursor, quoted_table, len(rows)):
            # A table that has never been analysed, or that this batch alone makes much
            # bigger, gets poor plans (whole-table scans for each batch's lookups) until
            # autovacuum comes by. Later the planner scales the statistics by the table's
            # size on disk, so a few early ANALYZEs are enough.
            cursor.execute(f"ANALYZE {quoted_table}")
            _forget_estimate(connection, quoted_table)


def _dumped(row: tuple[Any, ...], positions: Sequence[int]) -> tuple[Any, ...]:
    values = list(row)
    for position in positions:
        values[position] = json.dumps(values[position])
    return tuple(values)


def _one_value(name: str) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    return lambda row: (row[name],)


def _statistics_are_stale(
    connection: Connection, cursor: Any, quoted_table: str, inserted: int
) -> bool:
    estimated_rows = _estimates(connection).get(quoted_table)
    if estimated_rows is None:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", (quoted_table,)
        )
        found = cursor.fetchone()
        estimated_rows = float(found[0]) if found is not None else -1.0
        _estimates(connection)[quoted_table] = estimated_rows
    return estimated_rows < 0 or inserted * ANALYZE_WHEN_BATCH_EXCEEDS >= estimated_rows


def _estimates(connection: Connection) -> dict[str, float]:
    """The planner's row estimates read in this transaction, by table: they change only when
    a table is analysed (other transactions' autovacuum does not see this one's rows), so
    reading them once per transaction, and again after our own ANALYZE, is enough."""
    transaction = connection.get_transaction()
    memo: tuple[Any, dict[str, float]] | None = connection.info.get(_ESTIMATES)
    if memo is None or memo[0] is not transaction:
        memo = (transaction, {})
        connection.info[_ESTIMATES] = memo
    return memo[1]


def _forget_estimate(connection: Connection, quoted_table: str) -> None:
    _estimates(connection).pop(quoted_table, None)


_ESTIMATES = "sislink.bulk.reltuples"


def _python_defaults(table: Table, given: Sequence[str]) -> dict[str, Callable[[], Any]]:
    """Makers of the Python-side defaults that Core would apply to columns not given."""
    makers: dict[str, Callable[[], Any]] = {}
    for column in table.columns:
        if column.name in given or column.primary_key or column.default is None:
            continue
        default: Any = column.default
        if default.is_callable:
            makers[column.name] = partial(default.arg, None)
        elif default.is_scalar:
            makers[column.name] = partial(_constant, default.arg)
    return makers


def _constant(value: Any) -> Any:
    return value


def _quoted(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


def _upsert_simple(
    session: Session,
    model: ImportedModel,
    desired: list[tuple[str, dict[str, Any]]],
    plan: _Plan,
    protected: Callable[[Mapping[str, Any]], Iterable[str]] | None = None,
) -> UpsertCounts:
    """Upsert rows whose only key is sis_sourced_id (values include sis_sourced_id)."""
    table = _table(model)
    columns = list(desired[0][1]) if desired else []
    if protected is not None:
        columns.append("hand_edited_fields")
    existing = _fetch_by(session, table, "sis_sourced_id", [sid for sid, _ in desired], columns)
    for sourced_id, values in desired:
        found = existing.get(sourced_id)
        kept = protected(found) if (protected is not None and found is not None) else ()
        plan.add(found, values, kept)
    return plan.write(session, table)


# --- one function per roster kind --------------------------------------------------------


def upsert_schools(session: Session, rows: Iterable[SchoolRow]) -> UpsertCounts:
    desired = [
        (
            row.sourced_id,
            {
                "sis_sourced_id": row.sourced_id,
                "name": row.name,
                "identifier": row.identifier,
                "active": row.active,
            },
        )
        for row in _dedupe(rows)
    ]
    return _upsert_simple(session, School, desired, _Plan())


def upsert_terms(session: Session, rows: Iterable[TermRow]) -> UpsertCounts:
    desired = [
        (
            row.sourced_id,
            {
                "sis_sourced_id": row.sourced_id,
                "title": row.title,
                "start_date": row.start_date,
                "end_date": row.end_date,
                "school_year": row.school_year,
                "active": row.active,
            },
        )
        for row in _dedupe(rows)
    ]
    return _upsert_simple(session, Term, desired, _Plan())


def upsert_grading_periods(
    session: Session, rows: Iterable[GradingPeriodRow], cache: SourcedIdCache | None = None
) -> UpsertCounts:
    unique_rows = _dedupe(rows)
    terms = _resolver(cache)(session, Term, (row.term_sourced_id for row in unique_rows))
    plan = _Plan()
    desired = []
    for row in unique_rows:
        if row.term_sourced_id is not None and row.term_sourced_id not in terms:
            plan.skip(row.sourced_id, _missing("term", row.term_sourced_id))
            continue
        desired.append(
            (
                row.sourced_id,
                {
                    "sis_sourced_id": row.sourced_id,
                    "title": row.title,
                    "start_date": row.start_date,
                    "end_date": row.end_date,
                    "term_id": terms.get(row.term_sourced_id) if row.term_sourced_id else None,
                    "active": row.active,
                },
            )
        )
    return _upsert_simple(session, GradingPeriod, desired, plan)


def upsert_courses(
    session: Session, rows: Iterable[CourseRow], cache: SourcedIdCache | None = None
) -> UpsertCounts:
    unique_rows = _dedupe(rows)
    schools = _resolver(cache)(session, School, (row.school_sourced_id for row in unique_rows))
    plan = _Plan()
    desired = []
    for row in unique_rows:
        if row.school_sourced_id is not None and row.school_sourced_id not in schools:
            plan.skip(row.sourced_id, _missing("school", row.school_sourced_id))
            continue
        desired.append(
            (
                row.sourced_id,
                {
                    "sis_sourced_id": row.sourced_id,
                    "title": row.title,
                    "course_code": row.course_code,
                    "school_id": schools.get(row.school_sourced_id)
                    if row.school_sourced_id
                    else None,
                    "active": row.active,
                },
            )
        )
    return _upsert_simple(session, Course, desired, plan)


def upsert_classes(
    session: Session, rows: Iterable[ClassRow], cache: SourcedIdCache | None = None
) -> UpsertCounts:
    """Upsert classes; fields a teacher changed by hand (Class.hand_edited_fields) are kept."""
    unique_rows = _dedupe(rows)
    schools = _resolver(cache)(session, School, (row.school_sourced_id for row in unique_rows))
    terms = _resolver(cache)(session, Term, (row.term_sourced_id for row in unique_rows))
    courses = _resolver(cache)(session, Course, (row.course_sourced_id for row in unique_rows))
    plan = _Plan()
    desired = []
    for row in unique_rows:
        references = (
            ("school", row.school_sourced_id, schools),
            ("term", row.term_sourced_id, terms),
            ("course", row.course_sourced_id, courses),
        )
        missing = _first_missing(references)
        if missing is not None:
            plan.skip(row.sourced_id, _missing(*missing))
            continue
        desired.append(
            (
                row.sourced_id,
                {
                    "sis_sourced_id": row.sourced_id,
                    "title": row.title,
                    "section": row.section,
                    "school_id": schools.get(row.school_sourced_id or ""),
                    "term_id": terms.get(row.term_sourced_id or ""),
                    "course_id": courses.get(row.course_sourced_id or ""),
                    "active": row.active,
                },
            )
        )
    return _upsert_simple(
        session, Class, desired, plan, protected=lambda found: found["hand_edited_fields"] or ()
    )


def upsert_people(
    session: Session,
    rows: Iterable[PersonRow],
    *,
    sent_now: Container[str] | None = None,
    defer_held: bool = False,
) -> UpsertCounts:
    """Upsert people by sourcedId; a person made here with the same email is adopted.

    Emails are unique whatever their case: a SIS person whose email another person already
    uses is skipped with a reason, never merged by guesswork. The one exception is a SIS that
    re-numbered a person: the email's holder has a SIS id that is no longer active, or that
    the SIS no longer sends (`sent_now`: a full import's person ids), the SIS says the same
    identifier or the same given and family name (an email alone is re-issued to new people),
    and the holder has no sign-in, API token or admin role (a takeover would hand those to
    whoever the SIS now names). Then the new id takes their row over, reported in
    `taken_over`. The admin role is local and never changed by an import.

    `defer_held` (a full import that streams its pages, before it knows every id the SIS
    sends): a new person whose email an active SIS person holds is not decided now but
    returned in `deferred`, to be given again with `sent_now` once every page is read.
    """
    table = _table(Person)
    unique_rows = _dedupe(rows)
    # Values as tuples in the order of _PERSON_VALUES, rows found as (id, *values): see
    # upsert_enrolments.
    by_sourced_id = _fetch_rows(
        session, table, "sis_sourced_id", [row.sourced_id for row in unique_rows], _PERSON_COLUMNS
    )
    desired: list[tuple[PersonRow, tuple[Any, ...]]] = []
    for row in unique_rows:
        shown, key = normalise_email(row.email)
        roles = row.roles
        values: tuple[Any, ...] = (
            row.sourced_id,
            row.name,
            row.given_name,
            row.family_name,
            shown,
            key,
            row.identifier,
            Role.TEACHER in roles,
            Role.STUDENT in roles,
            row.active,
        )
        desired.append((row, values))
    # Only emails that are new or changed need checking against other people.
    emails_to_check = []
    for row, values in desired:
        key = values[_EMAIL_KEY]
        if key is not None:
            found = by_sourced_id.get(row.sourced_id)
            if found is None or found[1 + _EMAIL_KEY] != key:
                emails_to_check.append(key)
    by_email = _fetch_rows(session, table, "email_key", emails_to_check, _PERSON_COLUMNS)
    plan = _Plan()
    counts = plan.counts
    inserts: list[tuple[Any, ...]] = []
    updates: list[dict[str, Any]] = []
    claimed_emails: dict[str, str] = {}
    for row, values in desired:
        found = by_sourced_id.get(row.sourced_id)
        key = values[_EMAIL_KEY]
        if key is not None:
            holder = by_email.get(key)
            earlier = claimed_emails.get(key)
            if earlier is not None:
                plan.skip(row.sourced_id, _email_taken(values[_EMAIL], f"SIS id {earlier!r}"))
                continue
            if holder is not None and holder[0] != (found[0] if found is not None else None):
                holder_id, holder_active = holder[1], holder[1 + _ACTIVE]
                if defer_held and found is None and holder_id is not None and holder_active:
                    counts.deferred.append(row)  # a takeover, or not: asks `sent_now`
                    continue
                renumbered = holder_id is not None and (
                    not holder_active or (sent_now is not None and holder_id not in sent_now)
                )
                if found is None and holder_id is None:
                    found = holder  # a person made here before the import: adopted by email
                elif (
                    found is None
                    and renumbered
                    and _same_person(session, dict(zip(_PERSON_COLUMNS, holder, strict=True)), row)
                ):
                    # The SIS re-numbered them: the same person, corroborated beyond the email.
                    counts.taken_over.append((holder_id, row.sourced_id))
                    found = holder
                else:
                    owner = holder_id or "a person made in sislink"
                    plan.skip(row.sourced_id, _email_taken(values[_EMAIL], repr(owner)))
                    continue
            claimed_emails[key] = row.sourced_id
        if found is None:
            inserts.append(values)
            counts.note_created(row.sourced_id)
        elif found[1:] == values:
            counts.unchanged += 1
        else:
            updates.append({"_id": found[0], **dict(zip(_PERSON_VALUES, values, strict=True))})
            counts.updated += 1
    connection = session.connection()
    if inserts:
        _insert_values(connection, table, _PERSON_VALUES, inserts)
    if updates:
        _update_rows(connection, table, updates)
    return counts


_PERSON_VALUES = (
    "sis_sourced_id",
    "name",
    "given_name",
    "family_name",
    "email",
    "email_key",
    "sis_identifier",
    "is_teacher",
    "is_student",
    "active",
)
_PERSON_COLUMNS = ("id", *_PERSON_VALUES)
_EMAIL, _EMAIL_KEY, _ACTIVE = 4, 5, 9  # positions in _PERSON_VALUES


def _same_person(session: Session, holder: dict[str, Any], row: PersonRow) -> bool:
    """Whether a SIS person with a held email is the holder re-numbered, not someone new who
    was given an old person's email: the SIS must say the same identifier, or the same given
    and family name; and a row with a sign-in, API tokens or the admin role is never handed
    over on the SIS's word."""

    def same(ours: Any, theirs: str | None) -> bool:
        return (
            bool(ours)
            and bool(theirs)
            and str(ours).strip().casefold() == ((theirs or "").strip().casefold())
        )

    corroborated = same(holder["sis_identifier"], row.identifier) or (
        same(holder["given_name"], row.given_name) and same(holder["family_name"], row.family_name)
    )
    if not corroborated:
        return False
    person_id = holder["id"]
    if session.scalar(select(Person.is_admin).where(Person.id == person_id)):
        return False
    if session.scalar(select(LoginAccount.person_id).where(LoginAccount.person_id == person_id)):
        return False
    return session.scalar(select(ApiToken.id).where(ApiToken.person_id == person_id)) is None


@dataclass(frozen=True, slots=True)
class MovedEnrolment:
    """An enrolment whose SIS id now names another class, person or role: the old one ended."""

    sourced_id: str
    old_class: str
    old_person: str
    old_role: str
    new_class: str
    new_person: str
    new_role: str

    @property
    def sentence(self) -> str:
        return (
            f"{self.sourced_id!r} moved from {self.old_role} {self.old_person!r} in class "
            f"{self.old_class!r} to {self.new_role} {self.new_person!r} in class "
            f"{self.new_class!r}: the old enrolment ended, the new one started"
        )


def end_moved_enrolments(
    session: Session, rows: Iterable[EnrolmentRow], cache: SourcedIdCache | None = None
) -> list[MovedEnrolment]:
    """End the enrolments whose SIS id the SIS now uses for another class, person or role.

    An enrolment is its class, person and role: a SIS that re-uses or re-numbers enrolment
    ids must not move one person's membership onto another. The old row is deactivated and
    lets go of the id (it stays, inactive, as history); `upsert_enrolments` then starts the
    new one. Call it for every batch of an import before upserting any, so that ids that
    swap places never meet.
    """
    table = _table(Enrolment)
    moved_rows = _moved(session, rows, cache)
    if not moved_rows:
        return []
    class_ids = _fetch_by(
        session, _table(Class), "id", [f["class_id"] for f, _ in moved_rows], ["sis_sourced_id"]
    )
    person_ids = _fetch_by(
        session, _table(Person), "id", [f["person_id"] for f, _ in moved_rows], ["sis_sourced_id"]
    )
    session.connection().execute(
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values(active=False, sis_sourced_id=None, is_primary=False),
        [{"_id": found["id"]} for found, _ in moved_rows],
    )
    return [
        MovedEnrolment(
            sourced_id=found["sis_sourced_id"],
            old_class=str(class_ids.get(found["class_id"], {}).get("sis_sourced_id")),
            old_person=str(person_ids.get(found["person_id"], {}).get("sis_sourced_id")),
            old_role=found["role"],
            new_class=row.class_sourced_id,
            new_person=row.person_sourced_id,
            new_role=str(row.role),
        )
        for found, (_, _, row) in moved_rows
    ]


def _moved(
    session: Session, rows: Iterable[EnrolmentRow], cache: SourcedIdCache | None
) -> list[tuple[dict[str, Any], tuple[int, int, EnrolmentRow]]]:
    unique_rows = _dedupe(rows)
    classes = _resolver(cache)(session, Class, (row.class_sourced_id for row in unique_rows))
    people = _resolver(cache)(session, Person, (row.person_sourced_id for row in unique_rows))
    wanted = {
        row.sourced_id: (classes[row.class_sourced_id], people[row.person_sourced_id], row)
        for row in unique_rows
        if row.class_sourced_id in classes and row.person_sourced_id in people
    }
    columns = ["sis_sourced_id", "class_id", "person_id", "role"]
    existing = _fetch_by(session, _table(Enrolment), "sis_sourced_id", list(wanted), columns)
    return [
        (found, wanted[sourced_id])
        for sourced_id, found in existing.items()
        if (found["class_id"], found["person_id"], found["role"])
        != (wanted[sourced_id][0], wanted[sourced_id][1], str(wanted[sourced_id][2].role))
    ]


def find_moved_enrolments(
    session: Session, rows: Iterable[EnrolmentRow], cache: SourcedIdCache | None = None
) -> set[str]:
    """The SIS ids of these enrolments that now name another class, person or role (read only:
    `end_moved_enrolments` ends them), and of those that take the place a moved one leaves
    (they can start only once it has ended). Give every enrolment of the import at once."""
    unique_rows = _dedupe(rows)
    moved = _moved(session, unique_rows, cache)
    if not moved:
        return set()
    left = {(found["class_id"], found["person_id"], found["role"]) for found, _ in moved}
    waiting = {found["sis_sourced_id"] for found, _ in moved}
    classes = _resolver(cache)(session, Class, (row.class_sourced_id for row in unique_rows))
    people = _resolver(cache)(session, Person, (row.person_sourced_id for row in unique_rows))
    for row in unique_rows:
        place = (
            classes.get(row.class_sourced_id),
            people.get(row.person_sourced_id),
            str(row.role),
        )
        if place in left:
            waiting.add(row.sourced_id)
    return waiting


@dataclass(slots=True)
class NewRows:
    """An import whose enrolment table held no row when its transaction began: every row the
    table holds is one this import wrote (`upsert_enrolments(new_rows=...)`).

    A page's enrolments can then conflict only with the import's own earlier pages (a SIS
    that sends one enrolment id twice, or two ids for one class, person and role), which is
    rare: each page is inserted without first being looked up, and the table's unique keys
    (sourcedId; class, person and role) say whether a row was there. A page that conflicts
    is rolled back to a savepoint and written the usual way, looking its rows up; so are the
    pages after it (`inserting` turns false: a SIS that repeats itself once may well again).
    """

    inserting: bool = True
    # Whether each unlooked-up page's insert is in a savepoint of its own. Only a benchmark
    # turns it off (to measure what the savepoints cost): without it a conflict would end the
    # whole transaction.
    savepoints: bool = True


def upsert_enrolments(
    session: Session,
    rows: Iterable[EnrolmentRow],
    cache: SourcedIdCache | None = None,
    *,
    sent_now: Container[str] | None = None,
    defer_held: bool = False,
    new_rows: NewRows | None = None,
) -> UpsertCounts:
    """Upsert enrolments by sourcedId; also sets each class's primary teacher from them.

    One person has at most one enrolment per class and role: an enrolment made here for
    the same class, person and role is adopted by the SIS one. `sent_now` (a full import:
    every enrolment id the SIS sends) lets an enrolment the SIS re-numbered take its row
    over from its old id, which the SIS no longer sends; without it, a second id for the
    same class, person and role is a duplicate and skipped.

    `defer_held` (an import that streams its pages, full or delta): an enrolment whose id
    now names another class, person or role (moved), or whose class, person and role another
    SIS enrolment holds (re-numbered, a duplicate, or waiting for a moved one to leave), is
    not decided now but returned in `deferred`: those need every id of the import
    (`find_moved_enrolments`, `sent_now`).

    `new_rows`: the table held no enrolment when the transaction began (see `NewRows`); the
    rows are inserted without being looked up first, with the same result.
    """
    table = _table(Enrolment)
    unique_rows = _dedupe(rows)
    resolve = _ids_by_sourced_id if cache is None else cache.known
    classes = resolve(session, Class, [row.class_sourced_id for row in unique_rows])
    people = resolve(session, Person, [row.person_sourced_id for row in unique_rows])
    unknown: list[SkippedRow] = []
    # Each row the SIS sends with its class and person known, as (its values in the order of
    # _ENROLMENT_VALUES, its class, person and role, the row as sent): tuples, compared with
    # the rows found as they come from the database (a dict per row is most of the cost).
    desired: list[tuple[tuple[Any, ...], tuple[int, int, str], EnrolmentRow]] = []
    for row in unique_rows:
        class_id = classes.get(row.class_sourced_id)
        person_id = people.get(row.person_sourced_id)
        if class_id is None:
            unknown.append(SkippedRow(row.sourced_id, _missing("class", row.class_sourced_id)))
        elif person_id is None:
            unknown.append(SkippedRow(row.sourced_id, _missing("person", row.person_sourced_id)))
        else:
            role = _ROLE_TEXT.get(row.role) or str(row.role)
            values = (row.sourced_id, class_id, person_id, role, row.is_primary, row.active)
            desired.append((values, (class_id, person_id, role), row))
    connection = session.connection()
    if new_rows is not None and new_rows.inserting:
        inserted = _insert_new_enrolments(connection, table, desired, unknown, new_rows)
        if inserted is not None:
            return inserted
    by_sourced_id, by_natural_key = _fetch_enrolments(session, desired)
    decided = _decide_enrolments(
        desired, by_sourced_id, by_natural_key, unknown, sent_now=sent_now, defer_held=defer_held
    )
    if decided.inserts:
        _insert_values(connection, table, _ENROLMENT_VALUES, decided.inserts)
    if decided.updates:
        _update_rows(connection, table, decided.updates)
    if decided.primary:
        _set_primary_teachers(connection, decided.primary)
    return decided.counts


@dataclass(slots=True)
class _EnrolmentWrites:
    """What `_decide_enrolments` makes of a batch: its counts and the writes they need."""

    counts: UpsertCounts
    inserts: list[tuple[Any, ...]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    primary: dict[int, int] = field(default_factory=dict)  # class id: its primary teacher


def _decide_enrolments(
    desired: Sequence[tuple[tuple[Any, ...], tuple[int, int, str], EnrolmentRow]],
    by_sourced_id: Mapping[str, tuple[Any, ...]],
    by_natural_key: Mapping[tuple[int, int, str], tuple[Any, ...]],
    unknown: Sequence[SkippedRow],
    *,
    sent_now: Container[str] | None,
    defer_held: bool,
) -> _EnrolmentWrites:
    """Each desired row against the rows found (`_fetch_enrolments`): created, updated,
    unchanged, skipped (after the rows of `unknown`, skipped already) or deferred."""
    decided = _EnrolmentWrites(UpsertCounts(skipped=list(unknown)))
    counts, inserts, updates, primary = (
        decided.counts,
        decided.inserts,
        decided.updates,
        decided.primary,
    )
    deferred = counts.deferred
    created_ids = counts.created_ids
    # Found rows are (id, *values): found[2:5] is the class, person and role they hold.
    taken = {found[2:5]: sourced_id for sourced_id, found in by_sourced_id.items()}
    for values, natural_key, row in desired:
        sourced_id = values[0]
        found = by_sourced_id.get(sourced_id)
        if found is not None:
            if defer_held and found[2:5] != natural_key:
                deferred.append(row)  # moved: its id now names another class, person or role
                continue
        else:
            found = by_natural_key.get(natural_key)
            if found is not None:
                holder_id = found[1]
                if defer_held and holder_id is not None:
                    deferred.append(row)  # its class, person and role another SIS id's
                    continue
                if holder_id not in (None, sourced_id) and not (
                    sent_now is not None and holder_id not in sent_now  # re-numbered
                ):
                    counts.skipped.append(SkippedRow(sourced_id, _duplicate_enrolment(holder_id)))
                    continue
        holder = taken.get(natural_key)
        if holder is not None and holder != sourced_id:
            counts.skipped.append(SkippedRow(sourced_id, _duplicate_enrolment(holder)))
            continue
        taken[natural_key] = sourced_id
        if found is None:
            inserts.append(values)
            counts.created += 1
            if len(created_ids) < CREATED_IDS_KEPT:  # note_created, written out: the hot loop
                created_ids.append(sourced_id)
        elif found[1:] == values:
            counts.unchanged += 1
            continue
        else:
            updates.append({"_id": found[0], **dict(zip(_ENROLMENT_VALUES, values, strict=True))})
            counts.updated += 1
        if values[4] and values[5] and values[3] == EnrolmentRole.TEACHER:
            primary[values[1]] = values[2]
    return decided


def _insert_new_enrolments(
    connection: Connection,
    table: Table,
    desired: Sequence[tuple[tuple[Any, ...], tuple[int, int, str], EnrolmentRow]],
    unknown: Sequence[SkippedRow],
    new_rows: NewRows,
) -> UpsertCounts | None:
    """`upsert_enrolments` of a batch into a table that holds only the import's own rows,
    without looking the rows up: decided as if nothing were found, and inserted in a
    savepoint. None (nothing written) when the table says something was there after all (a
    unique key taken), or when the batch names one class, person and role twice: then the
    batch is for the usual way (see `NewRows`).

    Why the result is the usual way's: every row of the batch is inserted (none is skipped
    for another of the batch), so an insert that succeeds shows that no row had its
    sourcedId, nor its class, person and role: all that `_fetch_enrolments` would have found
    for it. A row skipped as a duplicate of another of the batch is not inserted, and its
    sourcedId may be an earlier page's row (which the usual way finds: a moved enrolment):
    such a batch goes the usual way, but the pages after it may still be inserted.
    """
    decided = _decide_enrolments(desired, {}, {}, unknown, sent_now=None, defer_held=True)
    if len(decided.counts.skipped) > len(unknown):
        return None  # one class, person and role twice in the batch: see above
    if decided.inserts:
        # A savepoint per page: on PostgreSQL, measured at 406 pages (406,000 enrolments),
        # about 0.1 s of the server's CPU and as much of Python's, against some 3 s of
        # lookups saved. Each is a subtransaction with an id of its own, kept until the
        # import ends; past 64 in one transaction, the snapshots other sessions take while it
        # runs are "suboverflowed": to tell whether a row committed since the import began is
        # visible to them they may read pg_subtrans (a cached lookup per such row; the
        # import's own rows are invisible to them anyway). See docs/architecture.md.
        savepoint = connection.begin_nested() if new_rows.savepoints else None
        try:
            _insert_values(connection, table, _ENROLMENT_VALUES, decided.inserts)
        except IntegrityError as exc:
            if savepoint is None or not _unique_key_taken(exc):
                raise
            savepoint.rollback()  # as if the batch had not been tried
            new_rows.inserting = False
            return None
        # Any other error ends the import, whose whole transaction is rolled back.
        if savepoint is not None:
            savepoint.commit()
    if decided.primary:
        _set_primary_teachers(connection, decided.primary)
    return decided.counts


def _unique_key_taken(error: IntegrityError) -> bool:
    """The database refused a row because a unique key of it is another row's."""
    driver_error = error.orig
    if getattr(driver_error, "sqlstate", None) == "23505":  # PostgreSQL's unique_violation
        return True
    return getattr(driver_error, "sqlite_errorname", None) == "SQLITE_CONSTRAINT_UNIQUE"


_ROLE_TEXT: dict[object, str] = {role: role.value for role in EnrolmentRole}


_ENROLMENT_VALUES = ("sis_sourced_id", "class_id", "person_id", "role", "is_primary", "active")
_ENROLMENT_COLUMNS = ("id", *_ENROLMENT_VALUES)


def _fetch_enrolments(
    session: Session, desired: Sequence[tuple[tuple[Any, ...], tuple[int, int, str], Any]]
) -> tuple[dict[str, tuple[Any, ...]], dict[tuple[int, int, str], tuple[Any, ...]]]:
    """The enrolments that have these SIS ids, and, for the ids not found, those of their
    class and person (by class, person and role), as tuples of _ENROLMENT_COLUMNS. On
    PostgreSQL in one query (a row found by sourcedId may be in the second too: the same)."""
    by_sourced_id: dict[str, tuple[Any, ...]] = {}
    by_natural_key: dict[tuple[int, int, str], tuple[Any, ...]] = {}
    if not desired:
        return by_sourced_id, by_natural_key
    connection = session.connection()
    looked_up: Sequence[tuple[tuple[Any, ...], tuple[int, int, str], Any]] = desired
    if connection.dialect.name != "postgresql":
        # SQLite answers in this process: two statements cost less than one that probes
        # every id twice. The second only for the ids the first did not find.
        sql, positional = _compiled_lookup(
            connection, _table(Enrolment), "sis_sourced_id", _ENROLMENT_COLUMNS
        )
        for chunk in _chunks([each[0][0] for each in desired]):
            keys_json = json.dumps(chunk)
            for row in _driver_rows(
                connection, sql, (keys_json,) if positional else {"keys": keys_json}
            ):
                by_sourced_id[row[1]] = tuple(row)
        looked_up = [each for each in desired if each[0][0] not in by_sourced_id]
    sql = _enrolment_lookup(connection)
    for chunk in _chunks(looked_up):
        keys = json.dumps([[values[0], values[1], values[2]] for values, _, _ in chunk])
        wanted = {each[0][0] for each in chunk}
        for row in _driver_rows(connection, sql, (keys,)):
            found = tuple(row)
            if found[1] in wanted:
                by_sourced_id[found[1]] = found
            by_natural_key[found[2:5]] = found
    return by_sourced_id, by_natural_key


def _enrolment_lookup(connection: Connection) -> str:
    """SQL of `_fetch_enrolments`: its one parameter is a JSON array of
    [sourcedId, class id, person id]. On SQLite only the (class, person) half."""
    quote = connection.dialect.identifier_preparer.quote
    table = quote(_table(Enrolment).name)
    columns = ", ".join(f"e.{quote(name)}" for name in _ENROLMENT_COLUMNS)
    by_class_and_person = (
        f"SELECT {columns} FROM wanted AS w JOIN {table} AS e "  # noqa: S608
        "ON e.class_id = w.class_id AND e.person_id = w.person_id"
    )
    # Every name is the model's, quoted; the keys go in as the one parameter.
    if connection.dialect.name != "postgresql":
        return (
            "WITH wanted AS (SELECT json_extract(value, '$[0]') AS sourced_id, "  # noqa: S608
            "json_extract(value, '$[1]') AS class_id, json_extract(value, '$[2]') AS person_id "
            f"FROM json_each(?)) {by_class_and_person}"
        )
    return (
        "WITH wanted AS (SELECT k ->> 0 AS sourced_id, (k ->> 1)::integer AS class_id, "  # noqa: S608
        "(k ->> 2)::integer AS person_id FROM json_array_elements(%s::json) AS k) "
        f"SELECT {columns} FROM wanted AS w JOIN {table} AS e "
        "ON e.sis_sourced_id = w.sourced_id "
        f"UNION ALL {by_class_and_person} "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS x WHERE x.sis_sourced_id = w.sourced_id)"
    )


def _set_primary_teachers(connection: Connection, primary: dict[int, int]) -> None:
    """Make each class's primary teacher the one given, unless a teacher chose it by hand."""
    table = _table(Class)
    names = ("id", "primary_teacher_id", "hand_edited_fields")
    sql, positional = _compiled_lookup(connection, table, "id", names)
    keys = json.dumps(list(primary))
    changes: list[tuple[int, int]] = []
    for class_id, teacher_id, hand_edited in _driver_rows(
        connection, sql, (keys,) if positional else {"keys": keys}
    ):
        if isinstance(hand_edited, str) and connection.dialect.name != "postgresql":
            hand_edited = json.loads(hand_edited)  # SQLite's JSON comes back as its text
        if teacher_id != primary[class_id] and "primary_teacher_id" not in (hand_edited or ()):
            changes.append((class_id, primary[class_id]))
    if changes:
        _update_primary_teachers(connection, table, changes)


def _update_primary_teachers(
    connection: Connection, table: Table, changes: list[tuple[int, int]]
) -> None:
    """Set (class id, teacher id) as Core's `update(table)` would, with the columns it sets
    on update (`updated_at`): one statement on PostgreSQL, one executemany on SQLite."""
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    stamps = []
    for column in table.columns:
        onupdate: Any = column.onupdate
        if onupdate is not None and onupdate.is_callable:
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            stamps.append((quote(column.name), partial(onupdate.arg, None), process))
    assignments = "".join(f", {name} = %s" for name, _, _ in stamps)

    def stamped() -> list[Any]:
        return [make() if process is None else process(make()) for _, make, process in stamps]

    if dialect.name == "postgresql":
        statement = (
            f"UPDATE {quote(table.name)} SET primary_teacher_id = v.t{assignments} "  # noqa: S608
            "FROM (SELECT (k ->> 0)::integer AS c, (k ->> 1)::integer AS t "
            "FROM json_array_elements(%s::json) AS k) AS v "
            f"WHERE {quote(table.name)}.id = v.c"
        )
        connection.exec_driver_sql(statement, (*stamped(), json.dumps(changes)))
        return
    statement = (
        f"UPDATE {quote(table.name)} SET primary_teacher_id = ?"  # noqa: S608
        f"{assignments.replace('%s', '?')} WHERE id = ?"
    )
    connection.exec_driver_sql(
        statement,
        [(teacher_id, *stamped(), class_id) for class_id, teacher_id in changes],
    )


def _first_missing(
    references: Iterable[tuple[str, str | None, Mapping[str, int]]],
) -> tuple[str, str] | None:
    for kind, sourced_id, known in references:
        if sourced_id is not None and sourced_id not in known:
            return kind, sourced_id
    return None


# --- rows the SIS no longer sends --------------------------------------------------------


def find_missing(
    session: Session, model: ImportedModel, seen_sourced_ids: Iterable[str]
) -> list[str]:
    """SourcedIds of active imported rows that are not in `seen_sourced_ids`.

    Rows made here (no sourcedId) are never listed. The import uses this for its shrink
    guard before calling `deactivate`.
    """
    table = _table(model)
    seen = set(seen_sourced_ids)
    statement = select(table.c.sis_sourced_id).where(
        table.c.sis_sourced_id.is_not(None), table.c.active.is_(True)
    )
    return [sid for sid in session.connection().execute(statement).scalars() if sid not in seen]


def deactivate(session: Session, model: ImportedModel, sourced_ids: Sequence[str]) -> int:
    """Mark these imported rows inactive (never deleted: marks and history stay). Returns how many."""
    table = _table(model)
    changed = 0
    for chunk in _chunks(list(dict.fromkeys(sourced_ids))):
        statement = (
            update(table)
            .where(table.c.sis_sourced_id.in_(chunk), table.c.active.is_(True))
            .values(active=False)
        )
        changed += session.connection().execute(statement).rowcount
    return changed


# --- reasons, in words -------------------------------------------------------------------


def _missing(kind: str, sourced_id: str) -> str:
    return (
        f"its {kind} (SIS id {sourced_id!r}) has not been imported; import the {kind} first "
        "or check that the SIS sends it"
    )


def _email_taken(email: str, owner: str) -> str:
    return (
        f"the email {email!r} is already used by {owner}; each email may belong to one "
        "person only: correct the email in the SIS or in sislink"
    )


def _duplicate_enrolment(other_sourced_id: str) -> str:
    return (
        "the same person is already enrolled in this class with this role "
        f"(SIS enrolment {other_sourced_id!r}); the SIS sends a duplicate enrolment"
    )
