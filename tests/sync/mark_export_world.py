"""A classroom connected to a running built-in SIS, with one linked class, for mark export tests.

Everything is real: the provider over HTTP on 127.0.0.1, a SQLite classroom, the services.
The connection is saved and authorised the way an administrator's would be; the teacher, the
class and its students are made with the classroom's services to match the SIS by email.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import Category, EnrolmentRole, Role
from sislink.classroom.services import classes, connections, coursework, marks, people
from sislink.oneroster.consumer import ConnectionSettings, OneRosterClient
from sislink.oneroster.models import LineItem, Result
from sislink.oneroster.provider.server import RunningProvider
from sislink.sync import class_link
from sislink.sync.class_link import SisClassFacts
from sislink.sync.sis_client import settings_for


@dataclass
class World:
    sis: RunningProvider
    classroom: Classroom
    teacher: Actor
    teacher_email: str
    class_id: int
    sis_class_id: str
    facts: SisClassFacts
    students: list[int] = field(default_factory=list)  # classroom person ids
    sis_students: dict[int, str] = field(default_factory=dict)  # person id -> SIS sourcedId
    categories: dict[str, int] = field(default_factory=dict)  # classroom category id by title

    def settings(self, **overrides: Any) -> ConnectionSettings:
        with self.classroom.session() as session:
            connection = connections.current_connection(session)
            assert connection is not None
            base = settings_for(connection, self.classroom.secret_box)
        values = {
            "backoff_base_s": 0.02,
            "backoff_max_s": 0.5,
            "max_retry_after_s": 5.0,
            "max_retries": 10,
            "failure_threshold": 50,
        }
        values.update(overrides)
        from dataclasses import replace

        return replace(base, **values)

    def client(self, **overrides: Any) -> OneRosterClient:
        return OneRosterClient(self.settings(**overrides))

    def due_in_period(self, index: int = 0, days: int = 3) -> datetime:
        """A due date inside the SIS class's grading period `index`."""
        period = self.facts.grading_periods[index]
        day = min(period.start_date + timedelta(days=days), period.end_date)
        return datetime.combine(day, time(12, 0), tzinfo=UTC)

    def add_coursework(
        self,
        title: str,
        *,
        points: float | None = 10,
        due: datetime | None = None,
        category: str | None = "Homework",
        publish: bool = True,
        **more: Any,
    ) -> int:
        with self.classroom.transaction() as session:
            work = coursework.create_coursework(
                session,
                self.teacher,
                self.class_id,
                title=title,
                max_points=points,
                due_date=due if due is not None else self.due_in_period(),
                category_id=self.categories[category] if category else None,
                publish=publish,
                **more,
            )
            return work.id

    def mark(
        self, coursework_id: int, student_id: int, *, returned: bool = True, **values: Any
    ) -> None:
        with self.classroom.transaction() as session:
            marks.set_mark(session, self.teacher, coursework_id, student_id, **values)
            if returned:
                marks.return_marks(session, self.teacher, coursework_id, [student_id])


def connect_classroom(sis: RunningProvider, classroom: Classroom) -> None:
    """Save and authorise a connection to `sis`, as an administrator would."""
    district = next(
        r["sourcedId"] for r in sis.store.iter_all("org") if r.get("type") == "district"
    )
    extra = {"vendor_key": v for v in sis.extra_headers.values()}
    with classroom.transaction() as session:
        saved = connections.save_connection(
            session,
            Actor.system(),
            classroom.secret_box,
            partner=sis.profile,
            version=sis.version,
            host_url=sis.host_url,
            access_key=sis.client_id,
            secret_code=sis.client_secret,
            token_url=sis.token_url or None,
            extra_credentials=extra or None,
        )
        connections.mark_authorised(session, Actor.system(), saved.id, district_sourced_id=district)


async def build_world(
    sis: RunningProvider, classroom: Classroom, *, students: int = 5, class_index: int = 0
) -> World:
    """Connect, make the SIS teacher and one of their classes (with `students` of its students)
    in the classroom, and link it as that teacher."""
    (world,) = await build_worlds(sis, classroom, students=students, class_indexes=[class_index])
    return world


async def build_worlds(
    sis: RunningProvider,
    classroom: Classroom,
    *,
    students: int = 5,
    class_indexes: list[int] | None = None,
) -> list[World]:
    """Connect, make the SIS teacher and some of their SIS classes (each with `students` of
    its students) in the classroom, and link each as that teacher: one World per class."""
    connect_classroom(sis, classroom)
    admin = Actor.system()
    # The SIS is shared by a module's tests: start each from an empty gradebook (all of it,
    # so that a result left behind by a lineItem's DELETE would show in `sis_gradebook`).
    for kind in ("result", "lineItem"):
        for record in list(sis.store.iter_all(kind)):
            sis.store.delete(kind, str(record["sourcedId"]))
    worlds: list[World] = []
    async with OneRosterClient(_settings(classroom)) as client:
        choices = await class_link.sis_classes_for_teacher(client, sis.teacher_email)
        with classroom.transaction() as session:
            teacher = people.create_person(
                session, admin, name="The Teacher", email=sis.teacher_email, roles=[Role.TEACHER]
            )
            teacher_actor = Actor.of(teacher)
        known: dict[str, int] = {}  # student email -> classroom person id
        for class_index in class_indexes or [0]:
            sis_class = choices[class_index]
            roster = await client.students_for_class(sis_class.sourced_id)
            with classroom.transaction() as session:
                made = classes.create_class(
                    session,
                    admin,
                    title=f"Class {sis_class.title}",
                    primary_teacher_id=teacher_actor.person_id,
                )
                person_ids: list[int] = []
                sis_ids: dict[int, str] = {}
                for user in roster[:students]:
                    assert user.email
                    if user.email not in known:
                        known[user.email] = people.create_person(
                            session,
                            admin,
                            name=f"{user.given_name} {user.family_name}",
                            email=user.email,
                            roles=[Role.STUDENT],
                        ).id
                    student_id = known[user.email]
                    classes.enrol(session, admin, made.id, student_id, EnrolmentRole.STUDENT)
                    person_ids.append(student_id)
                    sis_ids[student_id] = user.sourced_id
                class_id = made.id
            facts = await class_link.link_class(
                classroom, client, teacher_actor, class_id, sis_class.sourced_id
            )
            with classroom.session() as session:
                categories = {
                    c.title: c.id
                    for c in session.scalars(select(Category).where(Category.class_id == class_id))
                }
            worlds.append(
                World(
                    sis=sis,
                    classroom=classroom,
                    teacher=teacher_actor,
                    teacher_email=sis.teacher_email,
                    class_id=class_id,
                    sis_class_id=sis_class.sourced_id,
                    facts=facts,
                    students=person_ids,
                    sis_students=sis_ids,
                    categories=categories,
                )
            )
    return worlds


def _settings(classroom: Classroom) -> ConnectionSettings:
    with classroom.session() as session:
        connection = connections.current_connection(session)
        assert connection is not None
        return settings_for(connection, classroom.secret_box)


async def sis_gradebook(world: World) -> tuple[list[LineItem], dict[str, list[Result]]]:
    """The SIS class's lineItems and each one's results, as the SIS lists them now.

    The world's SIS holds no other gradebook, so every lineItem and result in it must be
    listed here: one that is not (a result whose lineItem was deleted under it) fails."""
    async with world.client() as client:
        items = await client.line_items_for_class(world.sis_class_id)
        results = {
            li.sourced_id: await client.results_for_line_item(world.sis_class_id, li.sourced_id)
            for li in items
        }
    assert sis_holds(world) == (len(items), sum(len(r) for r in results.values())), (
        "the SIS holds lineItems or results that the class's gradebook does not list"
    )
    return items, results


def sis_holds(world: World) -> tuple[int, int]:
    """How many lineItems and results the whole SIS holds (orphans included)."""
    return world.sis.store.count("lineItem"), world.sis.store.count("result")


def today() -> date:
    return datetime.now(UTC).date()
