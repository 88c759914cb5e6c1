"""The export ledger remembers what was last sent per object and SIS, and forgets on request."""

from __future__ import annotations

from sislink.classroom.db import Classroom
from sislink.classroom.models import ExportKind
from sislink.classroom.services import ledger


def test_recording_twice_updates_one_record_per_object_and_sis(classroom: Classroom) -> None:
    with classroom.transaction() as session:
        ledger.record_sent(
            session,
            ExportKind.LINE_ITEM,
            7,
            "aeries:district-9",
            sis_sourced_id="li-uuid",
            content_hash="h1",
            status="created",
        )
        ledger.record_sent(
            session,
            ExportKind.LINE_ITEM,
            7,
            "aeries:district-9",
            sis_sourced_id="li-uuid",
            content_hash="h2",
            status="updated",
        )
        ledger.record_sent(
            session,
            ExportKind.LINE_ITEM,
            7,
            "skyward:other",
            sis_sourced_id="li-other",
            content_hash=None,
            status="failed",
            message="SIS answered 422: dueDate is outside the grading period",
        )
    with classroom.transaction() as session:
        record = ledger.export_record(session, ExportKind.LINE_ITEM, 7, "aeries:district-9")
        assert record is not None
        assert (record.content_hash, record.last_status) == ("h2", "updated")
        assert len(ledger.records_for(session, "aeries:district-9")) == 1
        assert ledger.records_for(session, "skyward:other")[0].last_message.startswith("SIS")
        assert ledger.export_record(session, ExportKind.RESULT, 7, "aeries:district-9") is None


def test_forgetting_removes_only_that_record(classroom: Classroom) -> None:
    with classroom.transaction() as session:
        for object_id in (1, 2):
            ledger.record_sent(
                session,
                ExportKind.RESULT,
                object_id,
                "sis",
                sis_sourced_id=f"r-{object_id}",
                content_hash="h",
                status="created",
            )
        assert ledger.forget(session, ExportKind.RESULT, 1, "sis") is True
        assert ledger.forget(session, ExportKind.RESULT, 1, "sis") is False
        assert [r.object_id for r in ledger.records_for(session, "sis")] == [2]
