"""The charts' sums (sync.activity_history) on SQLite and PostgreSQL: exports and applied roster
imports summed into the school's days (an export at 23:30 UTC is on the next day in Tokyo and the
same day in Chicago), dry runs and held imports left out, and a class's history oldest first."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import Job, JobStatus, MarkExportReport, Role
from sislink.classroom.services import classes, people
from sislink.sync.activity_history import activity_by_day, class_export_history, import_changes

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _export(
    class_id: int, at: datetime, writes: int, skipped: int, failed: int, *, dry_run: bool = False
) -> MarkExportReport:
    """A stored export as save_report keeps it; a draft left out by choice (skipped, but not
    needing attention) in each, which the chart does not count."""
    outcome = "partial" if failed else "needs_attention" if skipped else "succeeded"
    return MarkExportReport(
        class_id=class_id,
        dry_run=dry_run,
        outcome=outcome,
        writes=writes,
        started_at=at,
        finished_at=at,
        summary={
            "outcome": outcome,
            "attention": {"count": skipped, "reasons": ["Quiz: no due date"]} if skipped else None,
            "counts": {
                "lineItem": {"exported": 1, "skipped": skipped + 1},
                "result": {"exported": writes - 1, "failed": failed},
            },
        },
        items=[],
    )


def _import(at: datetime, status: str, report_status: str, students_created: int) -> Job:
    counts = {"students": {"created": students_created, "updated": 2, "deactivated": 1}}
    return Job(
        kind="roster_import",
        status=status,
        created_at=at,
        started_at=at,
        report={"status": report_status, "mode": "full", "counts": counts},
    )


def test_days_in_the_school_zone_and_what_is_left_out(classroom: Classroom) -> None:
    system = Actor.system()
    with classroom.transaction() as session:
        teacher = people.create_person(
            session, system, name="T", email="t@school.example", roles=[Role.TEACHER]
        )
        class_id = classes.create_class(
            session, system, title="Biology", primary_teacher_id=teacher.id
        ).id
        late = datetime(2026, 12, 3, 23, 30, tzinfo=UTC)
        session.add_all(
            [
                _export(class_id, late, 10, 2, 1),
                _export(class_id, datetime(2026, 12, 4, 8, 0, tzinfo=UTC), 5, 0, 0),
                _export(class_id, datetime(2026, 12, 4, 9, 0, tzinfo=UTC), 99, 9, 9, dry_run=True),
                # Older than the window: not drawn.
                _export(class_id, NOW - timedelta(days=40), 7, 7, 7),
                _import(late, JobStatus.SUCCEEDED, "applied", 30),
                _import(late + timedelta(hours=1), JobStatus.ON_HOLD, "on_hold", 500),
            ]
        )

    with classroom.session() as session:
        utc = activity_by_day(session, now=NOW)
        tokyo = activity_by_day(session, zone=ZoneInfo("Asia/Tokyo"), now=NOW)
        chicago = activity_by_day(session, zone=ZoneInfo("America/Chicago"), now=NOW)
        history = class_export_history(session, class_id)
        changes = import_changes(session)

    def day(window: object, wanted: date) -> tuple[int, int, int, int, int]:
        found = next(d for d in window.days if d.day == wanted)  # type: ignore[attr-defined]
        return (found.exports, found.writes, found.skipped, found.failed, found.created)

    assert len(utc.days) == 30 and utc.last == date(2026, 12, 5)
    assert utc.first == date(2026, 11, 6)
    assert day(utc, date(2026, 12, 3)) == (1, 10, 2, 1, 30)
    assert day(utc, date(2026, 12, 4)) == (1, 5, 0, 0, 0)
    assert (utc.exports, utc.total("writes"), utc.imports) == (2, 15, 1)
    # 23:30 UTC on Dec 3 is 08:30 on Dec 4 in Tokyo, and 17:30 on Dec 3 in Chicago.
    assert day(tokyo, date(2026, 12, 4)) == (2, 15, 2, 1, 30)
    assert day(tokyo, date(2026, 12, 3)) == (0, 0, 0, 0, 0)
    assert day(chicago, date(2026, 12, 3)) == (1, 10, 2, 1, 30)
    assert day(chicago, date(2026, 12, 4)) == (1, 5, 0, 0, 0)

    assert [(e.writes, e.skipped, e.failed) for e in history] == [(7, 7, 7), (10, 2, 1), (5, 0, 0)]
    assert [(c.total("created"), c.total("updated"), c.changed_entities()) for c in changes] == [
        (30, 2, ["students"])
    ]


def test_a_zone_three_quarters_of_an_hour_off_gets_its_own_days(classroom: Classroom) -> None:
    """Kathmandu is UTC+5:45: 18:10 UTC is 23:55 there, 18:20 UTC already the next day."""
    system = Actor.system()
    with classroom.transaction() as session:
        teacher = people.create_person(
            session, system, name="T", email="t@school.example", roles=[Role.TEACHER]
        )
        class_id = classes.create_class(
            session, system, title="Art", primary_teacher_id=teacher.id
        ).id
        session.add_all(
            [
                _export(class_id, datetime(2026, 12, 3, 18, 10, tzinfo=UTC), 3, 0, 0),
                _export(class_id, datetime(2026, 12, 3, 18, 20, tzinfo=UTC), 5, 0, 0),
            ]
        )
    with classroom.session() as session:
        kathmandu = activity_by_day(session, zone=ZoneInfo("Asia/Kathmandu"), now=NOW)
    writes = {day.day: day.writes for day in kathmandu.days if day.writes}
    assert writes == {date(2026, 12, 3): 3, date(2026, 12, 4): 5}
