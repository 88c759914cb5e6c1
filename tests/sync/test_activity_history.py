"""The charts' sums (sync.activity_history) on SQLite and PostgreSQL: exports and applied roster
imports summed into the school's days (an export at 23:30 UTC is on the next day in Tokyo and the
same day in Chicago), dry runs left out, held imports' creates and updates kept, an approved
hold's deactivations on the day it was approved, Google grade pulls not counted as exports, and
a class's history oldest first."""

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
                # A dry run changed nothing (held imports: see below).
                _import(late + timedelta(hours=1), JobStatus.SUCCEEDED, "dry_run", 500),
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


def _class(session: object, title: str) -> int:
    system = Actor.system()
    teacher = people.create_person(
        session,  # type: ignore[arg-type]
        system,
        name="T",
        email=f"t-{title.lower()}@school.example",
        roles=[Role.TEACHER],
    )
    return classes.create_class(
        session,  # type: ignore[arg-type]
        system,
        title=title,
        primary_teacher_id=teacher.id,
    ).id


def test_held_and_discarded_imports_count_what_they_applied(classroom: Classroom) -> None:
    """A held import applied its creates and updates (only its deactivations wait), and a
    discarded one keeps them: both changed the roster that day. An approved import's
    deactivations happened when it was approved. Dry runs and failed imports changed nothing."""
    held_day = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    approved_day = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)

    def job(
        status: str, report_status: str, created: int, deactivated: int, **extra: object
    ) -> Job:
        counts = {"students": {"created": created, "updated": 2, "deactivated": deactivated}}
        return Job(
            kind="roster_import",
            status=status,
            created_at=held_day,
            started_at=held_day,
            finished_at=extra.pop("finished_at", held_day),
            report={"status": report_status, "mode": "full", "counts": counts, **extra},
        )

    with classroom.transaction() as session:
        session.add_all(
            [
                job(JobStatus.ON_HOLD, "on_hold", 100, 0, finished_at=None),
                job(JobStatus.CANCELLED, "discarded", 20, 0, discarded_by=1),
                job(JobStatus.SUCCEEDED, "applied", 3, 40, approved_by=1, finished_at=approved_day),
                job(JobStatus.SUCCEEDED, "dry_run", 9000, 9000),
                job(JobStatus.FAILED, "running", 7000, 7000),
            ]
        )
    with classroom.session() as session:
        window = activity_by_day(session, now=NOW)
    changed = {
        d.day: (d.imports, d.created, d.updated, d.deactivated) for d in window.days if d.changes
    }
    assert changed == {
        date(2026, 12, 2): (3, 123, 6, 0),
        date(2026, 12, 4): (0, 0, 0, 40),
    }
    assert window.imports == 3


def test_an_import_approved_inside_the_window_counts_its_deactivations(
    classroom: Classroom,
) -> None:
    """Held before the window's first day, approved today: today's deactivations are drawn."""
    with classroom.transaction() as session:
        session.add(
            Job(
                kind="roster_import",
                status=JobStatus.SUCCEEDED,
                created_at=NOW - timedelta(days=45),
                started_at=NOW - timedelta(days=45),
                finished_at=NOW - timedelta(hours=1),
                report={
                    "status": "applied",
                    "mode": "delta",
                    "approved_by": 1,
                    "counts": {"students": {"created": 5, "updated": 0, "deactivated": 12}},
                },
            )
        )
    with classroom.session() as session:
        window = activity_by_day(session, now=NOW)
    assert [(d.day, d.created, d.deactivated) for d in window.days if d.changes] == [
        (date(2026, 12, 5), 0, 12)
    ]


def test_a_google_grade_pull_is_not_an_export(classroom: Classroom) -> None:
    """A pull keeps what cannot go to the SIS in the class's report history (no writes, its
    items "needing attention"): it is not a mark export, in the day's count or the class's
    chart."""
    at = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
    with classroom.transaction() as session:
        class_id = _class(session, "Chemistry")
        # A pull's report is finished a moment after it started (the pull's items added).
        pull = _export(class_id, at, 0, 3, 0)
        pull.writes, pull.finished_at = 0, at + timedelta(microseconds=40)
        pull.summary = {**pull.summary, "source": "google_classroom", "said": ["x"]}
        drafts_only = _export(class_id, at, 0, 0, 0)
        drafts_only.writes, drafts_only.finished_at = 0, at + timedelta(microseconds=40)
        drafts_only.summary = {**drafts_only.summary, "source": "google_classroom"}
        # An unchanged class's export: finished when it started, nothing written.
        unchanged = _export(class_id, at + timedelta(hours=1), 0, 0, 0)
        unchanged.writes = 0
        session.add_all([pull, drafts_only, unchanged, _export(class_id, at, 6, 1, 0)])
    with classroom.session() as session:
        window = activity_by_day(session, now=NOW)
        history = class_export_history(session, class_id)
    day = next(d for d in window.days if d.day == date(2026, 12, 4))
    assert (day.exports, day.writes, day.skipped, day.failed) == (2, 6, 1, 0)
    assert sorted((e.writes, e.skipped) for e in history) == [(0, 0), (6, 1)]


def test_days_across_daylight_saving_changes(classroom: Classroom) -> None:
    """Chicago's Nov 1, 2026 has 25 hours (05:00 to 06:00 UTC the next day); Mar 8, 2026 has 23."""
    with classroom.transaction() as session:
        class_id = _class(session, "History")
        session.add_all(
            [
                _export(class_id, datetime(2026, 11, 1, 4, 59, tzinfo=UTC), 1, 0, 0),  # Oct 31
                _export(class_id, datetime(2026, 11, 1, 5, 0, tzinfo=UTC), 2, 0, 0),  # Nov 1
                _export(class_id, datetime(2026, 11, 2, 5, 59, tzinfo=UTC), 4, 0, 0),  # Nov 1
                _export(class_id, datetime(2026, 11, 2, 6, 0, tzinfo=UTC), 8, 0, 0),  # Nov 2
                _export(class_id, datetime(2026, 3, 8, 5, 59, tzinfo=UTC), 16, 0, 0),  # Mar 7
                _export(class_id, datetime(2026, 3, 8, 6, 0, tzinfo=UTC), 32, 0, 0),  # Mar 8
                _export(class_id, datetime(2026, 3, 9, 4, 59, tzinfo=UTC), 64, 0, 0),  # Mar 8
                _export(class_id, datetime(2026, 3, 9, 5, 0, tzinfo=UTC), 128, 0, 0),  # Mar 9
            ]
        )
    chicago = ZoneInfo("America/Chicago")
    with classroom.session() as session:
        autumn = activity_by_day(session, zone=chicago, now=datetime(2026, 11, 10, tzinfo=UTC))
        spring = activity_by_day(session, zone=chicago, now=datetime(2026, 3, 20, tzinfo=UTC))
    assert {d.day: d.writes for d in autumn.days if d.writes} == {
        date(2026, 10, 31): 1,
        date(2026, 11, 1): 6,
        date(2026, 11, 2): 8,
    }
    assert {d.day: d.writes for d in spring.days if d.writes} == {
        date(2026, 3, 7): 16,
        date(2026, 3, 8): 96,
        date(2026, 3, 9): 128,
    }


def test_the_windows_first_and_last_days_edges(classroom: Classroom) -> None:
    """The window starts at the first day's midnight in the zone (an export a microsecond
    before is not drawn) and ends with today, later today included."""
    tokyo = ZoneInfo("Asia/Tokyo")
    first_midnight = datetime(2026, 11, 6, tzinfo=tokyo)  # NOW is Dec 5 21:00 in Tokyo
    with classroom.transaction() as session:
        class_id = _class(session, "Music")
        session.add_all(
            [
                _export(class_id, first_midnight - timedelta(microseconds=1), 1, 0, 0),
                _export(class_id, first_midnight, 2, 0, 0),
                _export(class_id, datetime(2026, 12, 5, 23, 59, 59, tzinfo=tokyo), 4, 0, 0),
                _export(class_id, datetime(2026, 12, 6, tzinfo=tokyo), 8, 0, 0),
            ]
        )
    with classroom.session() as session:
        window = activity_by_day(session, zone=tokyo, now=NOW)
    assert (window.first, window.last) == (date(2026, 11, 6), date(2026, 12, 5))
    assert {d.day: d.writes for d in window.days if d.writes} == {
        date(2026, 11, 6): 2,
        date(2026, 12, 5): 4,
    }


def test_exports_that_failed_outright_are_counted_on_their_day(classroom: Classroom) -> None:
    """The SIS was down: each class's export failed (or was not tried, or was refused) with no
    items, so no item failed; the day still counts those exports as failed, and the class's
    history says which of its exports failed. A partial export (some items failed), one stopped
    by someone and a dry run are not failed exports."""
    at = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
    later = at + timedelta(days=1)

    def outright(
        class_id: int, outcome: str, when: datetime = at, *, dry_run: bool = False
    ) -> MarkExportReport:
        return MarkExportReport(
            class_id=class_id,
            dry_run=dry_run,
            outcome=outcome,
            writes=0,
            started_at=when,
            finished_at=when,
            summary={"outcome": outcome, outcome: "Not tried: the SIS stopped answering."},
            items=[],
        )

    with classroom.transaction() as session:
        first, second = _class(session, "Physics"), _class(session, "Latin")
        session.add_all(
            [
                outright(first, "failed"),
                outright(second, "failed"),
                outright(second, "refused", at + timedelta(minutes=1)),
                outright(second, "failed", dry_run=True),
                _export(first, later, 4, 0, 2),  # partial: two items failed
                outright(first, "stopped", later),
            ]
        )
    with classroom.session() as session:
        window = activity_by_day(session, now=NOW)
        history = class_export_history(session, second)
    days = {
        d.day: (d.exports, d.writes, d.failed, d.failed_exports) for d in window.days if d.exports
    }
    assert days == {date(2026, 12, 4): (3, 0, 0, 3), date(2026, 12, 5): (2, 4, 2, 0)}
    assert window.total("failed_exports") == 3
    assert [(e.outcome, e.failed, e.failed_outright) for e in history] == [
        ("failed", 0, True),
        ("refused", 0, True),
    ]
