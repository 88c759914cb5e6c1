"""A district for the roster sync tests: the built-in SIS and the local Classroom on loopback, for
the same seed (so the SIS's people are the domain's users), the classroom filled from the SIS by
a real roster import, and sislink connected to Classroom and authorised, as an administrator
does it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from googleclassroom.google_world import google_service
from sislink.classroom import Actor, Classroom
from sislink.classroom.models import Class, Enrolment, Person
from sislink.classroom.services import connections
from sislink.classroom.services.organisation import identity_namespace
from sislink.googleclassroom import ClientSettings
from sislink.googleclassroom.emulator import ClassroomConfig, RunningClassroom, running_classroom
from sislink.oneroster.consumer import OneRosterClient
from sislink.oneroster.models import format_datetime, utc_now
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync import google_connection
from sislink.sync.google_roster import (
    GoogleRosterReport,
    google_connection_for_sync,
    namespace_alias,
    open_google_client,
    sync_roster,
)
from sislink.sync.roster_import import import_roster
from sislink.sync.sis_client import settings_for

ADMIN = Actor.system()
STUDENTS = 30


@dataclass
class World:
    classroom: Classroom
    sis: RunningProvider
    google: RunningClassroom
    connection_id: int

    def import_roster(self, **options: Any) -> None:
        with self.classroom.session() as session:
            connection = session.get(connections.SisConnection, self.connection_id)
            assert connection is not None
            settings = settings_for(connection, self.classroom.secret_box)

        async def run() -> None:
            fast = dataclasses.replace(settings, backoff_base_s=0.01, backoff_max_s=0.05)
            async with OneRosterClient(fast) as client:
                report = await import_roster(
                    self.classroom, client, connection_id=self.connection_id, full=True, **options
                )
                assert report.status == "applied", report.hold_reason

        asyncio.run(run())

    def sync(self, **options: Any) -> GoogleRosterReport:
        connection = google_connection_for_sync(self.classroom)
        settings = ClientSettings(backoff_base_s=0.01, backoff_cap_s=0.05)
        with open_google_client(self.classroom, connection, settings) as client:
            return sync_roster(self.classroom, ADMIN, client=client, **options)

    def admin_service(self) -> Any:
        return google_service(self.google, self.google.admin_email)

    def end_enrolment(self, email: str, class_sourced_id: str) -> None:
        """The SIS ends a student's enrolment in a class (tobedeleted), as SIS do."""
        store = self.sis.store
        user = next(u for u in store.iter_all("user") if str(u.get("email")).lower() == email)
        for record in store.iter_all("enrollment"):
            if (
                record["user"]["sourcedId"] == user["sourcedId"]
                and record["class"]["sourcedId"] == class_sourced_id
            ):
                record = dict(
                    record, status="tobedeleted", dateLastModified=format_datetime(utc_now())
                )
                store.put("enrollment", record)
                return
        raise AssertionError(f"{email} is not enrolled in {class_sourced_id}")

    def classes(self) -> list[Class]:
        with self.classroom.session() as session:
            return list(
                session.scalars(
                    select(Class).where(Class.sis_sourced_id.is_not(None)).order_by(Class.id)
                ).all()
            )

    def roster(self) -> dict[str, tuple[str, set[str], set[str]]]:
        """SIS class sourcedId -> (owner email, teacher emails, student emails), as the
        classroom (filled from the SIS) holds them: what Classroom must equal."""
        found: dict[str, tuple[str, set[str], set[str]]] = {}
        with self.classroom.session() as session:
            people = {p.id: p for p in session.scalars(select(Person)).all()}
            for klass in session.scalars(
                select(Class).where(Class.sis_sourced_id.is_not(None), Class.active.is_(True))
            ).all():
                if klass.primary_teacher_id is None:
                    continue
                owner = str(people[klass.primary_teacher_id].email_key)
                teachers, students = {owner}, set()
                for enrolment in session.scalars(
                    select(Enrolment).where(
                        Enrolment.class_id == klass.id, Enrolment.active.is_(True)
                    )
                ).all():
                    email = str(people[enrolment.person_id].email_key)
                    (teachers if enrolment.role == "teacher" else students).add(email)
                assert klass.sis_sourced_id is not None
                found[klass.sis_sourced_id] = (owner, teachers, students - teachers)
        return found


def connect_google(classroom: Classroom, google: RunningClassroom) -> None:
    google_connection.connect(
        classroom,
        ADMIN,
        key_file_text=google.key_file.read_text(),
        admin_email=google.admin_email,
        api_endpoint=google.api_url,
    )
    google_connection.authorise(classroom, ADMIN)


@contextlib.contextmanager
def district(
    classroom: Classroom, *, students: int = STUDENTS, config: ClassroomConfig | None = None
) -> Iterator[World]:
    with (
        running_provider(students=students) as sis,
        running_classroom(students=students, config=config) as google,
    ):
        with classroom.transaction() as session:
            saved = connections.save_connection(
                session,
                ADMIN,
                classroom.secret_box,
                partner=sis.profile,
                version=sis.version,
                host_url=sis.host_url,
                access_key=sis.client_id,
                secret_code=sis.client_secret,
                token_url=sis.token_url or None,
            )
            connections.mark_authorised(session, ADMIN, saved.id, district_sourced_id="d1")
            connection_id = saved.id
        world = World(classroom, sis, google, connection_id)
        world.import_roster()
        connect_google(classroom, google)
        yield world


def classroom_courses(google: RunningClassroom) -> dict[str, tuple[str, set[str], set[str]]]:
    """Alias -> (owner email, teacher emails, student emails), as the local Classroom holds
    them (read from its state directly: the test's view of the truth)."""
    backend = google.backend
    users = google.directory.by_id
    found: dict[str, tuple[str, set[str], set[str]]] = {}
    for key, alias in backend.tables["alias"].items():
        course = backend.tables["course"][alias["courseId"]]
        roster = backend.tables["roster"][course["id"]]
        found[key] = (
            users[course["ownerId"]].email.lower(),
            {users[u].email.lower() for u in roster["teachers"]},
            {users[u].email.lower() for u in roster["students"]},
        )
    return found


def aliases(world: World) -> dict[str, str]:
    """SIS class sourcedId -> the alias of its course."""
    with world.classroom.session() as session:
        namespace = identity_namespace(session)
    return {sid: namespace_alias(namespace, world.sis.profile, sid) for sid in world.roster()}


def classroom_matches_the_sis(world: World) -> None:
    by_alias = classroom_courses(world.google)
    expected = {aliases(world)[sid]: roster for sid, roster in world.roster().items()}
    assert by_alias == expected
    # One course per alias, no course without one.
    assert len(world.google.backend.tables["course"]) == len(expected)
