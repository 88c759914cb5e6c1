"""A district's first import (issue 15): with no enrolment in the classroom when its write
transaction begins, every enrolment row it meets is its own. It inserts each page's enrolments
without looking them up first, and keeps none of their ids as seen. A SIS that repeats itself
across pages (one enrolment id twice, two ids for one class, person and role, an id sent again
for another class, an id whose last record is of another role) gets exactly what an import
into a classroom that already holds an enrolment (which looks every page up) gives it: the
same rows, counts and warnings. Each case runs both ways, on both databases, written as read
and spooled."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from conftest import postgres_url_or_skip
from sislink.classroom import Classroom, bulk, bulk_seen, open_classroom
from sislink.classroom.db import normalise_database_url
from sislink.classroom.models import Class, Enrolment, EnrolmentRole, Person, Role
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services import classes, people
from sislink.classroom.services.access import Actor
from sislink.oneroster.consumer import ModelPage, OneRosterClient
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync.roster_import import RosterImportFailed, import_roster
from sislink.sync.roster_report import RosterReport
from sync.test_roster_import import (
    bumped,
    classroom_roster,
    client_for,
    connect,
    provider_roster,
    run_import,
)
from sync.test_roster_import_atomic import snapshot
from sync.test_roster_import_streamed_review import page_of

PAGE = 50  # records per SIS page and per import batch: a small district in many pages


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["empty", "holding_one"])
def holding(request: pytest.FixtureRequest) -> str:
    """`empty`: the classroom holds no enrolment (the new path); `holding_one`: one made by a
    teacher beforehand, in a class of their own (every page is looked up, as before)."""
    return str(request.param)


@pytest.fixture(params=[False, True], ids=["spooled", "written_as_read"])
def written_as_read(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def enrol_by_hand(classroom: Classroom) -> None:
    """A teacher's own class with one student: an enrolment the SIS knows nothing of."""
    system = Actor.system()
    with classroom.transaction() as session:
        teacher = people.create_person(
            session, system, name="Hand Teacher", email="hand@school.example", roles=[Role.TEACHER]
        )
        student = people.create_person(
            session, system, name="Hand Student", email="hs@school.example", roles=[Role.STUDENT]
        )
        own = classes.create_class(session, Actor.of(teacher), title="Own class", section="1")
        classes.enrol(session, Actor.of(teacher), own.id, student.id, EnrolmentRole.STUDENT)


@dataclasses.dataclass
class Lookups:
    """How many times the import looked enrolments up before writing them (`_fetch_enrolments`,
    the real one, counted), and the enrolment ids the seen table held at the end."""

    calls: int = 0
    seen_enrolment_ids: int | None = None


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> Lookups:
    counted = Lookups()
    real_fetch = bulk._fetch_enrolments
    real_missing = bulk_seen.SeenIds.missing

    def fetch(*args: Any, **kwargs: Any) -> Any:
        counted.calls += 1
        return real_fetch(*args, **kwargs)

    def missing(seen: bulk_seen.SeenIds, model: Any, entities: Any) -> list[str]:
        if model is Enrolment:
            table = bulk_seen._seen
            counted.seen_enrolment_ids = seen._session.connection().scalar(
                select(func.count()).select_from(table).where(table.c.entity == "enrolments")
            )
        return real_missing(seen, model, entities)

    monkeypatch.setattr(bulk, "_fetch_enrolments", fetch)
    monkeypatch.setattr(bulk_seen.SeenIds, "missing", missing)
    return counted


def enrolments_with(
    client: OneRosterClient,
    first: list[dict[str, Any]] | None = None,
    last: list[dict[str, Any]] | None = None,
) -> None:
    """The SIS's enrollments with `first` on a page before those it holds and `last` on a
    page after them: a SIS that sends a record twice, or changes it while it is read."""
    real: Callable[..., AsyncIterator[ModelPage]] = client.iter_model_pages

    async def iter_model_pages(endpoint: str, **options: Any) -> AsyncIterator[ModelPage]:
        if endpoint == "enrollments" and first:
            yield page_of(client, "enrollment", first)
        async for page in real(endpoint, **options):
            yield page
        if endpoint == "enrollments" and last:
            yield page_of(client, "enrollment", last)

    client.iter_model_pages = iter_model_pages  # type: ignore[method-assign]


async def first_import(
    classroom: Classroom,
    running: RunningProvider,
    holding: str,
    written_as_read: bool,
    *,
    first: list[dict[str, Any]] | None = None,
    last: list[dict[str, Any]] | None = None,
) -> tuple[RosterReport, int]:
    if holding == "holding_one":
        enrol_by_hand(classroom)
    connection_id = connect(classroom, running)
    async with client_for(classroom, connection_id) as client:
        client.settings = dataclasses.replace(client.settings, page_size=PAGE)
        enrolments_with(client, first, last)
        report = await import_roster(
            classroom,
            client,
            connection_id=connection_id,
            batch_size=PAGE,
            write_while_reading=written_as_read,
        )
    return report, connection_id


def enrolment_rows(classroom: Classroom) -> set[tuple[Any, ...]]:
    """Every imported enrolment row (ended ones too) as the SIS names it."""
    with classroom.session() as session:
        statement = (
            select(
                Enrolment.sis_sourced_id,
                Class.sis_sourced_id,
                Person.sis_sourced_id,
                Enrolment.role,
                Enrolment.is_primary,
                Enrolment.active,
            )
            .join(Class, Class.id == Enrolment.class_id)
            .join(Person, Person.id == Enrolment.person_id)
            .where(Class.sis_sourced_id.is_not(None))
        )
        return {tuple(row) for row in session.execute(statement)}


def primary_teachers(classroom: Classroom) -> dict[str, str | None]:
    with classroom.session() as session:
        teacher = select(Person.sis_sourced_id).where(Person.id == Class.primary_teacher_id)
        statement = select(Class.sis_sourced_id, teacher.scalar_subquery()).where(
            Class.sis_sourced_id.is_not(None)
        )
        return {sid: teacher_sid for sid, teacher_sid in session.execute(statement) if sid}


def enrolment_outcome(report: RosterReport) -> dict[str, Any]:
    counts = report.counts["enrolments"]
    return {
        "status": report.status,
        "created": counts.created,
        "updated": counts.updated,
        "unchanged": counts.unchanged,
        "skipped": counts.skipped,
        "deactivated": counts.deactivated,
        "warnings": Counter(
            {w.code: w.count for w in report.warnings.values() if w.entity == "enrolments"}
        ),
    }


def assert_path(holding: str, lookups: Lookups, *, looked_up: bool) -> None:
    """The empty classroom took the new path: no enrolment id kept as seen, and no page
    looked up (unless `looked_up`: a page conflicted, or rows waited for the end); the other
    looked every page up and kept every id."""
    if holding == "empty":
        assert lookups.seen_enrolment_ids == 0
        assert (lookups.calls > 0) == looked_up, lookups.calls
    else:
        assert lookups.seen_enrolment_ids
        assert lookups.calls > 0


def students(running: RunningProvider) -> Iterator[dict[str, Any]]:
    return (e for e in running.store.iter_all("enrollment") if e["role"] == "student")


@pytest.mark.anyio
async def test_a_first_import_inserts_its_enrolments_without_looking_them_up(
    classroom: Classroom, holding: str, written_as_read: bool, lookups: Lookups
) -> None:
    with running_provider(students=60) as running:
        report, _ = await first_import(classroom, running, holding, written_as_read)
        assert classroom_roster(classroom) == provider_roster(running.store)
        total = sum(1 for _ in running.store.iter_all("enrollment"))
    assert total > 5 * PAGE
    assert enrolment_outcome(report) == {
        "status": "applied",
        "created": total,
        "updated": 0,
        "unchanged": 0,
        "skipped": 0,
        "deactivated": 0,
        "warnings": Counter(),
    }
    assert_path(holding, lookups, looked_up=False)
    assert all(teacher is not None for teacher in primary_teachers(classroom).values())


@pytest.mark.anyio
async def test_one_enrolment_id_sent_again_on_a_later_page_the_last_record_wins(
    classroom: Classroom, holding: str, written_as_read: bool, lookups: Lookups
) -> None:
    """Sent again unchanged it is unchanged; sent again for another class it moved: the row
    the first record made ends and the last record's starts (as an import that looks every
    page up has it); the page it came on and those after it are looked up."""
    with running_provider(students=60) as running:
        again = next(students(running))
        moving = next(
            e
            for e in students(running)
            if e["sourcedId"] != again["sourcedId"]
            and e["class"]["sourcedId"] != again["class"]["sourcedId"]
        )
        person = moving["user"]["sourcedId"]
        theirs = {
            e["class"]["sourcedId"]
            for e in running.store.iter_all("enrollment")
            if e["user"]["sourcedId"] == person
        }
        elsewhere = next(c for c in running.store.iter_all("class") if c["sourcedId"] not in theirs)
        moved = bumped(moving, **{"class": {"sourcedId": elsewhere["sourcedId"], "type": "class"}})
        report, _ = await first_import(
            classroom, running, holding, written_as_read, last=[again, moved]
        )
        total = sum(1 for _ in running.store.iter_all("enrollment"))
    assert enrolment_outcome(report) == {
        "status": "applied",
        "created": total + 1,  # the moved one's new row
        "updated": 0,
        "unchanged": 1,
        "skipped": 0,
        "deactivated": 1,  # the moved one's old row
        "warnings": Counter({"enrolments_moved": 1}),
    }
    rows = enrolment_rows(classroom)
    old = (moving["sourcedId"], moving["class"]["sourcedId"], moving["user"]["sourcedId"])
    new = (moving["sourcedId"], elsewhere["sourcedId"], moving["user"]["sourcedId"])
    assert (None, *old[1:], "student", False, False) in rows
    assert (*new, "student", False, True) in rows
    assert_path(holding, lookups, looked_up=True)


@pytest.mark.anyio
async def test_two_ids_for_one_class_person_and_role_on_two_pages_the_second_is_a_duplicate(
    classroom: Classroom, holding: str, written_as_read: bool, lookups: Lookups
) -> None:
    with running_provider(students=60) as running:
        taken = next(students(running))
        duplicate = bumped(taken, sourcedId="duplicate-of-the-first")
        report, _ = await first_import(
            classroom, running, holding, written_as_read, last=[duplicate]
        )
        assert classroom_roster(classroom) == provider_roster(running.store)
        total = sum(1 for _ in running.store.iter_all("enrollment"))
    assert enrolment_outcome(report) == {
        "status": "applied",
        "created": total,
        "updated": 0,
        "unchanged": 0,
        "skipped": 1,
        "deactivated": 0,
        "warnings": Counter({"duplicate_enrolments": 1}),
    }
    warning = report.warnings["duplicate_enrolments"]
    assert "duplicate-of-the-first" in warning.examples[0]
    assert taken["sourcedId"] in warning.examples[0]
    assert_path(holding, lookups, looked_up=True)


@pytest.mark.anyio
async def test_an_id_first_sent_then_sent_with_another_role_ends_and_its_place_is_taken_over(
    classroom: Classroom, holding: str, written_as_read: bool, lookups: Lookups
) -> None:
    """An enrolment whose last record is of a role sislink does not import is not sent: the
    row its first record made ends at the end of the import, and a new id for its class,
    person and role takes that row over (re-numbered). Another id, of another role first and
    sent as a student after, stays."""
    with running_provider(students=60) as running:
        listed = list(students(running))
        # The one that comes back is sent late: a batch (of the import's pages) holding the
        # record of another role and the student's would take both as of one moment.
        taken_back, renumbered_from, comes_back = listed[0], listed[1], listed[-1]
        # `renumbered_from` is sent, then as a guardian, then its place under a new id.
        last = [
            bumped(taken_back, role="guardian"),
            bumped(renumbered_from, role="guardian"),
            bumped(renumbered_from, sourcedId="renumbered-enrolment"),
        ]
        first = [bumped(comes_back, role="guardian")]
        report, _ = await first_import(
            classroom, running, holding, written_as_read, first=first, last=last
        )
        total = sum(1 for _ in running.store.iter_all("enrollment"))
    outcome = enrolment_outcome(report)
    assert outcome["status"] == "applied"
    assert (outcome["created"], outcome["updated"], outcome["deactivated"]) == (total, 1, 1)
    assert outcome["warnings"]["enrolments_other_role"] == 3
    assert "duplicate_enrolments" not in outcome["warnings"]
    active = {row[0]: row[-1] for row in enrolment_rows(classroom)}
    assert active[taken_back["sourcedId"]] is False
    assert active[comes_back["sourcedId"]] is True
    assert active["renumbered-enrolment"] is True
    assert renumbered_from["sourcedId"] not in active  # its row is the new id's now
    assert_path(holding, lookups, looked_up=True)


@pytest.mark.anyio
async def test_a_second_full_import_deactivates_what_the_sis_no_longer_sends(
    classroom: Classroom, holding: str, written_as_read: bool
) -> None:
    with running_provider(students=60) as running:
        _, connection_id = await first_import(classroom, running, holding, written_as_read)
        dropped = [e["sourcedId"] for e in list(students(running))[:5]]
        for sourced_id in dropped:
            running.store.delete("enrollment", sourced_id)
        report = await run_import(
            classroom, connection_id, full=True, write_while_reading=written_as_read
        )
        assert classroom_roster(classroom) == provider_roster(running.store)
    assert report.status == "applied"
    assert report.counts["enrolments"].deactivated == 5
    assert report.counts["enrolments"].created == 0


def refuse_enrolment_as_a_rule(classroom: Classroom, sourced_id: str) -> None:
    """A rule of the database (a trigger) that refuses one enrolment row with an integrity
    error that is not a unique key taken: SQLite's RAISE(ABORT) is SQLITE_CONSTRAINT_TRIGGER,
    and PostgreSQL's is raised as a check_violation (23514)."""
    with classroom.engine.begin() as connection:
        if classroom.dialect_name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_one BEFORE INSERT ON enrolment "
                    f"WHEN NEW.sis_sourced_id = '{sourced_id}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
            return
        connection.execute(
            text(
                "CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION "
                "'refused by the test' USING ERRCODE = 'check_violation'; END $$ "
                "LANGUAGE plpgsql"
            )
        )
        connection.execute(
            text(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON enrolment FOR EACH ROW "
                f"WHEN (NEW.sis_sourced_id = '{sourced_id}') EXECUTE FUNCTION refuse_one()"
            )
        )


@pytest.mark.anyio
async def test_a_first_import_whose_enrolment_the_database_refuses_changes_nothing(
    classroom: Classroom, written_as_read: bool, lookups: Lookups
) -> None:
    """An integrity error that is not a unique key taken (a rule of the database) in
    a page inserted without lookups is not taken for a conflict (no page is looked up after
    it): the import stops, changes nothing, and says so in its sentence (the page's
    savepoint is left to the rollback)."""
    with running_provider(students=60) as running:
        refused = list(students(running))[200]["sourcedId"]
        refuse_enrolment_as_a_rule(classroom, refused)
        connection_id = connect(classroom, running)
        before = snapshot(classroom)
        async with client_for(classroom, connection_id) as client:
            client.settings = dataclasses.replace(client.settings, page_size=PAGE)
            with pytest.raises(RosterImportFailed, match="changed nothing"):
                await import_roster(
                    classroom,
                    client,
                    connection_id=connection_id,
                    batch_size=PAGE,
                    write_while_reading=written_as_read,
                )
    assert snapshot(classroom) == before
    assert lookups.calls == 0


def repeats(running: RunningProvider, seed: int) -> tuple[list[Any], list[Any]]:
    """Records a SIS that repeats itself might send before and after its enrolments: some
    sent again as they are, for another class or person, as another role, primary or not,
    deleted, or under a new id for the same place."""
    rng = random.Random(seed)
    enrolments = list(running.store.iter_all("enrollment"))
    class_ids = [c["sourcedId"] for c in running.store.iter_all("class")]
    student_ids = sorted({e["user"]["sourcedId"] for e in enrolments if e["role"] == "student"})
    changes: list[Callable[[dict[str, Any], int], dict[str, Any]]] = [
        lambda e, _: bumped(e),
        lambda e, _: bumped(e, **{"class": {"sourcedId": rng.choice(class_ids), "type": "class"}}),
        lambda e, _: bumped(e, user={"sourcedId": rng.choice(student_ids), "type": "user"}),
        lambda e, _: bumped(e, role="guardian"),
        lambda e, _: bumped(e, primary=not e.get("primary", False)),
        lambda e, _: bumped(e, status="tobedeleted"),
        lambda e, n: bumped(e, sourcedId=f"again-{seed}-{n}"),
    ]
    first: list[Any] = []
    last: list[Any] = []
    for n in range(12):
        record = rng.choice(changes)(rng.choice(enrolments), n)
        (first if rng.random() < 0.3 else last).append(record)
    return first, last


@pytest.fixture
def other_classroom(
    database_url: str, secret_box: SecretBox, tmp_path: Path
) -> Iterator[Classroom]:
    """A second empty classroom on the same database server as `classroom`."""
    if database_url.startswith("sqlite"):
        opened = open_classroom(f"sqlite:///{tmp_path / 'other.db'}", secret_box=secret_box)
        yield opened
        opened.close()
        return
    base_url = normalise_database_url(postgres_url_or_skip())
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = base_url.update_query_dict({"options": f"-csearch_path={schema}"})
        opened = open_classroom(scoped.render_as_string(hide_password=False), secret_box=secret_box)
        yield opened
        opened.close()
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


async def what_an_import_leaves(
    classroom: Classroom, holding: str, written_as_read: bool, seed: int
) -> tuple[Any, ...]:
    with running_provider(students=60) as running:
        first, last = repeats(running, seed)
        report, _ = await first_import(
            classroom, running, holding, written_as_read, first=first, last=last
        )
    warnings = {(w.code, w.entity): (w.count, w.examples) for w in report.warnings.values()}
    # Neither way orders the ids it deactivates: compared as sets.
    plan = {
        entity: {
            action: sorted(ids) if action == "deactivate" else ids for action, ids in p.items()
        }
        for entity, p in report.plan.items()
    }
    return (
        report.status,
        report.to_dict()["counts"],
        warnings,
        plan,
        enrolment_rows(classroom),
        primary_teachers(classroom),  # the SIS's classes
    )


@pytest.mark.anyio
@pytest.mark.parametrize("seed", [3, 11, 12])
async def test_a_sis_that_repeats_itself_gets_from_a_first_import_what_looking_up_gives(
    classroom: Classroom, other_classroom: Classroom, written_as_read: bool, seed: int
) -> None:
    """The same SIS, repeating itself at random, imported into an empty classroom (pages
    inserted without lookups until one conflicts) and into one holding a hand-made enrolment
    (every page looked up): the same rows, counts, warnings and primary teachers."""
    new_way = await what_an_import_leaves(classroom, "empty", written_as_read, seed)
    looked_up = await what_an_import_leaves(other_classroom, "holding_one", written_as_read, seed)
    assert new_way == looked_up
