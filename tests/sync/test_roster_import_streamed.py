"""A roster import writes its pages while it reads the next ones (issue 15): on PostgreSQL (and on
SQLite when asked) each page goes into the one open transaction as soon as it is read, so the
classroom holds the rows of early pages before the SIS has served the last one; nobody else sees
them before the import commits, and a failure on the last page still changes nothing. On SQLite
by default the pages wait in a temporary file, so that the database's one write lock is not
held while the SIS is read."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from sislink.classroom import Classroom
from sislink.classroom.models import Enrolment
from sislink.oneroster.consumer import ModelPage, OneRosterClient
from sislink.oneroster.provider.server import RunningProvider
from sislink.sync import roster_import
from sislink.sync.roster_import import RosterImportFailed, import_roster
from sislink.sync.roster_writer import MAX_WRITES_WAITING
from sync.sis_shapes import Shape, shaped_provider
from sync.test_roster_import import classroom_roster, client_for, connect, provider_roster
from sync.test_roster_import_atomic import change_everything, snapshot

PAGE = 50  # records per SIS page and per import batch: many pages from a small district


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def small_pages(classroom: Classroom, connection_id: int) -> OneRosterClient:
    client = client_for(classroom, connection_id)
    client.settings = dataclasses.replace(client.settings, page_size=PAGE)
    return client


def committed_enrolments(classroom: Classroom) -> int:
    """What another connection sees (only what is committed)."""
    with classroom.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Enrolment)) or 0


@dataclasses.dataclass
class Watch:
    """The enrolment rows the import's own transaction holds after each of its enrolment
    writes, and what was true when the reader turned to the collection after them."""

    held_after_each_write: list[int] = dataclasses.field(default_factory=list)
    when_categories_asked: dict[str, int] = dataclasses.field(default_factory=dict)


def watch_enrolment_writes(monkeypatch: pytest.MonkeyPatch, watch: Watch) -> None:
    """The real upsert, then a count in the same session (its open transaction)."""
    real = roster_import.upsert_enrolments

    def counted(session: Any, rows: Any, *args: Any, **kwargs: Any) -> Any:
        counts = real(session, rows, *args, **kwargs)
        held = session.scalar(select(func.count()).select_from(Enrolment)) or 0
        watch.held_after_each_write.append(held)
        return counts

    monkeypatch.setattr(roster_import, "upsert_enrolments", counted)


def watch_categories_asked(client: OneRosterClient, classroom: Classroom, watch: Watch) -> None:
    """When the import asks for the categories (every enrolment page has been read), note
    how many enrolment writes its transaction had made, and what others could see."""
    real: Callable[..., AsyncIterator[ModelPage]] = client.iter_model_pages

    def iter_model_pages(endpoint: str, **options: Any) -> AsyncIterator[ModelPage]:
        if endpoint == "categories" and not watch.when_categories_asked:
            watch.when_categories_asked = {
                "writes": len(watch.held_after_each_write),
                "held": watch.held_after_each_write[-1] if watch.held_after_each_write else 0,
                "committed": committed_enrolments(classroom),
            }
        return real(endpoint, **options)

    client.iter_model_pages = iter_model_pages  # type: ignore[method-assign]


def enrolment_pages(running: RunningProvider) -> int:
    return math.ceil(sum(1 for _ in running.store.iter_all("enrollment")) / PAGE)


@pytest.mark.anyio
async def test_pages_are_written_in_the_open_transaction_while_later_pages_are_read(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = Watch()
    watch_enrolment_writes(monkeypatch, watch)
    with shaped_provider(Shape(), students=60) as running:
        connection_id = connect(classroom, running)
        pages = enrolment_pages(running)
        async with small_pages(classroom, connection_id) as client:
            watch_categories_asked(client, classroom, watch)
            report = await import_roster(
                classroom,
                client,
                connection_id=connection_id,
                batch_size=PAGE,
                write_while_reading=True,  # PostgreSQL's default; asked for on SQLite
            )
        assert classroom_roster(classroom) == provider_roster(running.store)
    assert report.status == "applied"
    asked = watch.when_categories_asked
    # The reader runs at most MAX_WRITES_WAITING pages (and the one being written) ahead.
    assert pages > MAX_WRITES_WAITING + 1
    assert asked["writes"] >= pages - (MAX_WRITES_WAITING + 1)
    # Those rows were in the import's transaction, and nobody else saw them before it committed.
    assert asked["held"] >= asked["writes"] * PAGE - PAGE
    assert asked["committed"] == 0
    assert committed_enrolments(classroom) == report.counts["enrolments"].created


@pytest.mark.anyio
async def test_a_failure_on_the_last_page_after_pages_were_written_changes_nothing(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    shape = Shape()
    with shaped_provider(shape, students=60) as running:
        connection_id = connect(classroom, running)
        async with small_pages(classroom, connection_id) as client:
            await import_roster(classroom, client, connection_id=connection_id, batch_size=PAGE)
        before = snapshot(classroom)
        change_everything(running)
        categories = sum(1 for _ in running.store.iter_all("category"))
        watch = Watch()
        watch_enrolment_writes(monkeypatch, watch)
        # The SIS serves every page of every collection, then fails the very last one.
        shape.failing_path = "/categories"
        shape.failing_after = math.ceil(categories / PAGE) - 1
        async with small_pages(classroom, connection_id) as client:
            with pytest.raises(RosterImportFailed, match="changed nothing"):
                await import_roster(
                    classroom,
                    client,
                    connection_id=connection_id,
                    full=True,
                    batch_size=PAGE,
                    write_while_reading=True,
                )
        assert shape.failing_after >= 1  # pages of categories were served before the failure
        assert len(watch.held_after_each_write) >= enrolment_pages(running)  # all written...
        assert snapshot(classroom) == before  # ...and all rolled back


@pytest.mark.anyio
async def test_on_sqlite_by_default_the_pages_wait_on_disk_and_others_can_write_meanwhile(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sislink.classroom import open_classroom

    classroom = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    watch = Watch()
    watch_enrolment_writes(monkeypatch, watch)
    others_wrote: list[bool] = []
    try:
        with shaped_provider(Shape(), students=60) as running:
            connection_id = connect(classroom, running)
            async with small_pages(classroom, connection_id) as client:
                watch_categories_asked(client, classroom, watch)
                real_asked = client.iter_model_pages

                def and_another_writer(endpoint: str, **options: Any) -> Any:
                    if endpoint == "categories":
                        # Another writer (the console, a job's progress) is not kept waiting.
                        db = sqlite3.connect(tmp_path / "classroom.db", timeout=0)
                        try:
                            db.execute("BEGIN IMMEDIATE")
                            db.execute("CREATE TABLE IF NOT EXISTS other_writer (x)")
                            db.execute("COMMIT")
                            others_wrote.append(True)
                        finally:
                            db.close()
                    return real_asked(endpoint, **options)

                client.iter_model_pages = and_another_writer  # type: ignore[method-assign]
                report = await import_roster(
                    classroom, client, connection_id=connection_id, batch_size=PAGE
                )
            assert classroom_roster(classroom) == provider_roster(running.store)
    finally:
        classroom.close()
    assert report.status == "applied" and others_wrote == [True]
    assert watch.when_categories_asked == {"writes": 0, "held": 0, "committed": 0}
    assert len(watch.held_after_each_write) >= 2  # written afterwards, page by page
