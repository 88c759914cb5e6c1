"""Roster import: stream the SIS's whole roster (or its changes) into one transaction.

`import_roster(classroom, client, connection_id=...)` reads schools, academic sessions (terms
and grading periods), courses, classes, users (teachers and students), enrolments and, when
the connection may, grading categories. Each batch of records read is turned into compact
classroom rows (`sislink.classroom.bulk`) and handed on at once; nothing proportional to the
district is kept in memory (the SIS ids seen, which the deactivations need, are kept in a
temporary table of the transaction: `classroom/bulk_seen.py`). All the writes go into ONE
transaction, on a thread of its own (`sync/roster_writer.py`): upserts page by page, then the
rows that needed every page (enrolments that moved, people and enrolments the SIS may have
re-numbered), the deactivations, the links, the classes' SIS facts, the delta watermark. A SIS
error mid-walk, a bad page, a database refusal, a cancel or a crash (kill -9) therefore leaves
the classroom exactly as it was; the next run starts again from the same watermark.

When the pages are written (`write_while_reading`):
- PostgreSQL: as they are read. The transaction opens before the first page and each page is
  written in it while the next is read (a bounded queue: the reader runs at most two pages
  ahead), so reading and writing overlap. PostgreSQL locks rows, not the database: the
  console, the job's progress and its heartbeat write meanwhile, and nobody sees the import's
  rows until it commits.
- SQLite: after the last page. SQLite has one write lock for the whole database; a
  transaction open while a SIS is read (minutes, for a slow one) would keep the console's
  writes, the job's progress and heartbeat waiting (and failing after the busy timeout). So
  the pages are spooled to a temporary file as they are read and written after the last
  one, read back one at a time while the previous one is written: the lock is held only for
  the writes, as before, and memory stays flat. `write_while_reading=True` asks for the
  PostgreSQL way on SQLite too (measured in benchmarks/roster_import.py).

Deactivations (what a full import no longer sees, what a delta marks `tobedeleted`) are
decided in that transaction: when they exceed `shrink_threshold` of students, teachers or
enrolments, nothing is deactivated (creates and updates are applied, the watermark stays) and
the report comes back `on_hold` with the complete list, for an administrator to approve
(`roster_holds.approve_hold`) or discard.

A record that does not validate is rejected: it is reported by id and reason, and what the
classroom holds for it stays as it was (it is never deactivated for being invalid). An import
that rejected records carries `attention` in its report (the job ends `needs_attention`).

A dry run does the same in a transaction that is rolled back: the counts are exact and
nothing stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pickle
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import IO, Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from sislink.classroom import Classroom
from sislink.classroom.bulk import (
    ClassRow,
    CourseRow,
    EnrolmentRow,
    GradingPeriodRow,
    ImportedModel,
    NewRows,
    PersonRow,
    SchoolRow,
    SourcedIdCache,
    TermRow,
    UpsertCounts,
    deactivate,
    end_moved_enrolments,
    find_moved_enrolments,
    upsert_classes,
    upsert_courses,
    upsert_enrolments,
    upsert_grading_periods,
    upsert_people,
    upsert_schools,
    upsert_terms,
)
from sislink.classroom.bulk_categories import (
    CategoryRow,
    deactivate_categories,
    upsert_categories,
)
from sislink.classroom.bulk_seen import SeenIds
from sislink.classroom.db import WRITE_OPTIONS
from sislink.classroom.models import (
    Category,
    Class,
    ClassLink,
    Course,
    Enrolment,
    EnrolmentRole,
    GradingPeriod,
    Person,
    Role,
    RosterSyncState,
    School,
    SisConnection,
    Term,
)
from sislink.classroom.services import connections
from sislink.oneroster import models as ors
from sislink.oneroster.consumer import OneRosterClient
from sislink.oneroster.consumer.exceptions import (
    AuthenticationFailed,
    MalformedResponse,
    OneRosterError,
    PagingError,
    PermissionDenied,
)
from sislink.oneroster.consumer.exceptions import NotFound as SisNotFound
from sislink.oneroster.filters import where
from sislink.oneroster.models import format_datetime
from sislink.sync.class_facts import ClassFactsFromRoster, rebuild_class_facts
from sislink.sync.errors import SyncError
from sislink.sync.roster_report import ENTITIES, GUARDED, ClassLeftUnlinked, RosterReport
from sislink.sync.roster_writer import TransactionThread

T = TypeVar("T")

logger = logging.getLogger("sislink.sync.roster_import")

DEFAULT_BATCH_SIZE = 5000
DEFAULT_SHRINK_THRESHOLD = 0.10
# A delta asks for changes since the last import's start minus this: clocks differ, and a
# record saved while the last import ran may carry a time just before it started.
SAFETY_MARGIN = timedelta(minutes=10)
TERM_TYPES = frozenset({"term", "semester"})
CATEGORY_CLASS_KEY = "classSourcedId"
# SQLite's page cache for an import's one transaction, in KiB (see _room_to_write).
SQLITE_IMPORT_CACHE_KIB = 256 * 1024
# An import that writes at least this many rows gets that cache (a delta keeps the default).
SQLITE_BIG_IMPORT_ROWS = 100_000
# Classes whose categories are asked of the SIS at once, when its categories name no class.
CLASS_CATEGORY_CALLS_AT_ONCE = 8

MODELS: dict[str, ImportedModel] = {
    "schools": School,
    "terms": Term,
    "grading_periods": GradingPeriod,
    "courses": Course,
    "classes": Class,
    "enrolments": Enrolment,
}

Progress = Callable[[str, int, int | None], None]
"""Called after each page batch read with (entity, records read so far, total if the SIS said)."""


class RosterImportFailed(SyncError):
    """The import stopped and changed nothing: the SIS could not be read, or the classroom
    could not take the changes."""


class RosterImportCancelled(SyncError):
    """Someone cancelled the import; nothing of it was applied."""

    def __init__(self, report: RosterReport) -> None:
        super().__init__("The roster import was cancelled; nothing of it was applied.")
        self.report = report


@dataclass
class _Page:
    """One batch of one collection, as plain data: what the writer needs to apply it.

    `kind` names the writer (`_PAGE_WRITERS`); `seen` the SIS ids it shows per entity (kept in
    the transaction's own table, not in memory); `rejected` the records that did not validate
    (endpoint, the entities the record may be, its sourcedId, the reason); `other_roles` the
    enrolments of a role sislink does not import (sourcedId, role). Pages are data, not
    closures, so that SQLite's way (spooled to a file, applied after the last page) and
    PostgreSQL's (applied as read) run the same writers.
    """

    kind: str
    rows: Any
    seen: dict[str, list[str]] = field(default_factory=dict)
    rejected: list[tuple[str, tuple[str, ...], Any, str]] = field(default_factory=list)
    other_roles: list[tuple[str, str]] = field(default_factory=list)

    def row_count(self) -> int:
        return len(self.rows) if isinstance(self.rows, list) else 0


@dataclass
class _Streamed:
    """What the import keeps from the pages once they are written: what the classes' facts,
    category placement and the end of the import need (per class, never per student)."""

    # Each class with every term the SIS names for it.
    class_terms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    terms_with_new_periods: set[str] = field(default_factory=set)
    categories_changed: set[str] = field(default_factory=set)  # SIS classes with category rows
    # Categories that name no class (a plain OneRoster 1.2 SIS): sourcedId -> (title, weight).
    unplaced: dict[str, tuple[str, float | None]] = field(default_factory=dict)
    # Those placed by `classes/{id}/categories` (a category of one class), written at the end.
    placed: list[CategoryRow] = field(default_factory=list)
    # What `classes/{id}/categories` answered, per SIS class asked: [(sourcedId, title)].
    class_categories: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # Categories listed by several classes (district-wide): offered to each by title.
    shared_categories: set[str] = field(default_factory=set)
    # The SIS lists no class's own categories (1.1, or `classes/{id}/categories` answered 404
    # for a class it had just listed): each class is offered the district's.
    categories_by_district: bool = False
    class_categories_not_served: str | None = None  # the call that answered 404


@dataclass
class _State:
    """What one import remembers while it runs (what the writer changes, it alone changes)."""

    report: RosterReport
    full: bool
    cache: SourcedIdCache = field(default_factory=SourcedIdCache)
    # The SIS ids seen, per entity: a table of the write transaction (set by `_prepare`).
    seen: SeenIds | None = None
    # A full import into a classroom with no enrolment at all when its write transaction
    # began (a district's first): its pages' enrolments are inserted without being looked up
    # first, and their ids are not kept as seen (see `_prepare`). None otherwise.
    new_enrolments: NewRows | None = None
    deleted: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in ENTITIES})
    # An entity whose stream did not finish (categories refused) must not be deactivated.
    incomplete: set[str] = field(default_factory=set)
    # Rows that need every page before they can be decided (see `_write_users`,
    # `_write_enrolments`): re-numbered people, moved or re-numbered enrolments. As many as
    # the SIS changed that way, not as the district is large.
    # In the order read; an id sent again after it waited waits too, behind it (see
    # `_write_users`). Enrolments by id: a later record of one replaces the earlier.
    deferred_people: list[tuple[str, PersonRow]] = field(default_factory=list)
    deferred_person_ids: set[str] = field(default_factory=set)
    deferred_enrolments: dict[str, EnrolmentRow] = field(default_factory=dict)
    # Enrolments whose SIS id now names another class, person or role (see _finish).
    moved: list[EnrolmentRow] = field(default_factory=list)

    @property
    def seen_ids(self) -> SeenIds:
        assert self.seen is not None, "the write transaction has not started"
        return self.seen


async def import_roster(
    classroom: Classroom,
    client: OneRosterClient,
    *,
    connection_id: int,
    full: bool = False,
    dry_run: bool = False,
    shrink_threshold: float = DEFAULT_SHRINK_THRESHOLD,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    now: datetime | None = None,
    before_commit: Callable[[Session], None] | None = None,
    write_while_reading: bool | None = None,
) -> RosterReport:
    """Import the roster from `client`'s SIS; a delta when a previous import finished, unless `full`.

    Returns the report (status applied, dry_run or on_hold). Raises RosterImportFailed when
    the SIS cannot be read or sends a page that is not valid OneRoster (the message names the
    endpoint) or when the classroom cannot take the changes, and RosterImportCancelled when
    `should_stop()` turns true; in every one of those cases nothing was changed.
    `before_commit(session)` runs in the write transaction just before it commits (a job renews
    its lease there); whatever it raises, nothing is committed. `write_while_reading`: write
    each page in the open transaction as it is read (the default on PostgreSQL), or spool the
    pages to a temporary file and write them after the last one (the default on SQLite, whose
    one write lock would otherwise be held while the SIS is read; see the module docstring).
    """
    if write_while_reading is None:
        write_while_reading = classroom.dialect_name != "sqlite"
    with _database_refusal_in_words():
        return await _import_roster(
            classroom,
            client,
            connection_id=connection_id,
            full=full,
            dry_run=dry_run,
            shrink_threshold=shrink_threshold,
            progress=progress,
            should_stop=should_stop,
            batch_size=batch_size,
            now=now,
            before_commit=before_commit,
            write_while_reading=write_while_reading,
        )


@contextlib.contextmanager
def _database_refusal_in_words() -> Iterator[None]:
    """Whatever part of the import the database refuses (its reads before the transaction
    too), the administrator gets the sentence, never SQL or its parameters."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise RosterImportFailed(_database_refused(exc)) from None


async def _import_roster(
    classroom: Classroom,
    client: OneRosterClient,
    *,
    connection_id: int,
    full: bool,
    dry_run: bool,
    shrink_threshold: float,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    batch_size: int,
    now: datetime | None,
    before_commit: Callable[[Session], None] | None,
    write_while_reading: bool,
) -> RosterReport:
    started = now or datetime.now(UTC)
    watermark = None if full else _watermark(classroom, connection_id)
    report = RosterReport(mode="full" if watermark is None else "delta", dry_run=dry_run)
    report.started_at = format_datetime(started)
    if watermark is not None:
        report.since = format_datetime(watermark - SAFETY_MARGIN)
    state = _State(report, full=watermark is None)
    calls_before = client.calls_made
    reader = _Reader(client, state, report.since, batch_size, progress, should_stop)
    sink: _PageSink
    if write_while_reading:
        sink = _WriteAsRead(classroom, state, dry_run=report.dry_run)
    else:
        sink = _SpoolThenWrite(classroom, state, dry_run=report.dry_run, should_stop=should_stop)
    try:
        await sink.open()
        streamed = await _read_everything(reader, state, sink)
        await _read_class_categories(classroom, client, connection_id, streamed, state, should_stop)
        report.requests = client.calls_made - calls_before
        writer = await sink.all_pages_written()
        finish = partial(
            _finish,
            streamed=streamed,
            state=state,
            connection_id=connection_id,
            started=started,
            shrink_threshold=shrink_threshold,
            batch_size=batch_size,
            should_stop=should_stop,
            before_commit=before_commit,
        )
        await writer.run(finish)
        await writer.finish()
    except BaseException as exc:
        await sink.abandon(exc)
        raise
    report.finished_at = format_datetime(datetime.now(UTC))
    return report


# --- where the pages go: written as read (PostgreSQL), or spooled then written (SQLite) ------


class _PageSink:
    """Takes the pages as they are read, and gives the open write transaction once every page
    is written in it."""

    writer: TransactionThread | None = None

    async def open(self) -> None:
        """Called before the first page."""

    async def put(self, page: _Page) -> None:
        raise NotImplementedError

    async def all_pages_written(self) -> TransactionThread:
        raise NotImplementedError

    async def abandon(self, error: BaseException) -> None:
        if self.writer is not None:
            await self.writer.abandon(error)


def _transaction_thread(
    classroom: Classroom, state: _State, *, dry_run: bool, rows: int
) -> TransactionThread:
    return TransactionThread(
        partial(_one_transaction, classroom, rolled_back=dry_run, big=state.full, rows=rows)
    )


class _WriteAsRead(_PageSink):
    """PostgreSQL: the write transaction is open from the first page; each page is written in
    it while the next is read (at most `MAX_WRITES_WAITING` pages wait for the writer).
    PostgreSQL locks rows, not the database: the console, the job's progress and heartbeat
    write meanwhile, and nobody sees the import's rows before it commits."""

    def __init__(self, classroom: Classroom, state: _State, *, dry_run: bool) -> None:
        self.state = state
        # The page cache size (_room_to_write) only matters on SQLite: no row count needed.
        self.writer = _transaction_thread(classroom, state, dry_run=dry_run, rows=0)

    async def open(self) -> None:
        assert self.writer is not None
        await self.writer.start()
        await self.writer.run(partial(_prepare, self.state))

    async def put(self, page: _Page) -> None:
        assert self.writer is not None
        await self.writer.submit(partial(_write_page, self.state, page))

    async def all_pages_written(self) -> TransactionThread:
        assert self.writer is not None
        await self.writer.drain()
        return self.writer


class _SpoolThenWrite(_PageSink):
    """SQLite: the pages go to a temporary file as they are read (pickled, one at a time), and
    are written after the last one, in one transaction, read back one at a time while the
    previous is written. SQLite has one write lock for the whole database: held while a SIS is
    read (minutes, for a slow SIS) it would stop the console's writes and the job's own
    progress for as long. The lock is held only for the writes, as before; memory stays flat
    (the pages wait on disk, not in memory)."""

    def __init__(
        self,
        classroom: Classroom,
        state: _State,
        *,
        dry_run: bool,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.classroom = classroom
        self.state = state
        self.dry_run = dry_run
        self.should_stop = should_stop
        # Opened by open; closed by all_pages_written or abandon, whichever comes.
        self.spool: IO[bytes] | None = None
        self.pages = 0
        self.rows = 0

    async def open(self) -> None:
        with _spool_trouble_in_words():
            # Unlinked as it is made: gone with the process, even after a kill -9.
            self.spool = tempfile.TemporaryFile(prefix="sislink-roster-")  # noqa: SIM115

    async def put(self, page: _Page) -> None:
        assert self.spool is not None
        with _spool_trouble_in_words():
            pickle.dump(page, self.spool, protocol=pickle.HIGHEST_PROTOCOL)
        self.pages += 1
        self.rows += page.row_count()

    async def all_pages_written(self) -> TransactionThread:
        self.writer = _transaction_thread(
            self.classroom, self.state, dry_run=self.dry_run, rows=self.rows
        )
        await self.writer.start()
        await self.writer.run(partial(_prepare, self.state))
        spool = self.spool
        assert spool is not None
        with _spool_trouble_in_words():
            spool.seek(0)  # flushes what is still buffered: the disk may be full only now
        for _ in range(self.pages):
            if self.should_stop is not None and self.should_stop():
                raise RosterImportCancelled(self.state.report)
            # Our own pages, in a file nobody else can open (unlinked from its creation).
            with _spool_trouble_in_words():
                page = pickle.load(spool)  # noqa: S301
            await self.writer.submit(partial(_write_page, self.state, page))
        self._close_spool()
        await self.writer.drain()
        return self.writer

    def _close_spool(self) -> None:
        spool, self.spool = self.spool, None
        if spool is not None:
            # Closing flushes its buffer: on a full disk that fails again, and must not hide
            # the first error nor keep the transaction from being rolled back.
            with contextlib.suppress(OSError):
                spool.close()

    async def abandon(self, error: BaseException) -> None:
        self._close_spool()
        await super().abandon(error)


@contextlib.contextmanager
def _spool_trouble_in_words() -> Iterator[None]:
    """The temporary file that holds the pages read (SQLite) could not be written or read
    back: a full disk, mostly. One sentence, the classroom untouched."""
    try:
        yield
    except OSError as exc:
        where = tempfile.gettempdir()
        logger.error("roster import: its temporary file in %s failed: %s", where, exc)
        raise RosterImportFailed(
            "The roster import stopped and changed nothing: sislink could not keep the pages "
            f"it read in a temporary file in {where} ({exc.strerror or exc}). Free some space "
            "there (or set TMPDIR to a directory with room), then import again."
        ) from None


def _database_refused(exc: SQLAlchemyError) -> str:
    """The sentence for the administrator; the operator's log gets the database's own words
    (never the statement's parameters: they hold names and emails)."""
    orig = getattr(exc, "orig", None)
    said = str(orig if orig is not None else exc).strip().splitlines()
    logger.error(
        "roster import: the database refused the changes (%s: %s); nothing was applied",
        type(orig if orig is not None else exc).__name__,
        said[0] if said else "",
    )
    return (
        "The roster import changed nothing: the classroom's database refused part of what the "
        "SIS sent (the operator's log says which rule). Run the import again; if it fails the "
        "same way, send the log line to whoever runs sislink."
    )


@contextlib.contextmanager
def _one_transaction(
    classroom: Classroom, *, rolled_back: bool, big: bool, rows: int
) -> Iterator[Session]:
    """One write transaction, committed at the end of the block (or rolled back: a dry run)."""
    if not rolled_back:
        with classroom.transaction() as session, _room_to_write(session, big, rows):
            yield session
        return
    with classroom.session() as session:
        session.connection(execution_options=WRITE_OPTIONS)
        try:
            with _room_to_write(session, big, rows):
                yield session
        finally:
            session.rollback()  # a dry run leaves nothing behind


@contextlib.contextmanager
def _room_to_write(session: Session, big: bool, rows: int) -> Iterator[None]:
    """On SQLite, a page cache big enough for one import's transaction, then the default again.

    With SQLite's default 2 MB cache, a transaction that writes 400,000 enrolments spills the
    same index pages to the WAL over and over (a full import of 50,000 students took 4.7 times
    as long as in batches). The cache only takes what the transaction touches; a small import
    (a delta) keeps the default, so that its reads of whole tables are not all kept in memory.
    `rows` is what the import spooled; a full import that writes while it reads (not knowing
    how many rows will come) counts as big.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite" or (rows < SQLITE_BIG_IMPORT_ROWS and not big):
        yield
        return
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar()
    connection.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {int(before or -2000)}")


def _report_classes_left_unlinked(
    session: Session, connection_id: int, report: RosterReport
) -> None:
    """Tell, class by class, why an imported class is still unlinked after the import linked
    the others: someone unlinked it by hand (imports leave that be), or another class is linked
    to its SIS class already. Without this, a teacher sees only that it is not linked."""
    connection = session.get(SisConnection, connection_id)
    if connection is None:
        return
    unlinked = session.scalars(
        select(Class)
        .outerjoin(ClassLink, ClassLink.class_id == Class.id)
        .where(
            Class.sis_sourced_id.is_not(None),
            Class.active.is_(True),
            ClassLink.id.is_(None),
        )
        .order_by(Class.title, Class.id)
    )
    for klass in unlinked:
        sis_class_id = klass.sis_sourced_id or ""
        holder = connections.sis_class_holder(session, connection, sis_class_id, klass.id)
        if klass.sis_unlinked_at is not None:
            reason, unlinked_at = "unlinked_by_hand", klass.sis_unlinked_at.isoformat()
        elif holder is not None:
            reason, unlinked_at = "sis_class_taken", None
        else:
            continue  # unlinked at this moment by someone else; the next import will say
        report.left_unlinked(
            ClassLeftUnlinked(
                class_id=klass.id,
                class_title=klass.title,
                sis_class_id=sis_class_id,
                reason=reason,
                unlinked_at=unlinked_at,
                holder_id=holder.id if holder is not None else None,
                holder_title=holder.title if holder is not None else None,
            )
        )


# --- reading the SIS: each batch is handed on as it is read --------------------------------


class _Reader:
    """Streams one collection in batches of models; invalid records are rejected, by id."""

    def __init__(
        self,
        client: OneRosterClient,
        state: _State,
        since: str | None,
        batch_size: int,
        progress: Progress | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.client = client
        self.state = state
        self.since = since
        self.batch_size = batch_size
        self.progress = progress
        self.should_stop = should_stop

    async def batches(
        self, endpoint: str, label: str
    ) -> AsyncIterator[tuple[list[Any], list[tuple[str, tuple[str, ...], Any, str]]]]:
        """Batches of valid models, each with the records of it that did not validate
        (endpoint, the entities each may be, its sourcedId, the reason).

        The SIS's pages come as models (`iter_model_pages`: a page whose every record is
        valid is validated in one pass, the cheap way) and are cut into batches of
        `batch_size` records, valid and not; within a page its valid records come before
        its invalid ones (the page does not say where each invalid one stood)."""
        flt = where("dateLastModified", ">", self.since) if self.since else None
        total: int | None = None
        with _stopping_on_bad_pages(endpoint):
            if self.progress is not None:
                total = (await self.client.page(endpoint, limit=1, filter=flt)).total_count
            batch: list[Any] = []
            rejected: list[tuple[str, tuple[str, ...], Any, str]] = []
            read = 0
            async for page in self.client.iter_model_pages(endpoint, filter=flt):
                models = page.models
                taken = 0
                while taken < len(models):
                    room = self.batch_size - len(batch) - len(rejected)
                    chunk = models[taken : taken + room]
                    batch.extend(chunk)
                    read += len(chunk)
                    taken += len(chunk)
                    if len(batch) + len(rejected) >= self.batch_size:
                        yield batch, rejected
                        batch, rejected = [], []
                        self._after_batch(label, read, total)
                for record, exc in page.rejected:
                    read += 1
                    reason = _first_problem(exc)
                    entities = tuple(_entities_of(label, record))
                    rejected.append((endpoint, entities, record.get("sourcedId"), reason))
                    if len(batch) + len(rejected) >= self.batch_size:
                        yield batch, rejected
                        batch, rejected = [], []
                        self._after_batch(label, read, total)
            if batch or rejected:
                yield batch, rejected
            self._after_batch(label, read, total)

    def _after_batch(self, label: str, read: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(label, read, total)
        if self.should_stop is not None and self.should_stop():
            raise RosterImportCancelled(self.state.report)


@contextlib.contextmanager
def _stopping_on_bad_pages(endpoint: str) -> Iterator[None]:
    try:
        yield
    except (MalformedResponse, PagingError) as exc:
        raise RosterImportFailed(
            f"The roster import stopped and changed nothing: the SIS's {endpoint} endpoint "
            f"sent a page that is not valid OneRoster ({exc}). Ask the SIS vendor to fix it, "
            "then import again."
        ) from None


# The entities one stream feeds: academic sessions are terms and grading periods, users are
# teachers and students.
_STREAM_FEEDS = {"terms": ("terms", "grading_periods"), "students": ("students", "teachers")}


def _entities_of(label: str, record: dict[str, Any]) -> list[str]:
    """The entities an invalid record of this stream may be, the likeliest first (from its
    raw type or roles); all of the stream's when the record does not say."""
    feeds = _STREAM_FEEDS.get(label)
    if feeds is None:
        return [label]
    if label == "terms":
        kind = record.get("type")
        likely = (
            "grading_periods"
            if kind == "gradingPeriod"
            else "terms"
            if kind in TERM_TYPES
            else None
        )
    else:
        said = record.get("roles")
        roles = (
            {str(r.get("role")) for r in said if isinstance(r, dict)}
            if isinstance(said, list)
            else set()
        )
        if isinstance(record.get("role"), str):
            roles.add(record["role"])  # OneRoster 1.1: one role
        likely = "teachers" if "teacher" in roles else "students" if "student" in roles else None
    return [likely, *(f for f in feeds if f != likely)] if likely else list(feeds)


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"


async def _read_everything(reader: _Reader, state: _State, sink: _PageSink) -> _Streamed:
    streamed = _Streamed()
    try:
        await _read_roster(reader, state, sink, streamed)
    except (RosterImportFailed, RosterImportCancelled):
        raise
    except OneRosterError as exc:
        raise RosterImportFailed(f"The roster import stopped and changed nothing: {exc}") from None
    return streamed


async def _read_roster(
    reader: _Reader, state: _State, sink: _PageSink, streamed: _Streamed
) -> None:
    """Read every collection in the order its rows depend on each other, handing each batch
    to `sink` as soon as it is read (schools before courses before classes, people before
    enrolments)."""
    async for batch, rejected in reader.batches("schools", "schools"):
        orgs = _split_deleted(state, "schools", batch)
        rows = [SchoolRow(org.sourced_id, org.name, org.identifier or None) for org in orgs]
        await sink.put(_Page("schools", rows, _ids("schools", rows), rejected))
    sessions: list[ors.AcademicSession] = []  # a district has tens of sessions: they fit
    rejected_sessions: list[tuple[str, tuple[str, ...], Any, str]] = []
    async for batch, rejected in reader.batches("academic_sessions", "terms"):
        sessions.extend(batch)
        rejected_sessions.extend(rejected)
    await sink.put(_sessions_page(sessions, rejected_sessions, state, streamed))
    async for batch, rejected in reader.batches("courses", "courses"):
        courses: list[CourseRow] = []
        for course in _split_deleted(state, "courses", batch):
            school = course.org.sourced_id if course.org is not None else None
            courses.append(
                CourseRow(course.sourced_id, course.title, course.course_code or None, school)
            )
        await sink.put(_Page("courses", courses, _ids("courses", courses), rejected))
    async for batch, rejected in reader.batches("classes", "classes"):
        class_rows = []
        for cls in _split_deleted(state, "classes", batch):
            class_row = ClassRow(
                cls.sourced_id,
                cls.title,
                cls.class_code,
                cls.school.sourced_id,
                None,
                cls.course.sourced_id,
            )
            terms = tuple(ref.sourced_id for ref in cls.terms)
            streamed.class_terms[cls.sourced_id] = terms
            class_rows.append((class_row, terms))
        seen = {"classes": [row.sourced_id for row, _ in class_rows]}
        await sink.put(_Page("classes", class_rows, seen, rejected))
    async for batch, rejected in reader.batches("users", "students"):
        await sink.put(_users_page(batch, rejected, state))
    async for batch, rejected in reader.batches("enrollments", "enrolments"):
        await sink.put(_enrolments_page(batch, rejected, state))
    try:
        async for batch, rejected in reader.batches("categories", "categories"):
            await sink.put(_categories_page(batch, rejected, state, streamed))
    except (PermissionDenied, AuthenticationFailed) as exc:
        state.incomplete.add("categories")
        # Told to the report by the writer, after the pages it wrote (the report is its own).
        await sink.put(_Page("categories_refused", str(exc)[:300]))


def _ids(entity: str, rows: Sequence[Any]) -> dict[str, list[str]]:
    return {entity: [row.sourced_id for row in rows]}


def _split_deleted(state: _State, entity: str, records: list[Any]) -> list[Any]:
    """The records still active; `tobedeleted` ones are noted for deactivation at the end."""
    active = []
    for record in records:
        if record.status == "tobedeleted":
            state.deleted[entity].append(record.sourced_id)
        else:
            active.append(record)
    return active


def _sessions_page(
    sessions: list[ors.AcademicSession],
    rejected: list[tuple[str, tuple[str, ...], Any, str]],
    state: _State,
    streamed: _Streamed,
) -> _Page:
    terms = _split_deleted(state, "terms", [s for s in sessions if s.type in TERM_TYPES])
    periods = _split_deleted(
        state, "grading_periods", [s for s in sessions if s.type == "gradingPeriod"]
    )
    term_rows = [
        TermRow(t.sourced_id, t.title, t.start_date, t.end_date, t.school_year) for t in terms
    ]
    period_rows = [
        GradingPeriodRow(
            p.sourced_id,
            p.title,
            p.parent.sourced_id if p.parent else None,
            p.start_date,
            p.end_date,
        )
        for p in periods
    ]
    streamed.terms_with_new_periods = {
        s.parent.sourced_id for s in sessions if s.type == "gradingPeriod" and s.parent is not None
    }
    seen = _ids("terms", term_rows) | _ids("grading_periods", period_rows)
    return _Page("sessions", (term_rows, period_rows), seen, rejected)


def _users_page(
    batch: list[ors.User], rejected: list[tuple[str, tuple[str, ...], Any, str]], state: _State
) -> _Page:
    rows: list[tuple[str, PersonRow]] = []
    seen: dict[str, list[str]] = {"teachers": [], "students": []}
    for user in batch:
        is_teacher = user.has_role("teacher")
        is_student = user.has_role("student")
        if not (is_teacher or is_student):
            continue  # parents, guardians, administrators: not imported
        label = "teachers" if is_teacher else "students"
        if user.status == "tobedeleted":
            state.deleted[label].append(user.sourced_id)
            continue
        seen[label].append(user.sourced_id)
        roles = frozenset(
            role for role, held in ((Role.TEACHER, is_teacher), (Role.STUDENT, is_student)) if held
        )
        given = user.preferred_first_name or user.given_name
        row = PersonRow(
            user.sourced_id,
            f"{given} {user.family_name}".strip() or user.sourced_id,
            user.email,
            user.given_name,
            user.family_name,
            user.identifier,
            roles,
        )
        rows.append((label, row))
    return _Page("users", rows, seen, rejected)


_ENROLMENT_ROLES = {"teacher": EnrolmentRole.TEACHER, "student": EnrolmentRole.STUDENT}


def _enrolments_page(
    batch: list[ors.Enrollment],
    rejected: list[tuple[str, tuple[str, ...], Any, str]],
    state: _State,
) -> _Page:
    # One pass, names bound locally: enrolments are three records in four of a district's
    # (408,000 of 545,000 at 50,000 students), and this runs on the reader's side of the GIL.
    rows: list[EnrolmentRow] = []
    ids: list[str] = []
    other_roles: list[tuple[str, str]] = []
    deleted = state.deleted["enrolments"]
    roles = _ENROLMENT_ROLES
    intern = sys.intern
    for enrolment in batch:
        sourced_id = enrolment.sourced_id
        if enrolment.status == "tobedeleted":
            deleted.append(sourced_id)
            continue
        role = roles.get(enrolment.role)
        if role is None:
            other_roles.append((sourced_id, str(enrolment.role)))
            continue
        ids.append(sourced_id)
        rows.append(
            EnrolmentRow(
                sourced_id,
                # A class's id comes in once per member: one string each, not one per member.
                intern(enrolment.class_.sourced_id),
                intern(enrolment.user.sourced_id),
                role,
                bool(enrolment.primary),
            )
        )
    return _Page("enrolments", rows, {"enrolments": ids}, rejected, other_roles)


def _categories_page(
    batch: list[ors.Category],
    rejected: list[tuple[str, tuple[str, ...], Any, str]],
    state: _State,
    streamed: _Streamed,
) -> _Page:
    rows: list[CategoryRow] = []
    seen: list[str] = []
    for category in _split_deleted(state, "categories", batch):
        seen.append(category.sourced_id)
        class_id = (category.metadata or {}).get(CATEGORY_CLASS_KEY)
        if class_id:
            row = CategoryRow(category.sourced_id, str(class_id), category.title, category.weight)
            rows.append(row)
            streamed.categories_changed.add(row.class_sourced_id)
        else:
            # OneRoster 1.2 categories name no class: `classes/{id}/categories` says whose.
            streamed.unplaced[category.sourced_id] = (category.title, category.weight)
    return _Page("categories", rows, {"categories": seen}, rejected)


async def _read_class_categories(
    classroom: Classroom,
    client: OneRosterClient,
    connection_id: int,
    streamed: _Streamed,
    state: _State,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Place the categories that name no class by asking `classes/{id}/categories`.

    Asked of every class this import brings in, and, when the SIS sent a category the
    classroom does not know yet, of every class linked now too (its class is not otherwise
    known). A SIS whose categories all name their class (the built-in SIS's metadata) is
    asked nothing more.
    """
    if not streamed.unplaced:
        return
    if not client.spec.has("class_categories"):
        _offer_district_categories(streamed, state)  # OneRoster 1.1: no class lists its own
        return
    listed = set(streamed.class_terms)
    asked = set(listed)
    with classroom.session() as session:
        unplaced = list(streamed.unplaced)
        known = {
            sourced_id
            for start in range(0, len(unplaced), 5000)
            for sourced_id in session.scalars(
                select(Category.sis_sourced_id).where(
                    Category.sis_sourced_id.in_(unplaced[start : start + 5000])
                )
            )
        }
        if any(sid not in known for sid in streamed.unplaced):
            asked |= set(
                session.scalars(
                    select(ClassLink.sis_class_sourced_id)
                    .join(Class, Class.id == ClassLink.class_id)
                    .where(ClassLink.connection_id == connection_id, Class.active.is_(True))
                )
            )
    gate = asyncio.Semaphore(CLASS_CATEGORY_CALLS_AT_ONCE)
    answered = False
    cancelled = False

    async def ask(class_sourced_id: str) -> None:
        nonlocal answered, cancelled
        async with gate:
            if streamed.class_categories_not_served is not None or cancelled:
                return  # the SIS does not serve the lists, or someone cancelled: ask no more
            if should_stop is not None and should_stop():
                cancelled = True
                return
            try:
                found = await client.categories_for_class(class_sourced_id)
            except SisNotFound as exc:
                # A 404 for a class the SIS has just listed (or before any class's list was
                # served) is the endpoint missing, not the class: one call says so for all.
                if class_sourced_id in listed or not answered:
                    streamed.class_categories_not_served = f"{exc.method} {exc.path}"
                return  # otherwise a class the SIS no longer serves keeps what it had
            answered = True
        streamed.class_categories[class_sourced_id] = [
            (c.sourced_id, c.title) for c in found if c.status == "active"
        ]

    refused: list[str] = []
    try:
        async with asyncio.TaskGroup() as group:
            # The classes the SIS just listed first: a 404 for one of them means "not served".
            for class_sourced_id in sorted(asked, key=lambda c: (c not in listed, c)):
                group.create_task(ask(class_sourced_id))
    except* (PermissionDenied, AuthenticationFailed) as group_refused:
        refused.append(str(group_refused.exceptions[0])[:300])
    except* OneRosterError as failed:
        raise RosterImportFailed(
            "The roster import stopped and changed nothing: the SIS could not list a class's "
            f"categories ({failed.exceptions[0]})."
        ) from None
    if cancelled:
        raise RosterImportCancelled(state.report)
    if refused:
        state.incomplete.add("categories")
        state.report.warn("categories_not_permitted", "categories", refused[0])
        streamed.class_categories.clear()
        return
    if streamed.class_categories_not_served is not None:
        streamed.class_categories.clear()
        state.report.warn(
            "class_categories_not_served",
            "categories",
            f"{streamed.class_categories_not_served} answered 404: the SIS does not list a "
            "class's own categories, so each linked class is offered the district's",
        )
        _offer_district_categories(streamed, state)
        return
    holders: dict[str, list[str]] = {}
    for class_sourced_id, its_categories in streamed.class_categories.items():
        for sourced_id, _ in its_categories:
            holders.setdefault(sourced_id, []).append(class_sourced_id)
    for sourced_id, (title, weight) in streamed.unplaced.items():
        classes = holders.get(sourced_id, [])
        if len(classes) == 1:  # a category of one class: kept with its SIS id
            streamed.placed.append(CategoryRow(sourced_id, classes[0], title, weight))
            streamed.categories_changed.add(classes[0])
        elif len(classes) > 1:
            streamed.shared_categories.add(sourced_id)


def _offer_district_categories(streamed: _Streamed, state: _State) -> None:
    """The SIS lists no class's own categories: a full import offers each linked class the
    district's (as linking does); a delta, which read only what changed, keeps what they had."""
    streamed.categories_by_district = True
    if state.full:
        streamed.shared_categories |= set(streamed.unplaced)


# --- writing: every page in the one transaction, then the end of the import ------------------


def _prepare(state: _State, session: Session) -> None:
    """First thing in the write transaction: the table of the ids seen; on PostgreSQL, no
    idle-in-transaction timeout for it. The transaction is idle while the SIS is read (for
    minutes, with a slow SIS), and a server that ends idle transactions (a managed
    PostgreSQL's idle_in_transaction_session_timeout) would end it; it is not forgotten but
    waiting for the reader, and a killed import's connection closes, which ends it anyway.

    A full import that finds no enrolment at all (a district's first) knows that every
    enrolment row it meets later is its own, written for an id it was sent: it keeps none of
    their ids (a renumbered or moved enrolment's holder was sent; none is missing at the
    end, but those whose last record was of another role), and it inserts each page's
    enrolments without looking them up (`NewRows`). Asked here, in the transaction: an
    applied import holds its lock, so no other import writes enrolments meanwhile. A dry run
    takes no lock: an import committed while it runs may make its preview differ from what
    the looked-up way would have shown (it commits nothing either way)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        session.execute(text("SET LOCAL idle_in_transaction_session_timeout = 0"))
    state.seen = SeenIds(session)
    if state.full and connection.execute(select(Enrolment.id).limit(1)).first() is None:
        state.seen.own_rows("enrolments", Enrolment)
        state.new_enrolments = NewRows()


def _write_page(state: _State, page: _Page, session: Session) -> None:
    """Apply one page: what it shows as seen, its rejected records, then its rows."""
    seen = state.seen_ids
    for entity, ids in page.seen.items():
        seen.add(entity, ids)
    for endpoint, entities, sourced_id, reason in page.rejected:
        _reject(state, seen, endpoint, entities, sourced_id, reason)
    _PAGE_WRITERS[page.kind](session, state, page)


def _reject(
    state: _State,
    seen: SeenIds,
    endpoint: str,
    entities: tuple[str, ...],
    sourced_id: Any,
    reason: str,
) -> None:
    """An invalid record is not a deletion: its row stays as it was, and it is reported."""
    entity = entities[0]
    report = state.report
    report.counts[entity].skipped += 1
    report.warn("invalid_records", entity, f"{sourced_id!r} from {endpoint}: {reason}")
    shown = str(sourced_id) if sourced_id is not None else ""
    # An id holding a NUL (refused for it) is written out as \x00: the report is stored and
    # shown, and no database or page should get the character itself.
    report.reject(entity, shown.replace("\x00", "\\x00"), reason)
    if isinstance(sourced_id, str) and "\x00" not in sourced_id:
        # Seen as whatever it may be: a grading period (or a teacher) that does not
        # validate is not deactivated for it either. (No row ever has an id with a NUL.)
        for fed in entities:
            seen.add(fed, [sourced_id])


def _write_schools(session: Session, state: _State, page: _Page) -> None:
    rows = page.rows
    _record(session, state, "schools", School, rows, partial(upsert_schools, session, rows))


def _write_sessions(session: Session, state: _State, page: _Page) -> None:
    term_rows, period_rows = page.rows
    _record(session, state, "terms", Term, term_rows, lambda: upsert_terms(session, term_rows))
    _record(
        session,
        state,
        "grading_periods",
        GradingPeriod,
        period_rows,
        lambda: upsert_grading_periods(session, period_rows, state.cache),
    )
    _warn_periods_outside_terms(session, period_rows, state)


def _write_courses(session: Session, state: _State, page: _Page) -> None:
    _courses(session, page.rows, state)


def _write_classes(session: Session, state: _State, page: _Page) -> None:
    _classes(session, page.rows, state)


def _write_users(session: Session, state: _State, page: _Page) -> None:
    """People of one page. In a full import a new person whose email an active SIS person
    holds waits for the end: whether the SIS re-numbered that person depends on whether it
    still sends the old id, maybe on a later page (`upsert_people(defer_held=...)`)."""
    for label, row in page.rows:
        if not (row.email or "").strip():
            state.report.warn(f"{label}_without_email", label, repr(row.sourced_id))
    # A person sent again after an earlier record of theirs waited (a SIS that sends one id
    # on two pages) waits too, behind it: written now, the later record would make a new
    # person, and the earlier one, applied at the end, would undo it (before streaming the
    # records were applied in the order read, the last winning).
    waiting = state.deferred_person_ids
    for label, row in page.rows:
        if row.sourced_id in waiting:
            state.deferred_people.append((label, row))
    for label in ("teachers", "students"):
        rows = [row for held, row in page.rows if held == label and row.sourced_id not in waiting]
        if rows:
            upsert = partial(upsert_people, session, rows, defer_held=state.full)
            counts = _record(session, state, label, Person, rows, upsert)
            state.deferred_people.extend((label, row) for row in counts.deferred)
            waiting.update(row.sourced_id for row in counts.deferred)


def _write_enrolments(session: Session, state: _State, page: _Page) -> None:
    """Enrolments of one page. One that moved (its id now names another class, person or
    role), or whose place another SIS enrolment holds, waits for the end: ending a moved one
    is a deactivation the shrink guard decides, and a re-numbered one may take over only an
    id the SIS no longer sends (`upsert_enrolments(defer_held=True)`). So do those of a
    person who waits."""
    report = state.report
    for sourced_id, role in page.other_roles:
        report.counts["enrolments"].skipped += 1
        report.warn("enrolments_other_role", "enrolments", f"{sourced_id!r} (role {role})")
    # Not imported: an enrolment of ours with this id (a role changed) is not sent now
    # (unless a later page sends it again).
    state.seen_ids.discard("enrolments", [sourced_id for sourced_id, _ in page.other_roles])
    waiting_people = state.deferred_person_ids
    deferred = state.deferred_enrolments
    rows = []
    for row in page.rows:
        # One whose person waits, waits; so does one sent again after an earlier record of
        # it waited, in its place (the last record wins, as `upsert_enrolments` would have
        # it within one batch; written now, the earlier one applied at the end would win).
        if row.person_sourced_id in waiting_people or row.sourced_id in deferred:
            deferred.pop(row.sourced_id, None)
            deferred[row.sourced_id] = row
        else:
            rows.append(row)
    if rows:
        upsert = partial(
            upsert_enrolments,
            session,
            rows,
            state.cache,
            defer_held=True,
            new_rows=state.new_enrolments,
        )
        counts = _record(session, state, "enrolments", Enrolment, rows, upsert)
        for row in counts.deferred:
            deferred[row.sourced_id] = row


def _write_categories(session: Session, state: _State, page: _Page) -> None:
    rows = page.rows
    if rows:
        upsert = partial(upsert_categories, session, rows, state.cache)
        _record(session, state, "categories", Category, rows, upsert)


def _write_categories_refused(session: Session, state: _State, page: _Page) -> None:
    state.report.warn("categories_not_permitted", "categories", page.rows)


_PAGE_WRITERS: dict[str, Callable[[Session, _State, _Page], None]] = {
    "schools": _write_schools,
    "sessions": _write_sessions,
    "courses": _write_courses,
    "classes": _write_classes,
    "users": _write_users,
    "enrolments": _write_enrolments,
    "categories": _write_categories,
    "categories_refused": _write_categories_refused,
}


def _finish(
    session: Session,
    *,
    streamed: _Streamed,
    state: _State,
    connection_id: int,
    started: datetime,
    shrink_threshold: float,
    batch_size: int,
    should_stop: Callable[[], bool] | None,
    before_commit: Callable[[Session], None] | None,
) -> None:
    """Once every page is written, in the same transaction: the rows that waited for the whole
    import, the categories placed by class, then the deactivations or the hold, the links,
    the classes' SIS facts, the watermark."""
    report = state.report
    _write_deferred(session, streamed, state, batch_size=batch_size, should_stop=should_stop)
    deactivations = _deactivations(session, state)
    for entity, ids in deactivations.items():
        for sourced_id in ids[:5]:
            report.example(entity, "deactivate", sourced_id)
    hold = _shrink_guard(
        deactivations, _active_counts(session), shrink_threshold, moved=len(state.moved)
    )
    if report.dry_run or hold is None:
        _apply_moved_enrolments(session, state, batch_size)
    else:
        for row in state.moved:  # left as they were: the next applied import moves them
            report.warn("enrolments_moved_held", "enrolments", repr(row.sourced_id))
    if report.dry_run:
        for entity, ids in deactivations.items():
            report.counts[entity].deactivated += len(ids)
        report.status = "dry_run"
    elif hold is not None:
        report.status = "on_hold"
        report.hold_reason = hold
        report.deactivations = deactivations
    else:
        _apply_deactivations(session, report, deactivations)
        advance_watermark(session, connection_id, started, full=state.full)
        report.status = "applied"
    if not report.dry_run:
        report.classes_linked = connections.link_imported_classes(session, connection_id)
        _report_classes_left_unlinked(session, connection_id, report)
        rebuild_class_facts(session, connection_id, _facts_from(streamed, state))
        connections.record_activity(session, connection_id, imported=True)
    _state_warnings(session, report)
    state.seen_ids.drop()
    # The job's lease, renewed in this transaction (its heartbeat could not write meanwhile
    # on SQLite); it raises, so nothing is committed, if the job was taken over.
    if before_commit is not None and not report.dry_run:
        before_commit(session)


def _write_deferred(
    session: Session,
    streamed: _Streamed,
    state: _State,
    *,
    batch_size: int,
    should_stop: Callable[[], bool] | None,
) -> None:
    """What needed every page: the people and enrolments that waited (now that every id the
    SIS sends is known), and the categories `classes/{id}/categories` placed."""

    def batches(rows: Sequence[T]) -> Iterator[Sequence[T]]:
        for start in range(0, len(rows), batch_size):
            if should_stop is not None and should_stop():
                raise RosterImportCancelled(state.report)
            yield rows[start : start + batch_size]

    def one_record_each(
        people: Sequence[tuple[str, PersonRow]],
    ) -> Iterator[Sequence[tuple[str, PersonRow]]]:
        # In the order read, a batch ending before an id comes again: each record of a person
        # sent twice is applied in turn, the last winning (one batch would keep only it).
        start, ids = 0, set[str]()
        for index, (_, row) in enumerate(people):
            if row.sourced_id in ids:
                yield from batches(people[start:index])
                start, ids = index, set()
            ids.add(row.sourced_id)
        yield from batches(people[start:])

    seen = state.seen_ids
    people_sent = seen.sent("teachers", "students") if state.full else None
    for people in one_record_each(state.deferred_people):
        for label in ("teachers", "students"):
            rows = [row for held, row in people if held == label]
            if rows:
                upsert = partial(upsert_people, session, rows, sent_now=people_sent)
                _record(session, state, label, Person, rows, upsert)
    # Enrolments whose id now names another class, person or role wait for the shrink guard:
    # ending them is a deactivation (`_apply_moved_enrolments`, when the import is not held).
    waiting = list(state.deferred_enrolments.values())
    moved_ids = find_moved_enrolments(session, waiting, state.cache)
    state.moved = [row for row in waiting if row.sourced_id in moved_ids]
    staying = [row for row in waiting if row.sourced_id not in moved_ids]
    renumbered = seen.sent("enrolments") if state.full else None
    for enrolments in batches(staying):
        enrolment_rows = list(enrolments)
        upsert = partial(
            upsert_enrolments, session, enrolment_rows, state.cache, sent_now=renumbered
        )
        _record(session, state, "enrolments", Enrolment, enrolment_rows, upsert)
    for categories in batches(streamed.placed):
        category_rows = list(categories)
        upsert = partial(upsert_categories, session, category_rows, state.cache)
        _record(session, state, "categories", Category, category_rows, upsert)
    placed = {row.sourced_id for row in streamed.placed} | streamed.shared_categories
    unplaced = [s for s in streamed.unplaced if s not in placed]
    _keep_or_skip_unplaced(session, unplaced, streamed, state)


def _apply_moved_enrolments(session: Session, state: _State, batch_size: int) -> None:
    """End the enrolments whose id the SIS now uses for another class, person or role, then
    start the new ones (all ended before any starts, so that ids that swap places never meet)."""
    moved_rows = state.moved
    report = state.report
    # A full import's enrolment ids (as `_write_deferred` gives upsert_enrolments): a
    # re-numbered one takes its row over from an id the SIS no longer sends.
    sent_now = state.seen_ids.sent("enrolments") if state.full else None
    for start in range(0, len(moved_rows), batch_size):
        for moved in end_moved_enrolments(
            session, moved_rows[start : start + batch_size], state.cache
        ):
            report.counts["enrolments"].deactivated += 1
            report.warn("enrolments_moved", "enrolments", moved.sentence)
    for start in range(0, len(moved_rows), batch_size):
        rows = moved_rows[start : start + batch_size]
        _record(
            session,
            state,
            "enrolments",
            Enrolment,
            rows,
            partial(upsert_enrolments, session, rows, state.cache, sent_now=sent_now),
        )


def _keep_or_skip_unplaced(
    session: Session, sourced_ids: list[str], streamed: _Streamed, state: _State
) -> None:
    """Categories that name no class, and that no class was asked about: a category the
    classroom has already keeps its class (title and weight updated); any other is skipped.
    Their classes are looked up together, and upserted together."""
    class_of: dict[str, str] = {}
    for start in range(0, len(sourced_ids), 5000):
        for category_id, class_sis_id in session.execute(
            select(Category.sis_sourced_id, Class.sis_sourced_id)
            .join(Class, Class.id == Category.class_id)
            .where(Category.sis_sourced_id.in_(sourced_ids[start : start + 5000]))
        ):
            if category_id is not None and class_sis_id is not None:
                class_of[category_id] = class_sis_id
    rows = []
    for sourced_id in sourced_ids:
        if sourced_id not in class_of:
            state.report.counts["categories"].skipped += 1
            state.report.warn("categories_without_class", "categories", repr(sourced_id))
            continue
        title, weight = streamed.unplaced[sourced_id]
        rows.append(CategoryRow(sourced_id, class_of[sourced_id], title, weight))
    if rows:
        _record(
            session,
            state,
            "categories",
            Category,
            rows,
            partial(upsert_categories, session, rows, state.cache),
        )


def _facts_from(streamed: _Streamed, state: _State) -> ClassFactsFromRoster:
    return ClassFactsFromRoster(
        full=state.full,
        class_terms=streamed.class_terms,
        class_categories=streamed.class_categories,
        categories_changed=streamed.categories_changed,
        terms_with_new_periods=streamed.terms_with_new_periods,
        categories_known="categories" not in state.incomplete,
        district_categories=(
            [(sourced_id, title) for sourced_id, (title, _) in streamed.unplaced.items()]
            if streamed.categories_by_district and state.full
            else None
        ),
        class_categories_not_served=streamed.class_categories_not_served,
    )


def _record(
    session: Session,
    state: _State,
    entity: str,
    model: Any,
    rows: Sequence[Any],
    upsert: Callable[[], UpsertCounts],
) -> UpsertCounts:
    """Upsert rows of one entity, counting and noting examples and skipped rows."""
    report = state.report
    # Only a dry run compares rows before and after, for examples of updates: the ids (a list
    # per page) are made for it alone.
    ids = [row.sourced_id for row in rows] if _wants_update_examples(report, entity) else None
    before = _snapshot(session, model, ids) if ids is not None else None
    counts = upsert()
    # Rows put off to the end of the import are told when they are written, not twice; and
    # their ids are looked up again then (a moved enrolment's id is a new row's by then).
    deferred = {row.sourced_id for row in counts.deferred}
    if deferred:
        state.cache.forget(model, deferred)
    # The rows created, as the upsert tells them: not looked up before it, which cost a
    # query per page of an import that creates nothing and kept every id it asked about.
    for sourced_id in counts.created_ids:
        report.example(entity, "create", sourced_id)
    if ids is not None and before is not None and counts.updated:
        after = _snapshot(session, model, ids)
        for sourced_id, values in after.items():
            if sourced_id in before and before[sourced_id] != values:
                report.example(entity, "update", sourced_id)
    tally = report.counts[entity]
    tally.created += counts.created
    tally.updated += counts.updated
    tally.unchanged += counts.unchanged
    tally.skipped += len(counts.skipped)
    for skipped in counts.skipped:
        report.warn(
            _warning_code(entity, skipped.reason),
            entity,
            f"{skipped.sourced_id!r}: {skipped.reason}",
        )
    for old_id, new_id in counts.taken_over:
        report.warn(
            "people_renumbered",
            entity,
            f"{new_id!r} took over the row of {old_id!r} (same email, and the same identifier "
            "or name): the SIS re-numbered them; check it is the same person",
        )
    return counts


def _wants_update_examples(report: RosterReport, entity: str) -> bool:
    # Examples of updates cost two extra reads per batch: only dry runs show them.
    return report.dry_run and report.wants_examples(entity, "update")


def _snapshot(session: Session, model: Any, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    table = model.__table__
    columns = [c for c in table.columns if c.name not in ("updated_at", "created_at")]
    found: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        rows = session.execute(select(*columns).where(table.c.sis_sourced_id.in_(chunk)))
        for row in rows:
            found[row.sis_sourced_id] = tuple(row)
    return found


def _warning_code(entity: str, reason: str) -> str:
    if reason.startswith("the email"):
        return "duplicate_emails"
    if entity == "enrolments" and reason.startswith("its class"):
        return "enrolments_unknown_class"
    if entity == "enrolments" and reason.startswith("its person"):
        return "enrolments_unknown_user"
    if reason.startswith("the same person is already enrolled"):
        return "duplicate_enrolments"
    return "skipped"


def _warn_periods_outside_terms(
    session: Session, periods: list[GradingPeriodRow], state: _State
) -> None:
    parents = {p.term_sourced_id for p in periods if p.term_sourced_id}
    if not parents:
        return
    bounds: dict[str, tuple[date | None, date | None]] = {
        sid: (start, end)
        for sid, start, end in session.execute(
            select(Term.sis_sourced_id, Term.start_date, Term.end_date).where(
                Term.sis_sourced_id.in_(parents)
            )
        )
        if sid is not None
    }
    for period in periods:
        if period.term_sourced_id is None or period.term_sourced_id not in bounds:
            continue
        start, end = bounds[period.term_sourced_id]
        p_start, p_end = period.start_date, period.end_date
        if (start and p_start and p_start < start) or (end and p_end and p_end > end):
            state.report.warn(
                "grading_periods_outside_term",
                "grading_periods",
                f"{period.sourced_id!r} ({period.start_date} to {period.end_date}) in term "
                f"{period.term_sourced_id!r} ({start} to {end})",
            )


def _courses(session: Session, rows: list[CourseRow], state: _State) -> None:
    # A course may belong to the district rather than a school: then it has no school here.
    known = state.cache.ids(session, School, (row.school_sourced_id for row in rows))
    placed = [row if row.school_sourced_id in known else _without_school(row) for row in rows]
    _record(
        session,
        state,
        "courses",
        Course,
        placed,
        lambda: upsert_courses(session, placed, state.cache),
    )


def _without_school(row: CourseRow) -> CourseRow:
    return CourseRow(row.sourced_id, row.title, row.course_code, None, row.active)


def _classes(
    session: Session, classes: list[tuple[ClassRow, tuple[str, ...]]], state: _State
) -> None:
    term_refs = {term for _, terms in classes for term in terms}
    known_terms = state.cache.ids(session, Term, term_refs)
    rows = []
    for row, terms in classes:
        # A class may name the school year and its terms: the first imported term is its term.
        term = next((t for t in terms if t in known_terms), terms[0] if terms else None)
        rows.append(
            ClassRow(
                row.sourced_id,
                row.title,
                row.section,
                row.school_sourced_id,
                term,
                row.course_sourced_id,
            )
        )
    _record(
        session, state, "classes", Class, rows, lambda: upsert_classes(session, rows, state.cache)
    )


# --- deactivations, the shrink guard, the watermark ----------------------------------------


def _deactivations(session: Session, state: _State) -> dict[str, list[str]]:
    """SIS ids of active rows to deactivate, per entity (only those active now)."""
    found: dict[str, list[str]] = {}
    seen = state.seen_ids
    for entity, model in MODELS.items():
        if state.full:
            found[entity] = seen.missing(model, (entity,))
        else:
            found[entity] = _still_active(session, model, state.deleted[entity])
    if "categories" not in state.incomplete:
        if state.full:
            found["categories"] = seen.missing(Category, ("categories",))
        else:
            found["categories"] = _still_active(session, Category, state.deleted["categories"])
    if state.full:
        gone = seen.missing(Person, ("teachers", "students"))
    else:
        gone = state.deleted["teachers"] + state.deleted["students"]
    found.update(_people_by_role(session, gone, state.report))
    return {entity: ids for entity, ids in found.items() if ids}


def _still_active(session: Session, model: Any, sourced_ids: list[str]) -> list[str]:
    table = model.__table__
    active: list[str] = []
    for start in range(0, len(sourced_ids), 1000):
        chunk = sourced_ids[start : start + 1000]
        statement = select(table.c.sis_sourced_id).where(
            table.c.sis_sourced_id.in_(chunk), table.c.active.is_(True)
        )
        active.extend(session.execute(statement).scalars())
    return active


def _people_by_role(
    session: Session, sourced_ids: list[str], report: RosterReport
) -> dict[str, list[str]]:
    teachers: list[str] = []
    students: list[str] = []
    for start in range(0, len(sourced_ids), 1000):
        chunk = sourced_ids[start : start + 1000]
        statement = select(
            Person.sis_sourced_id, Person.is_teacher, Person.is_student, Person.is_admin
        ).where(Person.sis_sourced_id.in_(chunk), Person.active.is_(True))
        for sid, is_teacher, _is_student, is_admin in session.execute(statement):
            if sid is None:
                continue
            if is_admin:
                report.warn("admins_not_deactivated", "teachers", repr(sid))
            elif is_teacher:
                teachers.append(sid)
            else:
                students.append(sid)
    return {"teachers": teachers, "students": students}


def _active_counts(session: Session) -> dict[str, int]:
    imported = Person.sis_sourced_id.is_not(None)
    people = select(func.count()).select_from(Person).where(imported, Person.active.is_(True))
    return {
        "teachers": session.scalar(people.where(Person.is_teacher.is_(True))) or 0,
        "students": session.scalar(
            people.where(Person.is_student.is_(True), Person.is_teacher.is_(False))
        )
        or 0,
        "enrolments": session.scalar(
            select(func.count())
            .select_from(Enrolment)
            .where(Enrolment.sis_sourced_id.is_not(None), Enrolment.active.is_(True))
        )
        or 0,
    }


def _shrink_guard(
    deactivations: dict[str, list[str]],
    active: dict[str, int],
    threshold: float,
    *,
    moved: int = 0,
) -> str | None:
    """Why the import must wait for an administrator, or None when it may be applied.
    Enrolments that `moved` end too: they count with the enrolments deactivated."""
    too_many = []
    for entity in GUARDED:
        going, now = len(deactivations.get(entity, ())), active.get(entity, 0)
        if entity == "enrolments":
            going += moved
        if now and going / now > threshold:
            too_many.append(f"{going} of {now} {entity} ({going / now:.0%})")
    if not too_many:
        return None
    return (
        f"This import would deactivate {', '.join(too_many)}, more than the "
        f"{threshold:.0%} allowed at once. An administrator must approve it "
        "(sislink roster approve JOB) or discard it (sislink roster discard JOB)."
    )


def _apply_deactivations(
    session: Session, report: RosterReport, deactivations: dict[str, list[str]]
) -> None:
    for entity, ids in deactivations.items():
        if entity == "categories":
            changed = deactivate_categories(session, ids)
        elif entity in ("teachers", "students"):
            changed = deactivate(session, Person, ids)
        else:
            changed = deactivate(session, MODELS[entity], ids)
        report.counts[entity].deactivated += changed


def apply_held_deactivations(
    session: Session, report: RosterReport, connection_id: int, *, started: datetime
) -> None:
    """Apply an approved hold's deactivations and move the watermark as its import would have."""
    _apply_deactivations(session, report, report.deactivations)
    advance_watermark(session, connection_id, started, full=report.mode == "full")


def advance_watermark(
    session: Session, connection_id: int, started: datetime, *, full: bool
) -> None:
    state = session.get(RosterSyncState, connection_id)
    if state is None:
        state = RosterSyncState(connection_id=connection_id)
        session.add(state)
    state.watermark = started
    if full:
        state.last_full_at = started


def _watermark(classroom: Classroom, connection_id: int) -> datetime | None:
    with classroom.session() as session:
        state = session.get(RosterSyncState, connection_id)
        return state.watermark if state is not None else None


def _state_warnings(session: Session, report: RosterReport) -> None:
    """Warnings about the roster as it now stands: active classes with no active teacher."""
    teaching = (
        select(Enrolment.class_id)
        .where(Enrolment.role == EnrolmentRole.TEACHER, Enrolment.active.is_(True))
        .distinct()
    )
    statement = (
        select(Class.sis_sourced_id)
        .where(
            Class.sis_sourced_id.is_not(None),
            Class.active.is_(True),
            Class.primary_teacher_id.is_(None),
            Class.id.not_in(teaching),
        )
        .limit(1000)
    )
    for sid in session.execute(statement).scalars():
        report.warn("classes_without_teacher", "classes", repr(sid))


def is_delta_possible(classroom: Classroom, connection_id: int) -> bool:
    """True when an import finished before, so the next one can ask only for changes."""
    return _watermark(classroom, connection_id) is not None


__all__ = [
    "DEFAULT_SHRINK_THRESHOLD",
    "OneRosterError",
    "RosterImportCancelled",
    "RosterImportFailed",
    "RosterReport",
    "advance_watermark",
    "apply_held_deactivations",
    "import_roster",
    "is_delta_possible",
]
