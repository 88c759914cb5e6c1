"""The import report's "create" examples are the rows the import created, as the upserts tell
them: not the ids that had no row before the page (a person sislink already had, adopted by
email, was listed as created, and so was an enrolment skipped for its unknown person), and
not looked up page by page (an import that creates nothing asked the database about every
enrolment id, and kept each in its cache: memory that grew with the district)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sislink.classroom import Actor, Classroom, bulk
from sislink.classroom.models import Enrolment, Role
from sislink.classroom.services import people
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sync.test_roster_import import connect, run_import


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sis() -> Iterator[RunningProvider]:
    with running_provider(students=30) as running:
        yield running


@pytest.mark.anyio
async def test_the_created_examples_are_the_rows_created_and_no_page_is_looked_up_for_them(
    classroom: Classroom, sis: RunningProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sis.store
    students = sorted(
        (u for u in store.iter_all("user") if u["roles"][0]["role"] == "student"),
        key=lambda u: u["sourcedId"],
    )
    # The first student is someone sislink already has (by email): adopted, not created.
    with classroom.transaction() as session:
        people.create_person(
            session,
            Actor.system(),
            name="Known Before",
            email=students[0]["email"],
            roles=[Role.STUDENT],
        )
    # The first enrolment names a person the SIS does not have: skipped, not created.
    enrolments = sorted(store.iter_all("enrollment"), key=lambda e: e["sourcedId"])
    store.put("enrollment", {**enrolments[0], "user": {"sourcedId": "nobody", "type": "user"}})
    connection_id = connect(classroom, sis)

    asked: list[Any] = []
    real_ids_by_sourced_id = bulk._ids_by_sourced_id

    def counted(session: Any, model: Any, sourced_ids: Any) -> dict[str, int]:
        asked.append(model)
        return real_ids_by_sourced_id(session, model, sourced_ids)

    monkeypatch.setattr(bulk, "_ids_by_sourced_id", counted)
    first = await run_import(classroom, connection_id)
    assert first.status == "applied"
    created_students = first.plan["students"]["create"]
    assert len(created_students) == 5
    assert students[0]["sourcedId"] not in created_students
    assert first.counts["students"].created == len(students) - 1
    created_enrolments = first.plan["enrolments"]["create"]
    assert len(created_enrolments) == 5
    assert enrolments[0]["sourcedId"] not in created_enrolments
    assert first.counts["enrolments"].skipped >= 1

    asked.clear()
    again = await run_import(classroom, connection_id, full=True)
    assert again.status == "applied"
    assert again.plan["enrolments"]["create"] == []
    # Nothing created, and no enrolment id asked about for examples of it.
    assert Enrolment not in asked
