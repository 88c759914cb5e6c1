"""The ids a roster import has seen (bulk_seen.SeenIds) and the bulk COPY's statistics."""

from __future__ import annotations

from sqlalchemy import text

from sislink.classroom.bulk import SchoolRow, upsert_schools
from sislink.classroom.bulk_seen import SeenIds
from sislink.classroom.db import Classroom
from sislink.classroom.models import School


def test_ids_with_characters_a_copy_escapes_are_seen_exactly_as_sent(
    classroom: Classroom,
) -> None:
    awkward = ["tab\there", "back\\slash", "line\nend", "carriage\rreturn", "plain", "\\N"]
    with classroom.transaction() as session:
        upsert_schools(session, [SchoolRow(sid, f"School {i}") for i, sid in enumerate(awkward)])
        upsert_schools(session, [SchoolRow("not-sent", "Gone")])
        seen = SeenIds(session)
        seen.add("schools", awkward[:3])
        seen.add("schools", awkward[3:])
        assert seen.missing(School, ("schools",)) == ["not-sent"]
        sent = seen.sent("schools")
        assert all(sid in sent for sid in awkward)
        assert "tab" not in sent and "N" not in sent and None not in sent
        seen.drop()


def test_many_plain_ids_in_one_batch_are_each_seen_once(classroom: Classroom) -> None:
    ids = [f"sch-{i}" for i in range(3000)]
    with classroom.transaction() as session:
        upsert_schools(session, [SchoolRow(sid, sid) for sid in ids])
        seen = SeenIds(session)
        seen.add("schools", ids[:1500])
        seen.add("schools", ids[1500:])
        assert seen.missing(School, ("schools",)) == []
        count = session.execute(text("SELECT count(*) FROM roster_import_seen")).scalar()
        assert count == 3000
        seen.drop()


def test_missing_ids_come_oldest_row_first_however_the_rows_were_updated(
    classroom: Classroom,
) -> None:
    """The first five are a report's examples of what an import deactivates: the same each
    run. On PostgreSQL an update moves a row to the end of the table's scan order."""
    ids = [f"sch-{i:02}" for i in range(10)]
    with classroom.transaction() as session:
        upsert_schools(session, [SchoolRow(sid, sid) for sid in ids])
    with classroom.transaction() as session:
        upsert_schools(session, [SchoolRow(sid, f"{sid} renamed") for sid in ids[:5]])
    with classroom.transaction() as session:
        seen = SeenIds(session)
        seen.add("schools", ["not-a-school"])
        assert seen.missing(School, ("schools",)) == ids
        seen.drop()
