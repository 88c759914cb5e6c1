"""`SeenIds.own_rows` (issue 15): when the enrolment table held nothing as the import began,
none of its enrolment ids are kept; every row is sent but those whose sending a later record
took back (`discard`), until sent again."""

from __future__ import annotations

from sqlalchemy import func, select
from tests.classroom.test_bulk_new_rows import e, load_people_and_classes

from sislink.classroom.bulk import upsert_enrolments
from sislink.classroom.bulk_seen import SeenIds, _seen
from sislink.classroom.db import Classroom
from sislink.classroom.models import Enrolment


def test_own_rows_are_all_sent_but_those_taken_back_and_not_sent_again(
    classroom: Classroom,
) -> None:
    load_people_and_classes(classroom)
    with classroom.session() as session:
        seen = SeenIds(session)
        seen.own_rows("enrolments", Enrolment)
        ids = ["e-1", "e-2", "e-3"]
        seen.add("enrolments", ids)
        upsert_enrolments(session, [e("e-1", 1, "p-1"), e("e-2", 1, "p-2"), e("e-3", 2, "p-3")])
        sent = seen.sent("enrolments")
        # Nothing taken back: every row sent, none missing, and no id kept.
        assert all(sourced_id in sent for sourced_id in ids)
        assert None not in sent
        assert seen.missing(Enrolment, ("enrolments",)) == []
        kept = select(func.count()).select_from(_seen)
        assert session.connection().scalar(kept) == 0
        # e-1 and e-2 taken back (a record of another role); e-1 sent again afterwards.
        seen.discard("enrolments", ["e-1", "e-2"])
        seen.add("enrolments", ["e-1", "e-9"])
        assert ("e-1" in sent, "e-2" in sent, "e-3" in sent) == (True, False, True)
        assert seen.missing(Enrolment, ("enrolments",)) == ["e-2"]
        # Other entities are kept as before.
        seen.add("teachers", ["t-1"])
        assert "t-1" in seen.sent("teachers") and "t-2" not in seen.sent("teachers")
        seen.drop()
        session.rollback()
