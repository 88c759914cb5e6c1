"""The SIS connection: admins connect and disconnect; history is kept; links follow permissions."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from sislink.classroom.db import Classroom
from sislink.classroom.errors import Conflict, InvalidInput, PermissionDenied
from sislink.classroom.models import AuditEvent, Class, ClassLink, ConnectionStatus
from sislink.classroom.services import classes, connections

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


def _second_class(classroom: Classroom, teacher: Actor, title: str = "Maths 7 (set 2)") -> int:
    with classroom.transaction() as session:
        return classes.create_class(session, teacher, title=title).id


def test_a_sis_class_already_linked_to_another_class_is_refused_naming_it(
    classroom: Classroom, school: School
) -> None:
    connect(classroom, school.admin)
    other = _second_class(classroom, school.ada)
    with classroom.transaction() as session:
        connections.link_class(session, school.ada, school.class_id, "sis-class-1")
        # Linking the same class to the same SIS class again is no clash.
        connections.link_class(session, school.ada, school.class_id, "sis-class-1")
    for actor in (school.ada, school.admin):
        with (
            pytest.raises(
                Conflict,
                match=r"The SIS class sis-class-1 is already linked to the class 'Maths 7'; "
                "unlink it there first",
            ),
            classroom.transaction() as session,
        ):
            connections.link_class(session, actor, other, "sis-class-1")
    with classroom.transaction() as session:
        assert connections.class_link(session, other) is None
        connections.unlink_class(session, school.ada, school.class_id)
        assert connections.link_class(session, school.ada, other, "sis-class-1").class_id == other


def test_the_schema_refuses_a_second_class_on_one_sis_class(
    classroom: Classroom, school: School
) -> None:
    # Written around the services, as a racing writer that skipped the check would.
    connection_id = connect(classroom, school.admin)
    other = _second_class(classroom, school.ada)
    with classroom.transaction() as session:
        connections.link_class(session, school.ada, school.class_id, "sis-class-1")
    with pytest.raises(IntegrityError), classroom.transaction() as session:
        session.add(
            ClassLink(
                class_id=other, connection_id=connection_id, sis_class_sourced_id="sis-class-1"
            )
        )
        session.flush()


def test_two_classes_linked_to_one_sis_class_at_once_one_is_refused_with_a_clear_message(
    classroom: Classroom, school: School
) -> None:
    # The first link is written but not committed when the second is made: the second must be
    # refused (by the check after the first commits, or by the schema while it waits), never
    # written beside it.
    connect(classroom, school.admin)
    other = _second_class(classroom, school.ada)
    outcome: list[BaseException | ClassLink] = []

    def link_other() -> None:
        try:
            with classroom.transaction() as session:
                outcome.append(connections.link_class(session, school.ada, other, "sis-class-1"))
        except BaseException as error:  # reported by the main thread
            outcome.append(error)

    with classroom.transaction() as session:
        connections.link_class(session, school.ada, school.class_id, "sis-class-1")
        second = threading.Thread(target=link_other)
        second.start()
        if classroom.engine.dialect.name == "postgresql":
            _wait_until_a_writer_waits_for_a_lock(classroom)
    second.join()
    (result,) = outcome
    assert isinstance(result, Conflict), result
    assert "already linked to the class 'Maths 7'; unlink it there first" in str(result)
    with classroom.session() as session:
        links = session.scalars(select(ClassLink)).all()
    assert [(link.class_id, link.sis_class_sourced_id) for link in links] == [
        (school.class_id, "sis-class-1")
    ]


def _wait_until_a_writer_waits_for_a_lock(classroom: Classroom) -> None:
    """Until the second linker waits on the unique index (PostgreSQL shows it in pg_locks)."""
    for _ in range(6000):
        with classroom.engine.connect() as connection:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
                    "WHERE NOT l.granted AND a.query ILIKE '%class_link%'"
                )
            ).scalar_one()
        if waiting:
            return
        time.sleep(0.01)
    raise AssertionError("the second link never reached the database")


def test_unlinking_by_hand_is_remembered_until_the_class_is_linked_again(
    classroom: Classroom, school: School
) -> None:
    connect(classroom, school.admin)
    with classroom.transaction() as session:
        connections.link_class(session, school.ada, school.class_id, "sis-class-1")
        connections.unlink_class(session, school.ada, school.class_id)
    with classroom.session() as session:
        klass = session.get(Class, school.class_id)
        assert klass is not None and klass.sis_unlinked_at is not None
    with classroom.transaction() as session:
        connections.link_class(session, school.ada, school.class_id, "sis-class-2")
    with classroom.session() as session:
        klass = session.get(Class, school.class_id)
        assert klass is not None and klass.sis_unlinked_at is None


def test_an_import_linking_while_a_teacher_links_its_sis_class_leaves_the_teachers_link(
    classroom: Classroom, school: School
) -> None:
    connection_id = connect(classroom, school.admin)
    with classroom.transaction() as session:
        imported = classes.create_class(session, school.ada, title="Maths 7 (from the SIS)")
        imported.sis_sourced_id = "sis-class-1"
    outcome: list[BaseException | int] = []

    def link_imported() -> None:
        try:
            with classroom.transaction() as session:
                outcome.append(connections.link_imported_classes(session, connection_id))
        except BaseException as error:  # reported by the main thread
            outcome.append(error)

    with classroom.transaction() as session:
        connections.link_class(session, school.ada, school.class_id, "sis-class-1")
        importer = threading.Thread(target=link_imported)
        importer.start()
        if classroom.engine.dialect.name == "postgresql":
            _wait_until_a_writer_waits_for_a_lock(classroom)
    importer.join()
    assert outcome == [0]
    with classroom.session() as session:
        links = session.scalars(select(ClassLink)).all()
    assert [(link.class_id, link.sis_class_sourced_id) for link in links] == [
        (school.class_id, "sis-class-1")
    ]


def test_linking_imported_classes_links_only_those_free_to_link_and_counts_them(
    classroom: Classroom, school: School
) -> None:
    connection_id = connect(classroom, school.admin)
    with classroom.transaction() as session:
        made: dict[str, int] = {}
        for sis_class in ("sis-a", "sis-b", "sis-c"):
            imported = classes.create_class(session, school.ada, title=f"Imported {sis_class}")
            imported.sis_sourced_id = sis_class
            made[sis_class] = imported.id
        # sis-b is linked by hand to another class; sis-c's class was unlinked by hand.
        connections.link_class(session, school.ada, school.class_id, "sis-b")
        connections.link_class(session, school.ada, made["sis-c"], "sis-c")
        connections.unlink_class(session, school.ada, made["sis-c"])
    with classroom.transaction() as session:
        assert connections.link_imported_classes(session, connection_id) == 1
        assert connections.link_imported_classes(session, connection_id) == 0
    with classroom.session() as session:
        links = {
            link.class_id: link.sis_class_sourced_id
            for link in session.scalars(select(ClassLink)).all()
        }
    assert links == {school.class_id: "sis-b", made["sis-a"]: "sis-a"}
