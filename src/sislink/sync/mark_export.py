"""Mark export: a class's coursework becomes SIS lineItems and its marks results, nothing
duplicated, only what changed sent, every item's fate reported.

`export_class_marks(classroom, client, actor, class_id)` checks that the export is allowed
(permission, connection, link), reads the class once, asks the SIS for the class's students
(and, when stale, its grading periods and categories), plans (see mark_export_plan), then PUTs
concurrently (lineItems before their results; the client bounds how many are in flight) and
DELETEs what was removed (a removed coursework's results before its lineItem). Each outcome
goes into the ledger as it lands (in small batches), so a crash, a failure or a stop leaves the
ledger true to what the SIS has and the next export finishes the rest. A result the SIS refuses
under a lineItem the ledger says it has (not sent this time) has the ledger checked against the
SIS (sislink.sync.ledger_check): a lineItem deleted in the SIS is sent again, with its results, by
the next export. Ids are derived (sislink.sync.identity): sending again updates, never duplicates.

`export_one_class` and `export_all_classes` never let one class's trouble escape: a class that
cannot be exported gets a report saying why, kept in its history like any other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from sislink.classroom import Actor, Classroom, ClassroomError, Conflict
from sislink.classroom.models import (
    AuditEvent,
    Class,
    ClassLink,
    ExportKind,
    ExportRecord,
    utc_now,
)
from sislink.classroom.services import connections
from sislink.classroom.services import jobs as job_service
from sislink.classroom.services.audit import record_event, redact
from sislink.classroom.services.classes import classes_taught_by
from sislink.classroom.services.organisation import identity_namespace, organisation
from sislink.classroom.services.time_zone import school_time_zone
from sislink.oneroster.consumer import OneRosterClient
from sislink.oneroster.consumer.exceptions import NotFound as SisNotFound
from sislink.oneroster.consumer.exceptions import OneRosterError, SISDown, StatusError
from sislink.oneroster.models import LineItem, Result, User
from sislink.oneroster.versions import Version
from sislink.partners import profile as partner_profile
from sislink.sync import export_state, preflight
from sislink.sync.class_link import (
    SisClassFacts,
    SisClassGone,
    export_settings,
    refresh_sis_class_facts,
)
from sislink.sync.errors import SyncError
from sislink.sync.export_report import (
    ExportOutcome,
    ExportReport,
    ItemReport,
    Outcome,
    save_report,
    save_reports,
)
from sislink.sync.export_state import title_limit
from sislink.sync.identity import class_identity
from sislink.sync.ledger_check import check_ledger_against_sis
from sislink.sync.mark_export_plan import (
    CREATED,
    UPDATED,
    Delete,
    ExportPlan,
    Kept,
    Put,
    plan_export,
    read_class_facts,
)

Progress = Callable[[int, int], None]
# Asked before each write (and before each class): True once someone wants the export to stop
# (a job's `context.cancelled`, which a disconnect sets). What is in flight lands and is kept.
ShouldStop = Callable[[], bool]
# Outcomes are written to the ledger in batches of this many (and at the end of each export).
LEDGER_BATCH = 500
# Classes exported at once by `export_all_classes` (they share the client's concurrency).
CLASSES_AT_ONCE = 4
# `export_all_classes` returns every item of up to this many classes; past it, each report
# keeps its counts, its failed items and the first few needing attention (memory stays flat).
KEEP_ITEMS_UP_TO = 50
# The skip reason of a write not sent because the export stopped or another write failed first.
NOT_SENT = "not_sent"
# A write's answers that refuse what was sent (as a SIS refuses a result whose lineItem it
# does not have), not who sent it or when.
REFUSED_AS_DATA = frozenset({400, 404, 409, 422})


@dataclass(frozen=True)
class _Landed:
    """One write's outcome, waiting to be written to the ledger."""

    kind: ExportKind
    object_id: int
    sourced_id: str
    content_hash: str | None  # None: the SIS may not have it as planned: send again next time
    status: str
    message: str = ""
    forget: bool = False  # the object is gone from the SIS: drop its ledger entry
    forget_also: tuple[tuple[ExportKind, int], ...] = ()


class _Ledger:
    """Writes landed outcomes to the ledger in batches, each batch in its own transaction."""

    def __init__(self, classroom: Classroom, scope: str) -> None:
        self.classroom = classroom
        self.scope = scope
        self.pending: list[_Landed] = []

    def add(self, landed: _Landed) -> None:
        self.pending.append(landed)
        if len(self.pending) >= LEDGER_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        with self.classroom.transaction() as session:
            # The ledger changes: no class written under it is "unchanged" until exported again.
            export_state.forget_state(session, scope=self.scope)
            self._write(session, batch)

    def _write(self, session: Session, batch: list[_Landed]) -> None:
        """Apply a batch with a few statements (plain rows, not ORM objects): deletes first,
        then updates by id, then inserts. Within the batch, a later outcome for the same
        object wins, and an object forgotten after it was written is not written."""
        keys = {(b.kind.value, b.object_id) for b in batch}
        keys |= {(k.value, i) for b in batch for k, i in b.forget_also}
        existing: dict[tuple[str, int], int] = {}  # (kind, object id) -> row id
        for kind in {k for k, _ in keys}:
            ids = sorted(i for k, i in keys if k == kind)
            for start in range(0, len(ids), 5000):
                for row_id, object_id in session.execute(
                    select(ExportRecord.id, ExportRecord.object_id).where(
                        ExportRecord.sis_identity == self.scope,
                        ExportRecord.kind == kind,
                        ExportRecord.object_id.in_(ids[start : start + 5000]),
                    )
                ):
                    existing[(kind, object_id)] = row_id
        now = utc_now()
        doomed: list[int] = []
        final: dict[tuple[str, int], dict[str, object]] = {}
        for landed in batch:
            key = (landed.kind.value, landed.object_id)
            gone = [(k.value, i) for k, i in landed.forget_also]
            if landed.forget:
                gone.append(key)
            for dropped in gone:
                held = existing.pop(dropped, None)
                if held is not None:
                    doomed.append(held)
                final.pop(dropped, None)
            if landed.forget:
                continue
            final.pop(key, None)  # the latest outcome goes last
            final[key] = {
                "sis_sourced_id": landed.sourced_id,
                "content_hash": landed.content_hash,
                "last_status": landed.status,
                "last_message": landed.message[:2000],
                "updated_at": now,
            }
        for start in range(0, len(doomed), 5000):
            session.execute(
                delete(ExportRecord).where(ExportRecord.id.in_(doomed[start : start + 5000]))
            )
        updates = [
            {"id": existing[key], **values} for key, values in final.items() if key in existing
        ]
        inserts = [
            {"kind": kind, "object_id": object_id, "sis_identity": self.scope, **values}
            for (kind, object_id), values in final.items()
            if (kind, object_id) not in existing
        ]
        if updates:
            session.execute(update(ExportRecord), updates)
        if inserts:
            session.execute(insert(ExportRecord), inserts)


def _failure(exc: OneRosterError) -> tuple[int | None, str | None, str]:
    """(HTTP status, what the SIS said, our sentence) for a failed write."""
    if isinstance(exc, StatusError):
        return exc.status_code, exc.description, str(exc)
    return None, None, str(exc)


class _Run:
    """One export of one class: sends the plan, fills the report and the ledger.

    Each write waits for one of the run's slots (as many as the client's concurrency), then
    asks whether to go on: once the export is stopped, or the SIS is down, the writes not yet
    sent are reported as not sent and leave the ledger alone, so the next export sends them.
    """

    def __init__(
        self,
        client: OneRosterClient,
        ledger: _Ledger,
        report: ExportReport,
        total: int,
        progress: Progress | None,
        should_stop: ShouldStop | None,
        slots: asyncio.Semaphore | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.report = report
        self.total = total
        self.done = 0
        self.progress = progress
        self.should_stop = should_stop
        # Writes past the stop check at once; shared by the classes of one `--all`, so that a
        # stop or a SIS outage leaves at most max_concurrency writes under way, not one lot per class.
        self.slots = slots or asyncio.Semaphore(client.settings.max_concurrency)
        self.stopped = False
        self.sis_down: SISDown | None = None
        # Coursework whose results could not all be deleted: its lineItem DELETE waits.
        self.results_left: set[int] = set()
        # Coursework whose lineItem this run PUT (the SIS has it now).
        self.line_items_put: set[int] = set()
        # A result refused under a lineItem the ledger says the SIS has (not PUT this run): the
        # SIS may have lost the lineItem (deleted there, its results with it), so the ledger is
        # checked against the SIS after the run, and the next export sends what it lost.
        self.check_ledger = False

    def _tick(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)

    def halted(self) -> str | None:
        """Why nothing more is sent (the SIS is down, or the export was stopped), else None."""
        if self.sis_down is not None:
            return (
                "Not sent: the SIS stopped answering during this export; the next export sends it."
            )
        if not self.stopped and self.should_stop is not None and self.should_stop():
            self.stopped = True
        if self.stopped:
            return "Not sent: the export was stopped first; the next export sends it."
        return None

    def _item(self, put: Put | Delete, outcome: Outcome, **extra: object) -> None:
        self.report.items.append(
            ItemReport(
                kind=put.kind.value,
                coursework_id=put.coursework_id,
                coursework_title=put.coursework_title,
                outcome=outcome,
                sourced_id=put.sourced_id,
                at=utc_now(),
                student_id=put.student_id,
                student=put.student,
                **extra,  # type: ignore[arg-type]
            )
        )

    def _not_sent(self, op: Put | Delete, reason: str) -> None:
        self._item(op, Outcome.SKIPPED, reason=reason, skip_reason=NOT_SENT)
        self._tick()

    def _failed(self, op: Put | Delete, exc: OneRosterError, status_in_ledger: str) -> None:
        if isinstance(exc, SISDown) and self.sis_down is None:
            self.sis_down = exc
        status, said, sentence = _failure(exc)
        # The SIS may or may not have applied it: no hash, so the next export sends it again
        # (a failed DELETE keeps its entry, so the next export tries the DELETE again).
        self.ledger.add(
            _Landed(op.kind, op.object_id, op.sourced_id, None, status_in_ledger, sentence)
        )
        self._item(op, Outcome.FAILED, reason=sentence, status_code=status, sis_said=said)
        self._tick()

    async def put(self, op: Put) -> bool:
        """PUT one object; True when the SIS has it."""
        async with self.slots:
            halted = self.halted()
            if halted is not None:
                self._not_sent(op, halted)
                return False
            self.report.writes += 1
            try:
                if isinstance(op.body, LineItem):
                    await self.client.put_line_item(op.body)
                else:
                    assert isinstance(op.body, Result)
                    await self.client.put_result(op.body)
            except OneRosterError as exc:
                if (
                    op.kind == ExportKind.RESULT
                    and op.coursework_id not in self.line_items_put
                    and isinstance(exc, StatusError)
                    and exc.status_code in REFUSED_AS_DATA
                ):
                    self.check_ledger = True
                self._failed(op, exc, "failed")
                return False
        if op.kind == ExportKind.LINE_ITEM:
            self.line_items_put.add(op.coursework_id)
        forget_also = (
            ((op.kind, op.replaces_object_id),) if op.replaces_object_id is not None else ()
        )
        self.ledger.add(
            _Landed(
                op.kind,
                op.object_id,
                op.sourced_id,
                op.content_hash,
                UPDATED if op.recorded else CREATED,  # from the ledger, not the SIS's 200/201
                op.note,
                forget_also=forget_also,
            )
        )
        self._item(op, Outcome.EXPORTED, reason=op.note)
        self._tick()
        return True

    async def delete(self, op: Delete) -> None:
        if op.kind == ExportKind.LINE_ITEM and op.coursework_id in self.results_left:
            self._not_sent(
                op,
                "Not deleted yet: some of its marks could not be deleted from the SIS first "
                "(see them above); the next export tries again.",
            )
            return
        async with self.slots:
            halted = self.halted()
            if halted is not None:
                self.results_left.add(op.coursework_id)
                self._not_sent(op, halted)
                return
            self.report.writes += 1
            try:
                if op.kind == ExportKind.LINE_ITEM:
                    await self.client.delete_line_item(op.sourced_id)
                else:
                    await self.client.delete_result(op.sourced_id)
            except OneRosterError as exc:
                if op.kind == ExportKind.RESULT:
                    self.results_left.add(op.coursework_id)
                self._failed(op, exc, "delete_failed")
                return
        self.ledger.add(_Landed(op.kind, op.object_id, op.sourced_id, None, "deleted", forget=True))
        self._item(op, Outcome.DELETED, reason=op.why)
        self._tick()

    async def line_item_then_results(self, put: Put | None, results: Sequence[Put]) -> None:
        if put is not None and not await self.put(put):
            reason = self.halted() or (
                "Its coursework failed to export, so this mark waits for the next export."
            )
            for result in results:
                self._not_sent(result, reason)
            return
        await asyncio.gather(*(self.put(result) for result in results))

    async def send(self, plan: ExportPlan) -> None:
        """PUT lineItems then their results, DELETE results; then DELETE lineItems (after
        their results: a SIS may refuse to delete a lineItem that still has results)."""
        await asyncio.gather(
            *(self.line_item_then_results(li.put, li.results) for li in plan.line_items),
            *(self.delete(op) for op in plan.deletes if op.kind == ExportKind.RESULT),
        )
        await asyncio.gather(
            *(self.delete(op) for op in plan.deletes if op.kind == ExportKind.LINE_ITEM)
        )


def _kept_report(kept: Kept) -> ItemReport:
    return ItemReport(
        kind=kept.kind.value,
        coursework_id=kept.coursework_id,
        coursework_title=kept.coursework_title,
        outcome=Outcome.UNCHANGED if kept.skipped is None else Outcome.SKIPPED,
        sourced_id=kept.sourced_id,
        at=utc_now(),
        student_id=kept.student_id,
        student=kept.student,
        reason=str(kept.skipped) if kept.skipped else "",
        skip_reason=kept.skipped.reason.value if kept.skipped else None,
    )


def _dry_run_items(plan: ExportPlan) -> Iterable[ItemReport]:
    now = utc_now()
    for line_item in plan.line_items:
        for op in ([line_item.put] if line_item.put else []) + list(line_item.results):
            yield ItemReport(
                kind=op.kind.value,
                coursework_id=op.coursework_id,
                coursework_title=op.coursework_title,
                outcome=Outcome.WOULD_EXPORT,
                sourced_id=op.sourced_id,
                at=now,
                student_id=op.student_id,
                student=op.student,
                reason=op.note,
            )
    for gone in plan.deletes:
        yield ItemReport(
            kind=gone.kind.value,
            coursework_id=gone.coursework_id,
            coursework_title=gone.coursework_title,
            outcome=Outcome.WOULD_DELETE,
            sourced_id=gone.sourced_id,
            at=now,
            student_id=gone.student_id,
            student=gone.student,
            reason=gone.why,
        )


async def _sis_students(client: OneRosterClient, sis_class_id: str) -> list[User]:
    """The SIS class's students. A 404 means the class is gone only if the SIS says so of the
    class itself: it is asked, so that the teacher is told which it is."""
    try:
        return await client.students_for_class(sis_class_id)
    except SisNotFound as exc:
        try:
            await client.get("class", id=sis_class_id)
        except SisNotFound:
            raise SisClassGone(str(exc), sis_class_id) from None
        raise SyncError(
            f"The SIS has the class {sis_class_id}, but answered 404 Not Found when asked for "
            f"its students ({exc.method} {exc.path}), so no mark can be matched to a student. "
            "Nothing was sent; ask the SIS vendor whether it serves a class's students "
            f"(classes/{{id}}/students). (The SIS answered: {exc})"
        ) from None


async def export_class_marks(
    classroom: Classroom,
    client: OneRosterClient,
    actor: Actor,
    class_id: int,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    slots: asyncio.Semaphore | None = None,
    job_id: int | None = None,
) -> ExportReport:
    """Export one class's coursework and marks to its linked SIS class; the report is kept.

    Raises `preflight.ExportRefused` (nothing sent) when the actor may not export this class
    now: permission off, not connected or disconnected, not their class, class not linked; and
    the consumer's errors when the SIS cannot be asked about the class (`export_one_class`
    turns both into a kept report). Once `should_stop()` says so, or the SIS is down, no more
    writes are sent: the report says so (outcome stopped or failed).
    """
    with classroom.transaction() as session:
        _, _, first_link = preflight.check_export_allowed(session, actor, class_id)
        if not dry_run:
            unchanged = export_state.unchanged_classes(session, actor, [class_id]).get(class_id)
            if unchanged is not None:
                # Nothing changed since the last clean export: nothing to send, nothing asked.
                report = _unchanged_report(unchanged)
                _keep_unchanged(session, actor, [report], job_id=job_id)
                return report
        asked_for = first_link.sis_class_sourced_id
    # The SIS class's students are asked for while its facts are (one wait, not two); they
    # are used only once the facts came (a gone class is told as the facts' call tells it).
    asking = asyncio.ensure_future(_sis_students(client, asked_for))
    try:
        sis_facts = await refresh_sis_class_facts(classroom, client, class_id)
        report, plan, digest, scope, connection_id = await _read_and_plan(
            classroom, client, actor, class_id, sis_facts, asking, asked_for, dry_run
        )
    finally:
        # Not needed after all (the facts' call failed, or the class was refused or relinked):
        # dropped, and its failure, if any, taken as seen (the facts' call told it).
        asking.cancel()
        asking.add_done_callback(_seen)
    report.items.extend(_kept_report(k) for k in plan.kept)
    if dry_run:
        report.items.extend(_dry_run_items(plan))
    else:
        ledger = _Ledger(classroom, scope)
        run = _Run(client, ledger, report, plan.writes, progress, should_stop, slots)
        try:
            await run.send(plan)
        finally:
            ledger.flush()
        if run.check_ledger and run.sis_down is None and not run.stopped:
            with contextlib.suppress(OneRosterError):  # the export's report stands either way
                await check_ledger_against_sis(classroom, client, class_id)
        if run.sis_down is not None:
            report.sis_down = True
            report.failed = (
                f"The SIS stopped answering part way, so the export did not finish: "
                f"{run.sis_down} What was sent is kept; export again later to send the rest."
            )
        elif run.stopped:
            report.stopped = (
                "The export was stopped part way (it was cancelled, or the SIS was "
                "disconnected). What was sent is kept; export again to send the rest."
            )
    report.finished_at = utc_now()
    with classroom.transaction() as session:
        save_report(session, report, requested_by_id=actor.person_id, job_id=job_id)
        if not dry_run:
            connections.record_activity(session, connection_id, exported=True)
            if (
                digest is not None
                and digest.scope == scope
                and report.outcome is ExportOutcome.SUCCEEDED
            ):
                export_state.remember_clean_export(
                    session, class_id, scope, digest.digest, report.counts()
                )
        record_event(
            session,
            actor,
            "marks.exported" if not dry_run else "marks.export_previewed",
            f"class:{class_id}",
            {"writes": report.writes, "outcome": report.outcome.value},
        )
    return report


def _seen(future: asyncio.Future[list[User]]) -> None:
    if not future.cancelled():
        future.exception()


async def _read_and_plan(
    classroom: Classroom,
    client: OneRosterClient,
    actor: Actor,
    class_id: int,
    sis_facts: SisClassFacts,
    asking: asyncio.Future[list[User]],
    asked_for: str,
    dry_run: bool,
) -> tuple[ExportReport, ExportPlan, export_state.Candidate | None, str, int]:
    """Read the class (checked again), then plan it against the SIS's students."""
    with classroom.transaction() as session:
        klass, connection, link = preflight.check_export_allowed(session, actor, class_id)
        chosen = partner_profile(connection.partner)
        settings = export_settings(session, class_id)
        scope = class_identity(connection.partner, link.sis_class_sourced_id)
        # The digest is taken before the class is read: a write landing after it changes it.
        digest = export_state.current_digests(session, [class_id]).get(class_id)
        if not dry_run:
            export_state.forget_state(session, class_id=class_id)
        facts = read_class_facts(
            session,
            class_id=class_id,
            title=klass.title,
            sis_class_id=link.sis_class_sourced_id,
            scope=scope,
            namespace=identity_namespace(session),
            missing_as=settings.missing_as,
            export_drafts=settings.export_drafts,
            default_category=chosen.default_category,
            title_limit=title_limit(organisation(session).settings or {}),
            zone=school_time_zone(session).zone,
        )
        connection_id = connection.id
    report = ExportReport(class_id, facts.title, facts.sis_class_id, dry_run)
    if facts.sis_class_id == asked_for:
        sis_students = await asking
    else:  # relinked meanwhile: the students of the class it is linked to now
        sis_students = await _sis_students(client, facts.sis_class_id)
    students = preflight.StudentDirectory.of(sis_students)
    plan = plan_export(
        facts, sis_facts, students, version_has_school=client.spec.version is Version.V1_2
    )
    return report, plan, digest, scope, connection_id


def _unchanged_report(unchanged: export_state.Unchanged) -> ExportReport:
    report = ExportReport(
        unchanged.class_id,
        unchanged.title,
        unchanged.sis_class_id,
        False,
        carried_counts=unchanged.counts,
        unchanged_since=unchanged.since,
    )
    report.finished_at = report.started_at
    return report


def _keep_unchanged(
    session: Session, actor: Actor, reports: Sequence[ExportReport], *, job_id: int | None
) -> None:
    """Keep the reports of unchanged classes, with their audit events (one transaction)."""
    save_reports(session, reports, requested_by_id=actor.person_id, job_id=job_id)
    if reports:  # the events record_event adds, as plain rows (thousands at once)
        session.execute(
            insert(AuditEvent),
            [
                {
                    "actor_id": actor.person_id,
                    "action": "marks.exported",
                    "subject": f"class:{report.class_id}",
                    "details": redact(
                        {"writes": 0, "outcome": report.outcome.value, "unchanged": True}
                    ),
                }
                for report in reports
            ],
        )
    current = connections.current_connection(session)
    if current is not None and reports:
        connections.record_activity(session, current.id, exported=True)


async def _export_unchanged(
    classroom: Classroom,
    actor: Actor,
    class_ids: Sequence[int],
    *,
    job_id: int | None,
    should_stop: ShouldStop | None,
    done: Callable[[], None],
) -> dict[int, ExportReport]:
    """The reports of the classes with nothing to send (found and kept a few hundred at a
    time, without asking the SIS; the event loop gets a turn between them); the other classes
    are exported one by one."""
    found: dict[int, ExportReport] = {}
    for start in range(0, len(class_ids), export_state.CHUNK):
        if should_stop is not None and should_stop():
            break
        chunk = class_ids[start : start + export_state.CHUNK]
        with classroom.transaction() as session:
            unchanged = export_state.unchanged_classes(session, actor, chunk, job_id=job_id)
            reports = [_unchanged_report(unchanged[c]) for c in chunk if c in unchanged]
            _keep_unchanged(session, actor, reports, job_id=job_id)
        for report in reports:
            found[report.class_id] = report
            done()
        await asyncio.sleep(0)
    return found


def exportable_class_ids(classroom: Classroom, actor: Actor) -> list[int]:
    """The linked classes the actor may export: all (an administrator), or those they teach."""
    with classroom.session() as session:
        if actor.is_admin:
            linked = session.scalars(
                select(Class.id)
                .join(ClassLink, ClassLink.class_id == Class.id)
                .where(Class.active.is_(True))
                .order_by(Class.id)
            ).all()
            return list(linked)
        if actor.person_id is None:
            return []
        return [
            c.id
            for c in classes_taught_by(session, actor.person_id)
            if connections.class_link(session, c.id) is not None
        ]


def _failure_in_words(exc: Exception, sis_class_id: str | None) -> str:
    """Why a class could not be exported at all, for the teacher."""
    if isinstance(exc, SISDown):
        return f"The SIS stopped answering, so nothing was sent for this class: {exc}"
    if isinstance(exc, SisClassGone):
        # Only a 404 for the SIS class itself says the class is gone.
        return (
            f"The SIS does not know this class's SIS class ({sis_class_id}) any more: it may "
            "have been deleted or ended there. Nothing was sent; link the class to its current "
            f"SIS class, then export again. (The SIS answered: {exc})"
        )
    if isinstance(exc, SisNotFound):
        return (
            f"The SIS answered 404 Not Found to {exc.method} {exc.path}, which this export "
            f"needs, so nothing was sent for this class: {exc}"
        )
    if isinstance(exc, OneRosterError):
        return f"The SIS could not be asked about this class, so nothing was sent: {exc}"
    return f"This class could not be exported, so nothing was sent: {exc}"


def _unexported_report(
    classroom: Classroom,
    actor: Actor,
    class_id: int,
    *,
    dry_run: bool,
    refused: str | None = None,
    failed: str | None = None,
    stopped: str | None = None,
    sis_down: bool = False,
    job_id: int | None = None,
) -> ExportReport:
    """The report of a class that was not exported (refused, failed or not tried), kept in
    the class's history like any other (unless the class itself is gone)."""
    with classroom.transaction() as session:
        klass = session.get(Class, class_id)
        link = connections.class_link(session, class_id)
        report = ExportReport(
            class_id,
            klass.title if klass is not None else f"class {class_id} (deleted)",
            link.sis_class_sourced_id if link is not None else None,
            dry_run,
            refused=refused,
            failed=failed,
            stopped=stopped,
            sis_down=sis_down,
        )
        report.finished_at = utc_now()
        if klass is not None:
            save_report(session, report, requested_by_id=actor.person_id, job_id=job_id)
            record_event(
                session,
                actor,
                "marks.export_not_done",
                f"class:{class_id}",
                {"outcome": report.outcome.value},
            )
    return report


async def export_one_class(
    classroom: Classroom,
    client: OneRosterClient,
    actor: Actor,
    class_id: int,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    slots: asyncio.Semaphore | None = None,
    job_id: int | None = None,
) -> ExportReport:
    """`export_class_marks`, except that a class that cannot be exported gets a report saying
    why (refused, or failed in the SIS's words), kept in its history, instead of an error."""
    try:
        return await export_class_marks(
            classroom,
            client,
            actor,
            class_id,
            dry_run=dry_run,
            progress=progress,
            should_stop=should_stop,
            slots=slots,
            job_id=job_id,
        )
    except preflight.ExportRefused as refused:
        return _unexported_report(
            classroom, actor, class_id, dry_run=dry_run, refused=refused.message, job_id=job_id
        )
    except (OneRosterError, SyncError, ClassroomError) as exc:
        with classroom.session() as session:
            link = connections.class_link(session, class_id)
        sentence = _failure_in_words(exc, link.sis_class_sourced_id if link else None)
        return _unexported_report(
            classroom,
            actor,
            class_id,
            dry_run=dry_run,
            failed=sentence,
            sis_down=isinstance(exc, SISDown),
            job_id=job_id,
        )


async def export_all_classes(
    classroom: Classroom,
    client: OneRosterClient,
    actor: Actor,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    should_stop: ShouldStop | None = None,
    class_ids: Sequence[int] | None = None,
    job_id: int | None = None,
    keep_items: bool | None = None,
) -> list[ExportReport]:
    """Export every linked class the actor may export (or `class_ids`), a few at a time: one
    report per class, in order. Each class stands alone: one that cannot be exported gets a
    report saying why and the others go on. Once the SIS is down, or `should_stop()`, the
    classes not yet started are not tried, and their reports say so.

    Classes with nothing to send (sislink.sync.export_state) are found first, a few hundred
    at a time, and get their reports without asking the SIS. With `keep_items=False` each
    report lets go of its items once it is kept in the database (`ExportReport.compact`), so
    that the memory of an export of many classes does not grow with their items; None (the
    default) keeps them for an export of at most KEEP_ITEMS_UP_TO classes, and lets them go
    for more (each class's stored report has them all)."""
    chosen = list(class_ids) if class_ids is not None else exportable_class_ids(classroom, actor)
    if keep_items is None:
        keep_items = len(chosen) <= KEEP_ITEMS_UP_TO
    gate = asyncio.Semaphore(CLASSES_AT_ONCE)
    slots = asyncio.Semaphore(client.settings.max_concurrency)
    finished = 0
    sis_down: str | None = None

    def one_done() -> None:
        nonlocal finished
        finished += 1
        if progress is not None:
            progress(finished, len(chosen))

    unchanged: dict[int, ExportReport] = {}
    if not dry_run:
        unchanged = await _export_unchanged(
            classroom, actor, chosen, job_id=job_id, should_stop=should_stop, done=one_done
        )

    async def one(class_id: int) -> ExportReport:
        nonlocal finished, sis_down
        async with gate:
            if sis_down is not None:
                report = _unexported_report(
                    classroom,
                    actor,
                    class_id,
                    dry_run=dry_run,
                    failed=f"Not tried: the SIS stopped answering while other classes were "
                    f"exported ({sis_down}). Export again later.",
                    sis_down=True,
                    job_id=job_id,
                )
            elif should_stop is not None and should_stop():
                report = _unexported_report(
                    classroom,
                    actor,
                    class_id,
                    dry_run=dry_run,
                    stopped="Not tried: the export was stopped (it was cancelled, or the SIS "
                    "was disconnected) before this class's turn. Export again to send it.",
                    job_id=job_id,
                )
            elif (busy := _take_class(classroom, job_id, class_id, dry_run)) is not None:
                report = _unexported_report(
                    classroom, actor, class_id, dry_run=dry_run, refused=busy, job_id=job_id
                )
            else:
                try:
                    report = await export_one_class(
                        classroom,
                        client,
                        actor,
                        class_id,
                        dry_run=dry_run,
                        should_stop=should_stop,
                        slots=slots,
                        job_id=job_id,
                    )
                finally:
                    _give_back_class(classroom, job_id, class_id, dry_run)
                if report.sis_down and sis_down is None:
                    sis_down = report.failed
        if not keep_items:
            report.compact()
        finished += 1
        if progress is not None:
            progress(finished, len(chosen))
        return report

    # A task group: should anything unforeseen go wrong in one class, the others are cancelled
    # and awaited before the caller closes the client under them.
    async with asyncio.TaskGroup() as group:
        tasks = {c: group.create_task(one(c)) for c in chosen if c not in unchanged}
    return [unchanged[c] if c in unchanged else tasks[c].result() for c in chosen]


def _take_class(
    classroom: Classroom, job_id: int | None, class_id: int, dry_run: bool
) -> str | None:
    """Take the class's lock for the job exporting every class, so that no other job writes
    the class meanwhile (a dry run writes nothing and takes none): None once taken, else why
    the class is not exported by this job (which job holds it, in words)."""
    if job_id is None or dry_run:
        return None
    try:
        with classroom.transaction() as session:
            job_service.take_lock(session, job_id, job_service.lock_key_for(class_id=class_id))
    except Conflict as busy:
        return f"Not exported by this job: another job is exporting this class. {busy.message}"
    return None


def _give_back_class(
    classroom: Classroom, job_id: int | None, class_id: int, dry_run: bool
) -> None:
    if job_id is None or dry_run:
        return
    with classroom.transaction() as session:
        job_service.release_lock(session, job_id, job_service.lock_key_for(class_id=class_id))


def forget_ledger_for_class(classroom: Classroom, class_id: int) -> int:
    """Drop what the ledger remembers of a class's exports (the next export sends everything
    again, to the same ids). For repair and tests of what a lost ledger does."""
    with classroom.transaction() as session:
        link = connections.class_link(session, class_id)
        connection = connections.current_connection(session)
        if link is None or connection is None:
            return 0
        scope = class_identity(connection.partner, link.sis_class_sourced_id)
        export_state.forget_state(session, scope=scope)
        gone = session.execute(delete(ExportRecord).where(ExportRecord.sis_identity == scope))
        return int(getattr(gone, "rowcount", 0) or 0)
