"""The roster import's reader (issue 15 item 3): it reads the SIS a page at a time as models
(`iter_model_pages`) and cuts the pages into batches of `batch_size` records, valid and
invalid alike, so a page holding invalid records reports each of them once and the progress
still counts every record read, batch by batch."""

from __future__ import annotations

import dataclasses

import pytest

from sislink.classroom import Classroom
from sislink.oneroster.provider.server import running_provider
from sislink.sync.roster_import import import_roster
from sync.test_roster_import import client_for, connect

PAGE = 20  # records per SIS page
BATCH = 8  # records per import batch: batches end inside pages, and pages inside batches


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_invalid_records_inside_pages_are_reported_once_and_every_record_counted(
    classroom: Classroom,
) -> None:
    with running_provider(students=60) as running:
        store = running.store
        users = list(store.iter_all("user"))
        students = [u for u in users if u["roles"][0]["role"] == "student"]
        # Three invalid students: two on one page, one on another (no givenName).
        invalid = [students[1], students[2], students[45]]
        for student in invalid:
            store.put("user", {k: v for k, v in student.items() if k != "givenName"})
        connection_id = connect(classroom, running)
        said: list[tuple[str, int, int | None]] = []
        client = client_for(classroom, connection_id)
        client.settings = dataclasses.replace(client.settings, page_size=PAGE)
        async with client:
            report = await import_roster(
                classroom,
                client,
                connection_id=connection_id,
                batch_size=BATCH,
                progress=lambda label, read, total: said.append((label, read, total)),
            )
    assert report.status == "applied"
    assert report.counts["students"].skipped == 3
    assert report.counts["students"].created == len(students) - 3
    assert report.warnings["invalid_records"].count == 3
    rejected = {example.split(" ", 1)[0] for example in report.warnings["invalid_records"].examples}
    assert rejected == {repr(s["sourcedId"]) for s in invalid}

    read = [r for label, r, _ in said if label == "students"]
    totals = {t for label, _, t in said if label == "students"}
    assert totals == {len(users)}
    assert len(users) > 2 * PAGE and len(users) % BATCH != 0
    # After each full batch, and once more at the end: every record, invalid ones too.
    assert read == [*range(BATCH, len(users), BATCH), len(users)]
