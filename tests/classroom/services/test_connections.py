"""The SIS connection: admins connect and disconnect; history is kept; links follow permissions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from sislink.classroom.db import Classroom
from sislink.classroom.errors import Conflict, InvalidInput, PermissionDenied
from sislink.classroom.models import AuditEvent, ConnectionStatus
from sislink.classroom.services import connections

if TYPE_CHECKING:
    from sislink.classroom.services.access import Actor

    from ..conftest import School


def connect(classroom: Classroom, actor: Actor, host: str = "https://sis.example") -> int:
    with classroom.transaction() as session:
        saved = connections.save_connection(
            session,
            actor,
            classroom.secret_box,
            partner="aeries",
            version="1.1",
            host_url=host + "/",
            access_key="key",
            secret_code="code-123",
        )
        connections.mark_authorised(session, actor, saved.id, district_sourced_id="district-9")
        return saved.id


def test_only_administrators_connect_a_sis(classroom: Classroom, school: School) -> None:
    with (
        pytest.raises(PermissionDenied, match="Only an administrator may connect"),
        classroom.transaction() as session,
    ):
        connections.save_connection(
            session,
            school.ada,
            classroom.secret_box,
            partner="aeries",
            version="1.1",
            host_url="https://sis.example",
            access_key="k",
            secret_code="s",
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("version", "2.0", "version '2.0' is not supported"),
        ("host_url", "sis.example", "must be a web address starting with https://"),
        ("access_key", " ", "access key is required"),
        ("secret_code", "", "secret code is required"),
    ],
)
def test_bad_connection_details_get_a_plain_message(
    classroom: Classroom, school: School, field: str, value: str, message: str
) -> None:
    details = {
        "partner": "aeries",
        "version": "1.1",
        "host_url": "https://sis.example",
        "access_key": "k",
        "secret_code": "s",
        field: value,
    }
    with pytest.raises(InvalidInput, match=message), classroom.transaction() as session:
        connections.save_connection(session, school.admin, classroom.secret_box, **details)


def test_a_new_connection_retires_the_old_one_as_history(
    classroom: Classroom, school: School
) -> None:
    first = connect(classroom, school.admin)
    second = connect(classroom, school.admin, host="https://new-url.sis.example")
    with classroom.transaction() as session:
        current = connections.current_connection(session)
        assert current is not None and current.id == second
        assert current.host_url == "https://new-url.sis.example"
        assert current.sis_identity == "aeries:district-9"  # the same SIS despite the new URL
        history = connections.connection_history(session)
        assert [c.id for c in history] == [second, first]
        assert history[1].status == ConnectionStatus.DISCONNECTED
        assert not history[1].is_current


def test_disconnect_stops_teacher_links_and_is_audited(
    classroom: Classroom, school: School
) -> None:
    connect(classroom, school.admin)
    with classroom.transaction() as session:
        link = connections.link_class(session, school.ada, school.class_id, "sis-class-1")
        assert link.sis_class_sourced_id == "sis-class-1"
        connections.disconnect(session, school.admin)
    with (
        pytest.raises(Conflict, match="not connected to a SIS"),
        classroom.transaction() as session,
    ):
        connections.link_class(session, school.ada, school.class_id, "sis-class-2")
    with pytest.raises(Conflict, match="nothing to disconnect"), classroom.transaction() as session:
        connections.disconnect(session, school.admin)
    with classroom.transaction() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "sis.disconnected"))
        assert len(events.all()) == 1


def test_teachers_link_only_their_classes_and_only_when_export_is_enabled(
    classroom: Classroom, school: School
) -> None:
    connect(classroom, school.admin)
    with pytest.raises(PermissionDenied), classroom.transaction() as session:
        connections.link_class(session, school.brian, school.class_id, "sis-class-1")
    with classroom.transaction() as session:
        connections.set_teacher_export(session, school.admin, False)
    with (
        pytest.raises(PermissionDenied, match="Mark export is switched off for teachers"),
        classroom.transaction() as session,
    ):
        connections.link_class(session, school.ada, school.class_id, "sis-class-1")
    with classroom.transaction() as session:
        connections.set_teacher_export(session, school.admin, True)
        connections.link_class(session, school.ada, school.class_id, "sis-class-1")
        relinked = connections.link_class(session, school.ada, school.class_id, "sis-class-2")
        assert relinked.sis_class_sourced_id == "sis-class-2"
        assert connections.unlink_class(session, school.ada, school.class_id) is True
        assert connections.unlink_class(session, school.ada, school.class_id) is False
