"""Connect, Authorise, the teacher permission, Disconnect and Reconnect, against the built-in SIS
over HTTP, for every provider profile; the stored state and the audit trail after each step."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import (
    AuditEvent,
    Class,
    ClassLink,
    ConnectionStatus,
    Role,
    SisConnection,
)
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import connections, people
from sislink.oneroster.provider.profiles import PROFILES
from sislink.oneroster.provider.seed import seed_district
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.oneroster.provider.store import ProviderStore
from sislink.sync import connection as sis_connection
from sislink.sync.errors import ConfirmationRequired, NotConnected
from sislink.sync.sis_client import open_sis_client, sis_identity


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(
        f"sqlite:///{tmp_path / 'lifecycle.db'}", secret_box=SecretBox.generate()
    )
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def admin(classroom: Classroom) -> Actor:
    with classroom.transaction() as session:
        person = people.create_person(
            session,
            Actor.system(),
            name="Ada Admin",
            email="ada@district.example",
            roles=[Role.ADMIN],
        )
        return Actor.of(person)


def connect_details(sis: RunningProvider) -> dict[str, Any]:
    """What an administrator types for this SIS: the Host URL the provider prints, the key and
    secret, the token URL only where the profile cannot derive it, a vendor key where needed."""
    details: dict[str, Any] = {
        "sis": sis.profile,
        "host_url": sis.host_url,
        "access_key": sis.client_id,
        "secret_code": sis.client_secret,
    }
    if sis.profile == "generic-1.2":
        details["token_url"] = sis.token_url
    if sis.extra_headers:
        details["extra_credentials"] = {"vendor_key": next(iter(sis.extra_headers.values()))}
    return details


def actions(classroom: Classroom) -> list[str]:
    with classroom.session() as session:
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def all_connections(classroom: Classroom) -> list[SisConnection]:
    with classroom.session() as session:
        return list(session.scalars(select(SisConnection).order_by(SisConnection.id)))


@pytest.mark.anyio
@pytest.mark.parametrize("profile_name", sorted(PROFILES))
async def test_each_profile_connects_authorises_toggles_disconnects_and_reconnects(
    classroom: Classroom, admin: Actor, profile_name: str
) -> None:
    with running_provider(profile=profile_name, students=20) as sis:
        saved = sis_connection.connect(classroom, admin, **connect_details(sis))
        assert saved.status == ConnectionStatus.DRAFT
        assert saved.secret_stored
        assert saved.connected_by == "ada@district.example"
        with pytest.raises(NotConnected, match="not authorised yet"):
            async with open_sis_client(classroom):
                pass

        report = await sis_connection.authorise(classroom, admin)
        assert report.message == "Authorised"
        district = sis.store.query("org", limit=1000).records
        district_ids = [o["sourcedId"] for o in district if o.get("type") == "district"]
        assert report.district_sourced_id in district_ids
        assert report.connection.status == ConnectionStatus.AUTHORISED
        assert report.connection.teacher_export_enabled is True
        assert report.connection.sis_identity == f"{profile_name}:{report.district_sourced_id}"
        assert [s.step for s in report.steps][-3:] == ["teachers", "gradebook", "district"]

        # The stored connection opens a working client (what imports and exports use).
        async with open_sis_client(classroom) as client:
            teacher = await client.find_teacher_by_email(sis.teacher_email)
            assert teacher is not None
            await client.page("line_items", limit=1)

        off = sis_connection.set_teacher_export(classroom, admin, False)
        assert off.teacher_export_enabled is False
        on = sis_connection.set_teacher_export(classroom, admin, True)
        assert on.teacher_export_enabled is True

        first_identity = report.connection.sis_identity
        gone = sis_connection.disconnect(classroom, admin)
        assert gone.status == ConnectionStatus.DISCONNECTED
        assert gone.secret_stored is False
        stored = all_connections(classroom)[-1]
        assert stored.secret_code_sealed == ""
        assert stored.extra_credentials_sealed is None
        with pytest.raises(NotConnected, match="disconnected"):
            async with open_sis_client(classroom):
                pass

        sis_connection.connect(classroom, admin, **connect_details(sis))
        again = await sis_connection.authorise(classroom, admin)
        assert again.connection.sis_identity == first_identity
        assert again.same_sis_as_before is True
        assert again.connection.teacher_export_enabled is True

    history = all_connections(classroom)
    assert len(history) == 2
    assert [c.is_current for c in history] == [False, True]
    assert sis_identity(history[1]) == first_identity
    assert actions(classroom) == [
        "person.created",
        "sis.connection_saved",
        "sis.authorised",
        "sis.teacher_export",
        "sis.teacher_export",
        "sis.disconnected",
        "sis.connection_saved",
        "sis.authorised",
    ]
    with classroom.session() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action.like("sis.%"))).all()
        assert {e.actor_id for e in events} == {admin.person_id}


def make_linked_class(classroom: Classroom, title: str, sis_class: str) -> int:
    """A class linked to an SIS class on the current connection (as mark export links them)."""
    with classroom.transaction() as session:
        current = connections.current_connection(session)
        assert current is not None
        klass = Class(title=title)
        session.add(klass)
        session.flush()
        session.add(
            ClassLink(class_id=klass.id, connection_id=current.id, sis_class_sourced_id=sis_class)
        )
        return klass.id


def rename_district(sis: RunningProvider, new_sourced_id: str) -> None:
    """Make this SIS a different district: its district org gets another sourcedId."""
    for org in sis.store.query("org", limit=1000).records:
        if org.get("type") == "district":
            sis.store.delete("org", org["sourcedId"])
            sis.store.put("org", {**org, "sourcedId": new_sourced_id})


def link_connection(classroom: Classroom, class_id: int) -> int:
    with classroom.session() as session:
        link = session.scalars(select(ClassLink).where(ClassLink.class_id == class_id)).one()
        return link.connection_id


@pytest.mark.anyio
async def test_a_changed_url_with_the_same_district_is_the_same_sis_and_links_resume(
    classroom: Classroom, admin: Actor
) -> None:
    store = ProviderStore()
    seed_district(store, seed=11, students=20)
    with running_provider(profile="generic-1.2", store=store) as old_address:
        sis_connection.connect(classroom, admin, **connect_details(old_address))
        first = await sis_connection.authorise(classroom, admin)
        class_id = make_linked_class(classroom, "Algebra", "class-1")
    # The same district's data, served at a new address (as Campus.2235 moved every URL).
    with running_provider(profile="generic-1.2", store=store) as new_address:
        assert new_address.host_url != old_address.host_url
        sis_connection.connect(classroom, admin, **connect_details(new_address))
        second = await sis_connection.authorise(classroom, admin)
    assert second.connection.sis_identity == first.connection.sis_identity
    assert second.same_sis_as_before is True
    assert second.links_resumed == 1 and second.links_set_aside == 0
    assert link_connection(classroom, class_id) == second.connection.id
    assert "sis.links_resumed" in actions(classroom)


@pytest.mark.anyio
async def test_another_district_of_the_same_partner_needs_confirmation_and_sets_links_aside(
    classroom: Classroom, admin: Actor
) -> None:
    with running_provider(profile="generic-1.2", students=20, seed=11) as first_district:
        sis_connection.connect(classroom, admin, **connect_details(first_district))
        first = await sis_connection.authorise(classroom, admin)
        class_id = make_linked_class(classroom, "Algebra", "class-1")
    with running_provider(profile="generic-1.2", students=20, seed=12) as second_district:
        rename_district(second_district, "another-district")
        sis_connection.connect(classroom, admin, **connect_details(second_district))
        with pytest.raises(ConfirmationRequired, match=r"different OneRoster 1\.2 SIS district"):
            await sis_connection.authorise(classroom, admin)
        assert link_connection(classroom, class_id) == first.connection.id
        second = await sis_connection.authorise(classroom, admin, confirm_different_sis=True)
    assert second.connection.sis_identity == "generic-1.2:another-district"
    assert first.connection.sis_identity != second.connection.sis_identity
    assert second.same_sis_as_before is False
    assert second.links_set_aside == 1 and second.links_resumed == 0
    # Set aside: kept, still pointing at the old connection, never moved to the new SIS.
    assert link_connection(classroom, class_id) == first.connection.id
    assert "sis.different_sis_found" in actions(classroom)
    assert "sis.links_set_aside" in actions(classroom)


@pytest.mark.anyio
async def test_reauthorising_a_saved_connection_whose_sis_now_reports_another_district_asks_first(
    classroom: Classroom, admin: Actor
) -> None:
    store = ProviderStore()
    seed_district(store, seed=11, students=20)
    with running_provider(profile="generic-1.2", store=store) as sis:
        sis_connection.connect(classroom, admin, **connect_details(sis))
        first = await sis_connection.authorise(classroom, admin)
        class_id = make_linked_class(classroom, "Algebra", "class-1")
        sis_connection.set_teacher_export(classroom, admin, False)
    # The same address and credentials, but the SIS now serves another district.
    other = ProviderStore()
    seed_district(other, seed=12, students=20)
    with running_provider(profile="generic-1.2", store=other) as moved:
        rename_district(moved, "another-district")
        with classroom.transaction() as session:
            saved = session.get(SisConnection, first.connection.id)
            assert saved is not None
            saved.host_url, saved.token_url = moved.host_url, moved.token_url
        with pytest.raises(ConfirmationRequired, match=r"now reaches another district") as asked:
            await sis_connection.authorise(classroom, admin)
        assert "another-district" in str(asked.value) and "--confirm-different-sis" in str(
            asked.value
        )
        # Nothing changed: the saved connection still is the old district, links on it.
        unchanged = all_connections(classroom)
        assert [c.sis_identity for c in unchanged] == [first.connection.sis_identity]
        assert link_connection(classroom, class_id) == first.connection.id
        second = await sis_connection.authorise(classroom, admin, confirm_different_sis=True)
    assert second.connection.sis_identity == "generic-1.2:another-district"
    assert second.same_sis_as_before is False
    assert second.links_set_aside == 1 and second.links_resumed == 0
    assert second.connection.teacher_export_enabled is False  # the administrator's choice kept
    # The old district keeps its row and its link (set aside, never reused by the new SIS).
    rows = all_connections(classroom)
    assert [c.sis_identity for c in rows] == [
        first.connection.sis_identity,
        "generic-1.2:another-district",
    ]
    assert rows[0].current_slot is None and rows[1].current_slot is not None
    assert link_connection(classroom, class_id) == first.connection.id
    assert "sis.different_sis_found" in actions(classroom)
    # The replacement row works: its secret was carried over sealed.
    with running_provider(profile="generic-1.2", store=other) as again:
        with classroom.transaction() as session:
            current = session.get(SisConnection, second.connection.id)
            assert current is not None
            current.host_url, current.token_url = again.host_url, again.token_url
        third = await sis_connection.authorise(classroom, admin)
    assert third.same_sis_as_before is True and third.connection.id == second.connection.id


@pytest.mark.anyio
async def test_another_partner_needs_confirmation_at_connect(
    classroom: Classroom, admin: Actor
) -> None:
    with running_provider(profile="generic-1.2", students=20) as first:
        sis_connection.connect(classroom, admin, **connect_details(first))
        await sis_connection.authorise(classroom, admin)
    with running_provider(profile="aeries", students=20) as other:
        with pytest.raises(ConfirmationRequired, match="Aeries is a different SIS"):
            sis_connection.connect(classroom, admin, **connect_details(other))
        view = sis_connection.connect(
            classroom, admin, confirm_different_sis=True, **connect_details(other)
        )
        assert view.partner == "aeries"
        report = await sis_connection.authorise(classroom, admin)
    assert report.same_sis_as_before is False
    assert report.connection.sis_identity.startswith("aeries:")
    assert "sis.different_sis_confirmed" in actions(classroom)


def test_status_shows_the_connection_and_every_partnership(
    classroom: Classroom, admin: Actor
) -> None:
    empty = sis_connection.status(classroom)
    assert empty.connection is None
    names = {p["name"]: p["partnership"] for p in empty.partners}
    assert names["capita-sims"] == "Contact your SIS to learn more"
    assert names["skyward"] == "Available"
    sis_connection.connect(
        classroom,
        admin,
        sis="generic-1.1",
        host_url="https://sis.district.example/",
        access_key="key",
        secret_code="never-shown",
    )
    shown = sis_connection.status(classroom).as_dict()
    assert shown["connection"]["host_url"] == "https://sis.district.example"
    assert shown["connection"]["status"] == "draft"
    assert "never-shown" not in repr(shown)


def test_only_an_administrator_may_connect(classroom: Classroom) -> None:
    with classroom.transaction() as session:
        teacher = Actor.of(
            people.create_person(
                session, Actor.system(), name="T", email="t@school.example", roles=[Role.TEACHER]
            )
        )
    from sislink.classroom import PermissionDenied

    with pytest.raises(PermissionDenied, match="Only an administrator"):
        sis_connection.connect(
            classroom,
            teacher,
            sis="generic-1.1",
            host_url="https://sis.district.example",
            access_key="k",
            secret_code="s",
        )
