"""A SIS record holding a NUL character (U+0000) in text sislink keeps: refused alone, like an
invalid record, on both databases. Before, PostgreSQL stopped the whole import on it, and
SQLite's JSON lookups cut an id at it, so the next import inserted the record again and
stopped on the unique key."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from sislink.classroom import Classroom
from sislink.classroom.models import Class, Enrolment, Person
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sync.test_roster_import import connect, run_import


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sis() -> Iterator[RunningProvider]:
    with running_provider(students=40) as running:
        yield running


@pytest.mark.anyio
async def test_records_holding_a_nul_are_refused_alone_and_the_next_import_still_applies(
    classroom: Classroom, sis: RunningProvider
) -> None:
    store = sis.store
    students = [u for u in store.iter_all("user") if u["roles"][0]["role"] == "student"]
    # A student whose id holds a NUL (with enrolments of its own), one whose name does, an
    # enrolment whose id does, and a class whose title does.
    nul_id = {**students[0], "sourcedId": students[0]["sourcedId"] + "\x00x"}
    store.delete("user", students[0]["sourcedId"])
    store.put("user", nul_id)
    store.put("user", {**students[1], "givenName": "Ad\x00a"})
    enrolment = next(
        e
        for e in store.iter_all("enrollment")
        if e["user"]["sourcedId"] not in (students[0]["sourcedId"], students[1]["sourcedId"])
    )
    store.delete("enrollment", enrolment["sourcedId"])
    store.put("enrollment", {**enrolment, "sourcedId": enrolment["sourcedId"] + "\x00"})
    a_class = next(iter(store.iter_all("class")))
    store.put("class", {**a_class, "title": "Maths\x00"})
    connection_id = connect(classroom, sis)

    first = await run_import(classroom, connection_id)
    second = await run_import(classroom, connection_id, full=True)

    for report in (first, second):
        assert report.status == "applied", report.to_dict()
        assert report.counts["students"].skipped == 2
        assert report.counts["classes"].skipped == 1
        reasons = report.warnings["invalid_records"].examples
        assert report.warnings["invalid_records"].count == 4
        assert all("Text should not hold a NUL character" in reason for reason in reasons)
        # The report (stored, and shown on pages) writes the NUL out instead of holding it.
        listed = [item["sourced_id"] for item in report.rejected]
        assert nul_id["sourcedId"].replace("\x00", "\\x00") in listed
        assert not [sid for sid in listed if "\x00" in sid]
    assert first.counts["students"].created == len(students) - 2
    assert second.counts["students"].created == 0
    assert second.counts["enrolments"].created == 0
    with classroom.session() as session:
        for model in (Person, Enrolment, Class):
            # Looked at in Python: a NUL in a LIKE pattern ends it on SQLite.
            ids = session.scalars(select(model.sis_sourced_id)).all()
            assert ids and not [sid for sid in ids if sid is not None and "\x00" in sid]
        # Nothing stored under an id cut off at the NUL.
        cut_off = [nul_id["sourcedId"].split("\x00")[0], enrolment["sourcedId"]]
        assert session.scalar(select(func.count()).where(Person.sis_sourced_id == cut_off[0])) == 0
        assert (
            session.scalar(select(func.count()).where(Enrolment.sis_sourced_id == cut_off[1])) == 0
        )
        assert (
            session.scalar(select(Class.title).where(Class.sis_sourced_id == a_class["sourcedId"]))
            is None
        )


@pytest.mark.anyio
async def test_a_nul_in_a_metadata_key_is_written_out_in_the_report_too(
    classroom: Classroom, sis: RunningProvider
) -> None:
    # Where the NUL is names the key that holds it: the reason (stored with the report, and
    # shown) must not hold the character itself either.
    store = sis.store
    student = next(u for u in store.iter_all("user") if u["roles"][0]["role"] == "student")
    store.put("user", {**student, "metadata": {"ext\x00key": "x"}})
    report = await run_import(classroom, connect(classroom, sis))
    assert report.status == "applied", report.to_dict()
    assert report.counts["students"].skipped == 1
    [reason] = report.warnings["invalid_records"].examples
    assert "metadata.ext\\x00key: Text should not hold a NUL character" in reason
    [rejected] = report.rejected
    assert rejected["sourced_id"] == student["sourcedId"]
    assert "\\u0000" not in json.dumps(report.to_dict(), default=str)
