"""A class's mark export choices: defaults until changed, changed only by the primary teacher or
an administrator, read by whoever teaches the class, and the very row the export reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from sislink.classroom.db import Classroom
from sislink.classroom.errors import InvalidInput, NotFound, PermissionDenied
from sislink.classroom.models import ClassExportSettings, EnrolmentRole, MissingMarkExport
from sislink.classroom.services import classes, export_settings
from sislink.classroom.services.audit import recent_events
from sislink.sync import class_link

if TYPE_CHECKING:
    from ..conftest import School


def test_a_class_exports_missing_as_zero_and_no_drafts_until_changed(
    classroom: Classroom, school: School
) -> None:
    with classroom.session() as session:
        choices = export_settings.export_choices(session, school.ada, school.class_id)
        assert (choices.missing_as, choices.export_drafts) == (MissingMarkExport.ZERO, False)
        assert choices.as_json() == {
            "class_id": school.class_id,
            "missing_as": "zero",
            "export_drafts": False,
            "extra_credit_limit": 2.0,
        }
        # Reading writes nothing.
        assert session.scalar(select(func.count()).select_from(ClassExportSettings)) == 0


@pytest.mark.parametrize("typed", ["not-submitted", "not_submitted", "Not Submitted"])
def test_the_primary_teacher_changes_the_choices_and_the_export_reads_them(
    classroom: Classroom, school: School, typed: str
) -> None:
    with classroom.transaction() as session:
        changed = export_settings.change_export_choices(
            session, school.ada, school.class_id, missing_as=typed, export_drafts=True
        )
        assert (changed.missing_as, changed.export_drafts) == (
            MissingMarkExport.NOT_SUBMITTED,
            True,
        )
    with classroom.transaction() as session:
        row = class_link.export_settings(session, school.class_id)
        assert (row.missing_as, row.export_drafts) == (MissingMarkExport.NOT_SUBMITTED, True)
        # None keeps a choice as it is.
        kept = export_settings.change_export_choices(
            session, school.ada, school.class_id, export_drafts=False
        )
        assert (kept.missing_as, kept.export_drafts) == (MissingMarkExport.NOT_SUBMITTED, False)
    with classroom.session() as session:
        events = recent_events(session, action="class.export_choices_changed")
        assert [e.details["after"] for e in events] == [
            {
                "class_id": school.class_id,
                "missing_as": "not_submitted",
                "export_drafts": drafts,
                "extra_credit_limit": 2.0,
            }
            for drafts in (False, True)
        ]


def test_the_same_choice_again_is_not_an_audited_change(
    classroom: Classroom, school: School
) -> None:
    with classroom.transaction() as session:
        export_settings.change_export_choices(
            session, school.ada, school.class_id, missing_as="zero", export_drafts=False
        )
    with classroom.session() as session:
        assert recent_events(session, action="class.export_choices_changed") == []


def test_an_unknown_choice_is_refused_in_words_and_nothing_changes(
    classroom: Classroom, school: School
) -> None:
    with (
        pytest.raises(InvalidInput, match=r"'zero' .* or 'not-submitted' .*, not 'blank'"),
        classroom.transaction() as session,
    ):
        export_settings.change_export_choices(
            session, school.ada, school.class_id, missing_as="blank", export_drafts=True
        )
    with classroom.session() as session:
        assert session.scalar(select(func.count()).select_from(ClassExportSettings)) == 0


def test_a_co_teacher_reads_but_only_the_primary_teacher_or_an_admin_changes(
    classroom: Classroom, school: School
) -> None:
    assert school.brian.person_id is not None
    with classroom.transaction() as session:
        with pytest.raises(PermissionDenied, match="You do not teach"):
            export_settings.export_choices(session, school.brian, school.class_id)
        classes.enrol(
            session, school.ada, school.class_id, school.brian.person_id, EnrolmentRole.TEACHER
        )
    with classroom.transaction() as session:
        assert not export_settings.export_choices(
            session, school.brian, school.class_id
        ).export_drafts
    with (
        pytest.raises(PermissionDenied, match="Only the primary teacher of 'Maths 7'"),
        classroom.transaction() as session,
    ):
        export_settings.change_export_choices(
            session, school.brian, school.class_id, export_drafts=True
        )
    with classroom.transaction() as session:
        by_admin = export_settings.change_export_choices(
            session, school.admin, school.class_id, missing_as="not-submitted"
        )
        assert by_admin.missing_as == MissingMarkExport.NOT_SUBMITTED
        assert not by_admin.export_drafts


def test_an_unknown_class_is_not_found(classroom: Classroom, school: School) -> None:
    with pytest.raises(NotFound), classroom.transaction() as session:
        export_settings.change_export_choices(session, school.admin, 999999, export_drafts=True)
