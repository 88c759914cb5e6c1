"""What the gradebook shows of mark export, cell by cell: for one class, each mark's and each
coursework's export state, read from the export ledger and the class's last export report.

States (`ExportState`):
- sent: the ledger has it as the SIS took it, and it has not changed since (when: the ledger's
  time of the last write);
- changed: sent, then changed (or cleared) in the classroom: the next export sends (or removes)
  it;
- skipped: the last export left it out, with its reason (a draft mark, a coursework without a
  due date, a student the SIS class lacks...); `chosen` when that was the teacher's own choice
  (a draft), not a problem;
- failed: the SIS refused it or did not answer; the next export tries again;
- not_sent: never sent, and no export has said why (none since it changed);
- none: nothing to send (an empty cell), or the class is not linked (`linked` False).

Read only, and in a few queries for the whole class (never one per cell): the class's link and
connection, its export settings, the ledger rows of its SIS class, and the last export report
that planned the class (not a dry run, not an "unchanged" one, which lists no items) since it was
linked to its SIS class (what an export to another SIS class said is not said of this one).
Reasons are shortened to REASON_SHOWN_AT_MOST characters (the export report has them whole).

"Changed since" compares times, not content: a mark written after the ledger's last write for it
(or after the export that sent it began) has changed. A mark written with the same value again
counts as changed too; the next export then finds it unchanged and sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom.models import (
    ClassExportSettings,
    ClassLink,
    CourseworkState,
    ExportKind,
    ExportRecord,
    MarkExportReport,
    MarkState,
    SisConnection,
)
from sislink.classroom.services import connections
from sislink.sync.identity import class_identity

# The ledger's last_status of an object the SIS has (mark_export_plan.CREATED / UPDATED).
_LANDED = frozenset({"created", "updated"})
# The ledger's last_status of a write the SIS refused or did not answer.
_FAILED = frozenset({"failed", "delete_failed"})
# Skip reasons that are the teacher's own choice (export_report.CHOSEN_SKIPS, by value).
_CHOSEN = frozenset({"draft_coursework", "not_for_export", "draft_mark"})
# The newest reports looked at for one that planned the class (refused and failed ones list
# no item); an export that fails this many times in a row leaves the skip reasons unknown.
_REPORTS_LOOKED_AT = 5


class ExportState(StrEnum):
    SENT = "sent"
    CHANGED = "changed"
    SKIPPED = "skipped"
    FAILED = "failed"
    NOT_SENT = "not_sent"
    NONE = "none"


@dataclass(frozen=True)
class ItemExport:
    """The export state of one mark (a result) or one coursework (a lineItem)."""

    state: ExportState
    sent_at: datetime | None = None  # when the SIS last took it (sent, changed, skipped)
    reason: str = ""  # why skipped or failed, in the export's words
    chosen: bool = False  # skipped (or not sent) by the teacher's own choice: not a problem

    @property
    def shown(self) -> bool:
        """Worth a mark in the grid (not an empty cell)."""
        return self.state is not ExportState.NONE


NOTHING = ItemExport(ExportState.NONE)


@dataclass(frozen=True)
class GradebookExport:
    """A class's export state: per coursework and per (coursework id, student id)."""

    linked: bool
    sis_class_id: str | None = None
    last_export_at: datetime | None = None  # of the report the skip reasons come from
    coursework: dict[int, ItemExport] = field(default_factory=dict)
    marks: dict[tuple[int, int], ItemExport] = field(default_factory=dict)

    def of_coursework(self, coursework_id: int) -> ItemExport:
        return self.coursework.get(coursework_id, NOTHING)

    def of_mark(self, coursework_id: int, student_id: int) -> ItemExport:
        return self.marks.get((coursework_id, student_id), NOTHING)


class CourseworkRow(Protocol):
    """What is read of a coursework (a `Coursework` row will do)."""

    @property
    def id(self) -> int: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def state(self) -> str: ...
    @property
    def export_to_sis(self) -> bool: ...


class MarkRow(Protocol):
    """What is read of a mark (a `Mark` row will do)."""

    @property
    def id(self) -> int: ...
    @property
    def coursework_id(self) -> int: ...
    @property
    def student_id(self) -> int: ...
    @property
    def score(self) -> float | None: ...
    @property
    def excused(self) -> bool: ...
    @property
    def missing(self) -> bool: ...
    @property
    def state(self) -> str: ...
    @property
    def updated_at(self) -> datetime: ...


@dataclass(frozen=True)
class _Record:
    content_hash: str | None
    last_status: str
    last_message: str
    updated_at: datetime

    @property
    def landed(self) -> bool:
        return self.content_hash is not None and self.last_status in _LANDED


@dataclass(frozen=True)
class _LastReport:
    started_at: datetime
    line_items: dict[int, dict[str, Any]]
    results: dict[tuple[int, int], dict[str, Any]]


def gradebook_export_state(
    session: Session,
    class_id: int,
    coursework: Sequence[CourseworkRow],
    marks: Iterable[MarkRow],
) -> GradebookExport:
    """The export state of the class's coursework and marks (as the caller read them)."""
    link = session.scalars(select(ClassLink).where(ClassLink.class_id == class_id)).first()
    if link is None:
        return GradebookExport(linked=False)
    connection = connections.current_connection(session) or session.get(
        SisConnection, link.connection_id
    )
    if connection is None:
        return GradebookExport(linked=False)
    scope = class_identity(connection.partner, link.sis_class_sourced_id)
    drafts_exported = bool(
        session.scalar(
            select(ClassExportSettings.export_drafts).where(
                ClassExportSettings.class_id == class_id
            )
        )
    )
    line_items: dict[int, _Record] = {}
    results: dict[int, _Record] = {}
    for row in session.execute(
        select(
            ExportRecord.kind,
            ExportRecord.object_id,
            ExportRecord.content_hash,
            ExportRecord.last_status,
            ExportRecord.last_message,
            ExportRecord.updated_at,
        ).where(ExportRecord.sis_identity == scope)
    ):
        record = _Record(row.content_hash, row.last_status, row.last_message or "", row.updated_at)
        (line_items if row.kind == ExportKind.LINE_ITEM else results)[row.object_id] = record
    # Only exports to the SIS class the class is linked to now: linking (again, or to another
    # SIS class) starts its export history afresh, as it starts its ledger scope.
    report = _last_report(session, class_id, since=link.linked_at)
    found = GradebookExport(
        linked=True,
        sis_class_id=link.sis_class_sourced_id,
        last_export_at=report.started_at if report else None,
    )
    kept_back: dict[int, ItemExport] = {}  # marks of coursework the teacher keeps back
    for work in coursework:
        not_sent_yet = _NEXT_EXPORT
        if work.state == CourseworkState.DRAFT:
            not_sent_yet = ItemExport(
                ExportState.NOT_SENT,
                reason="It is a draft: it is exported once published.",
                chosen=True,
            )
        elif not work.export_to_sis:
            not_sent_yet = ItemExport(
                ExportState.NOT_SENT, reason="It is set not to go to the SIS.", chosen=True
            )
        if not_sent_yet.chosen:
            kept_back[work.id] = ItemExport(
                ExportState.NOT_SENT,
                reason="Its coursework is not exported (a draft, or set not to go to the SIS).",
                chosen=True,
            )
        item = report.line_items.get(work.id) if report else None
        found.coursework[work.id] = _state(
            record=line_items.get(work.id),
            item=item,
            fresh=report is not None and work.updated_at <= report.started_at,
            changed_at=work.updated_at,
            report=report,
            blank=False,
            not_sent_yet=not_sent_yet,
        )
    for mark in marks:
        key = (mark.coursework_id, mark.student_id)
        item = report.results.get(key) if report else None
        not_sent_yet = kept_back.get(mark.coursework_id) or (
            _DRAFT_MARK
            if mark.state != MarkState.RETURNED and not drafts_exported
            else _NEXT_EXPORT
        )
        found.marks[key] = _state(
            record=results.get(mark.id),
            item=item,
            fresh=report is not None and mark.updated_at <= report.started_at,
            changed_at=mark.updated_at,
            report=report,
            blank=mark.score is None and not mark.excused and not mark.missing,
            not_sent_yet=not_sent_yet,
        )
    return found


_NEXT_EXPORT = ItemExport(ExportState.NOT_SENT, reason="Not sent yet: the next export sends it.")
_DRAFT_MARK = ItemExport(
    ExportState.NOT_SENT,
    reason="It is a draft: it is exported once returned to the student.",
    chosen=True,
)


# The most of a reason written in the grid: a cell's words are written twice (hover and screen
# readers) for each of up to 1,400 cells, and the SIS's answer kept in the ledger may be 2,000
# characters of an error page. The export report keeps the whole of it.
REASON_SHOWN_AT_MOST = 300
_SHORTENED = "\u2026 (the whole answer is in the class's export report)"


def _shortened(found: ItemExport) -> ItemExport:
    if len(found.reason) <= REASON_SHOWN_AT_MOST:
        return found
    kept = found.reason[: REASON_SHOWN_AT_MOST - len(_SHORTENED)].rstrip()
    return replace(found, reason=kept + _SHORTENED)


def _state(**facts: Any) -> ItemExport:
    """`_item_state`, its reason shortened to what the grid shows."""
    return _shortened(_item_state(**facts))


def _item_state(
    *,
    record: _Record | None,
    item: dict[str, Any] | None,
    fresh: bool,
    changed_at: datetime,
    report: _LastReport | None,
    blank: bool,
    not_sent_yet: ItemExport,
) -> ItemExport:
    """One item's state from its ledger record and the last export's word on it. `fresh`: the
    item has not changed since that export began (so what it said still holds)."""
    sent = record is not None and record.landed
    sent_at = record.updated_at if record is not None and sent else None
    if blank:
        if sent or (record is not None and record.last_status == "delete_failed"):
            return ItemExport(
                ExportState.CHANGED,
                sent_at=sent_at,
                reason="Cleared since it was sent: the next export removes it from the SIS.",
            )
        return NOTHING
    outcome = item.get("outcome") if item is not None else None
    if item is not None and fresh:
        if outcome == "skipped":
            said = str(item.get("reason") or "")
            if sent:
                said += " The SIS keeps what was sent before."
            return ItemExport(
                ExportState.SKIPPED,
                sent_at=sent_at,
                reason=said.strip(),
                chosen=item.get("skip_reason") in _CHOSEN,
            )
        if outcome == "failed":
            return ItemExport(
                ExportState.FAILED,
                sent_at=sent_at,
                reason=str(item.get("reason") or "The SIS did not take it."),
            )
        if sent:
            return ItemExport(ExportState.SENT, sent_at=sent_at)
    if sent:
        assert record is not None and sent_at is not None
        # Written after the ledger's last write, or after the export that sent it began (a
        # write while that export ran may have come after it read the class).
        began = (
            report.started_at
            if report is not None and item is not None and outcome in ("exported", "unchanged")
            else sent_at
        )
        if changed_at > min(sent_at, began):
            return ItemExport(
                ExportState.CHANGED,
                sent_at=sent_at,
                reason="Changed since it was sent: the next export sends it.",
            )
        return ItemExport(ExportState.SENT, sent_at=sent_at)
    if record is not None and record.last_status in _FAILED:
        return ItemExport(
            ExportState.FAILED,
            reason=(record.last_message or "The SIS did not take it.")
            + " The next export tries again.",
        )
    if item is not None and outcome == "skipped":
        return ItemExport(
            ExportState.NOT_SENT,
            reason=(
                f"Changed since the last export, which skipped it: {item.get('reason') or ''}"
            ).strip(),
            chosen=not_sent_yet.chosen,
        )
    return not_sent_yet


def _last_report(session: Session, class_id: int, *, since: datetime) -> _LastReport | None:
    """The newest kept export of the class that planned it (its items), begun `since` the
    class's current link was made, if any."""
    candidates = session.execute(
        select(MarkExportReport.id, MarkExportReport.started_at, MarkExportReport.summary)
        .where(
            MarkExportReport.class_id == class_id,
            MarkExportReport.started_at >= since,
            MarkExportReport.dry_run.is_(False),
            MarkExportReport.outcome != "refused",
            # An unchanged export lists no item: the clean export before it still holds.
            MarkExportReport.summary["unchanged_since"].as_string().is_(None),
        )
        .order_by(MarkExportReport.started_at.desc(), MarkExportReport.id.desc())
        .limit(_REPORTS_LOOKED_AT)
    ).all()
    chosen = next((row for row in candidates if _planned(row.summary)), None)
    if chosen is None:
        return None
    items = session.scalar(select(MarkExportReport.items).where(MarkExportReport.id == chosen.id))
    line_items: dict[int, dict[str, Any]] = {}
    results: dict[tuple[int, int], dict[str, Any]] = {}
    for item in items or []:
        if item.get("kind") == ExportKind.LINE_ITEM:
            line_items[int(item["coursework_id"])] = item
        elif item.get("kind") == ExportKind.RESULT and item.get("student_id") is not None:
            results[(int(item["coursework_id"]), int(item["student_id"]))] = item
    return _LastReport(chosen.started_at, line_items, results)


def _planned(summary: dict[str, Any] | None) -> bool:
    """The report lists items (an export that failed before planning lists none)."""
    counts = (summary or {}).get("counts") or {}
    return any(
        isinstance(n, int) and n > 0
        for by_outcome in counts.values()
        if isinstance(by_outcome, dict)
        for n in by_outcome.values()
    )
