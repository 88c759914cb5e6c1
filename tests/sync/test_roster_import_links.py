"""Classes imported from the SIS come linked to their SIS class: teachers need not link them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import Class, ClassLink
from sislink.classroom.services import classes as class_services
from sislink.classroom.services import connections
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync import class_link
from sislink.sync import connection as connection_service
from sislink.sync.roster_import import import_roster
from sislink.sync.roster_report import RosterReport
from sislink.sync.sis_client import open_sis_client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sis() -> Iterator[RunningProvider]:
    with running_provider(students=120) as running:
        yield running


@pytest.fixture
def classroom(database_url: str) -> Iterator[Classroom]:
    opened = open_classroom(database_url)
    yield opened
    opened.close()


async def _import(classroom: Classroom) -> int:
    with classroom.session() as session:
        current = connections.current_connection(session)
        assert current is not None
        connection_id = current.id
    async with open_sis_client(classroom) as client:
        report = await import_roster(classroom, client, connection_id=connection_id, full=True)
    return report.classes_linked


@pytest.mark.anyio
async def test_imported_classes_come_linked_to_their_sis_class(
    sis: RunningProvider, classroom: Classroom
) -> None:
    await _connect(classroom, sis)
    linked = await _import(classroom)
    with classroom.session() as session:
        imported = session.scalars(select(Class).where(Class.sis_sourced_id.is_not(None))).all()
        links = {
            link.class_id: link.sis_class_sourced_id
            for link in session.scalars(select(ClassLink)).all()
        }
    assert linked == len(imported) > 0
    assert links == {c.id: c.sis_sourced_id for c in imported}


@pytest.mark.anyio
async def test_a_second_import_keeps_links_and_a_class_made_here_stays_unlinked(
    sis: RunningProvider, classroom: Classroom
) -> None:
    await _connect(classroom, sis)
    await _import(classroom)
    with classroom.transaction() as session:
        own = class_services.create_class(session, Actor.system(), title="Lunchtime chess club")
        own_id = own.id
    assert await _import(classroom) == 0
    with classroom.session() as session:
        assert connections.class_link(session, own_id) is None


@pytest.mark.anyio
async def test_the_import_records_when_the_connection_last_imported(
    sis: RunningProvider, classroom: Classroom
) -> None:
    await _connect(classroom, sis)
    await _import(classroom)
    with classroom.session() as session:
        current = connections.current_connection(session)
        assert current is not None and current.last_import_at is not None


@pytest.mark.anyio
async def test_an_imported_class_unlinked_by_hand_stays_unlinked_until_linked_by_hand(
    sis: RunningProvider, classroom: Classroom
) -> None:
    await _connect(classroom, sis)
    await _import(classroom)
    with classroom.session() as session:
        imported = session.scalars(
            select(Class).where(Class.sis_sourced_id.is_not(None)).order_by(Class.id)
        ).first()
        assert imported is not None and imported.sis_sourced_id is not None
    class_link.unlink_class(classroom, Actor.system(), imported.id)
    assert await _import(classroom) == 0
    with classroom.session() as session:
        assert connections.class_link(session, imported.id) is None
    with classroom.transaction() as session:
        connections.link_class(session, Actor.system(), imported.id, imported.sis_sourced_id)
    assert await _import(classroom) == 0
    with classroom.session() as session:
        link = connections.class_link(session, imported.id)
        assert link is not None and link.sis_class_sourced_id == imported.sis_sourced_id


@pytest.mark.anyio
async def test_an_import_does_not_link_a_sis_class_another_class_is_linked_to(
    sis: RunningProvider, classroom: Classroom
) -> None:
    await _connect(classroom, sis)
    taken = next(c["sourcedId"] for c in sis.store.iter_all("class") if c["status"] == "active")
    with classroom.transaction() as session:
        own = class_services.create_class(session, Actor.system(), title="English, made here")
        connections.link_class(session, Actor.system(), own.id, taken)
        own_id = own.id
    linked = await _import(classroom)
    with classroom.session() as session:
        imported = session.scalars(select(Class).where(Class.sis_sourced_id.is_not(None))).all()
        holders = session.scalars(
            select(ClassLink.class_id).where(ClassLink.sis_class_sourced_id == taken)
        ).all()
    assert taken in {c.sis_sourced_id for c in imported}
    assert holders == [own_id]
    assert linked == len(imported) - 1


async def _import_report(classroom: Classroom) -> RosterReport:
    with classroom.session() as session:
        current = connections.current_connection(session)
        assert current is not None
        connection_id = current.id
    async with open_sis_client(classroom) as client:
        report = await import_roster(classroom, client, connection_id=connection_id, full=True)
    # As stored in the job and read back by the console and `roster import --json`.
    return RosterReport.from_dict(report.to_dict())


def _first_imported(classroom: Classroom) -> Class:
    with classroom.session() as session:
        imported = session.scalars(
            select(Class).where(Class.sis_sourced_id.is_not(None)).order_by(Class.id)
        ).first()
        assert imported is not None and imported.sis_sourced_id is not None
        return imported


@pytest.mark.anyio
async def test_the_report_says_a_class_unlinked_by_hand_was_left_unlinked_and_since_when(
    sis: RunningProvider, classroom: Classroom
) -> None:
    await _connect(classroom, sis)
    assert (await _import_report(classroom)).classes_left_unlinked == []
    imported = _first_imported(classroom)
    class_link.unlink_class(classroom, Actor.system(), imported.id)
    with classroom.session() as session:
        unlinked_at = session.get(Class, imported.id).sis_unlinked_at  # type: ignore[union-attr]
        assert unlinked_at is not None
    report = await _import_report(classroom)
    (left,) = report.classes_left_unlinked
    assert report.classes_left_unlinked_count == 1
    assert (left.class_id, left.reason, left.holder_id) == (imported.id, "unlinked_by_hand", None)
    assert left.message == (
        f"Class {imported.title!r} was not linked to SIS class {imported.sis_sourced_id}: it "
        f"was unlinked by hand on {unlinked_at.date().isoformat()}; link it again if that was "
        "a mistake"
    )
    assert report.to_dict()["classes_left_unlinked"][0]["message"] == left.message
    with classroom.transaction() as session:
        connections.link_class(session, Actor.system(), imported.id, imported.sis_sourced_id)
    assert (await _import_report(classroom)).classes_left_unlinked == []


@pytest.mark.anyio
async def test_the_report_names_the_class_that_holds_an_imported_class_s_sis_class(
    sis: RunningProvider, classroom: Classroom
) -> None:
    await _connect(classroom, sis)
    taken = next(c["sourcedId"] for c in sis.store.iter_all("class") if c["status"] == "active")
    with classroom.transaction() as session:
        own = class_services.create_class(session, Actor.system(), title="English, made here")
        connections.link_class(session, Actor.system(), own.id, taken)
        own_id = own.id
    report = await _import_report(classroom)
    (left,) = report.classes_left_unlinked
    with classroom.session() as session:
        imported = session.scalars(select(Class).where(Class.sis_sourced_id == taken)).one()
    assert (left.class_id, left.sis_class_id, left.reason) == (
        imported.id,
        taken,
        "sis_class_taken",
    )
    assert (left.holder_id, left.unlinked_at) == (own_id, None)
    assert left.message == (
        f"Class {imported.title!r} was not linked to SIS class {taken}: SIS class {taken} is "
        "already linked to class 'English, made here' (one SIS class per class)"
    )


@pytest.mark.anyio
async def test_a_class_unlinked_by_hand_whose_sis_class_was_then_taken_is_told_both(
    sis: RunningProvider, classroom: Classroom
) -> None:
    await _connect(classroom, sis)
    await _import_report(classroom)
    imported = _first_imported(classroom)
    class_link.unlink_class(classroom, Actor.system(), imported.id)
    with classroom.transaction() as session:
        own = class_services.create_class(session, Actor.system(), title="Art, made here")
        connections.link_class(session, Actor.system(), own.id, imported.sis_sourced_id or "")
    (left,) = (await _import_report(classroom)).classes_left_unlinked
    assert left.reason == "unlinked_by_hand" and left.holder_title == "Art, made here"
    assert "link it again if that was a mistake" in left.message
    assert left.message.endswith(
        f"(SIS class {imported.sis_sourced_id} is already linked to class 'Art, made here': "
        "unlink it there first)"
    )


async def _connect(classroom: Classroom, sis: RunningProvider) -> None:
    admin = Actor.system()
    connection_service.connect(
        classroom,
        admin,
        sis=sis.profile,
        host_url=sis.host_url,
        access_key=sis.client_id,
        secret_code=sis.client_secret,
        token_url=sis.token_url,
    )
    await connection_service.authorise(classroom, admin)
