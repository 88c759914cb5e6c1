"""`sislink classes ...`: list classes (and a teacher's SIS classes), link and unlink them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.table import Table
from sqlalchemy import select

from sislink.classroom import Actor, Classroom, ClassroomError
from sislink.classroom.models import Class, Person
from sislink.classroom.services import connections, export_settings
from sislink.classroom.services.classes import classes_taught_by
from sislink.classroom.services.connections import LinkState
from sislink.classroom.services.people import find_person
from sislink.cli.common import (
    AS_OPTION,
    JSON_OPTION,
    actor_for,
    classroom_errors,
    fail,
    open_from_env,
    out,
    print_json,
)
from sislink.oneroster.consumer import OneRosterError
from sislink.sync import class_link
from sislink.sync.errors import SyncError
from sislink.sync.sis_client import open_sis_client


@contextmanager
def sync_errors() -> Iterator[None]:
    """Classroom, sync and SIS errors as one plain sentence and exit status 1."""
    with classroom_errors():
        try:
            yield
        except (SyncError, OneRosterError) as exc:
            fail(str(exc))


def find_class(classroom: Classroom, name_or_id: str) -> int:
    """A class by id, or by exact title (case-insensitive) when only one class has it."""
    with classroom.session() as session:
        if name_or_id.strip().isdigit():
            found = session.get(Class, int(name_or_id))
            if found is not None:
                return found.id
        matches = [
            c.id
            for c in session.scalars(select(Class).where(Class.active.is_(True)))
            if c.title.casefold() == name_or_id.strip().casefold()
        ]
    if len(matches) == 1:
        return matches[0]
    if matches:
        fail(f"Several classes are called {name_or_id!r}; give the class id instead.")
    fail(f"There is no class {name_or_id!r}; `sislink classes list` shows ids and titles.")


def _email_of(classroom: Classroom, actor: Actor) -> str | None:
    with classroom.session() as session:
        person = session.get(Person, actor.person_id) if actor.person_id is not None else None
        return person.email if person is not None else None


def class_rows(classroom: Classroom, teacher: str | None) -> list[dict[str, Any]]:
    with classroom.session() as session:
        if teacher is not None:
            try:
                person = find_person(session, teacher)  # their email or SIS identifier
            except ClassroomError as exc:
                fail(str(exc))
            found = list(classes_taught_by(session, person.id))
        else:
            found = list(
                session.scalars(select(Class).where(Class.active.is_(True)).order_by(Class.title))
            )
        teachers = {
            p.id: p.email
            for p in session.scalars(
                select(Person).where(Person.id.in_({c.primary_teacher_id for c in found}))
            )
        }
        states = connections.link_states(session, found)
        rows = []
        for c in found:
            rows.append(
                {
                    "id": c.id,
                    "title": c.title,
                    "section": c.section,
                    "primary_teacher": teachers.get(c.primary_teacher_id or 0),
                    "imported": c.sis_sourced_id is not None,
                    **states[c.id].as_json(),
                }
            )
        return rows


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
    group = typer.Typer(help="Classes and their links to SIS classes.", no_args_is_help=True)
    app.add_typer(group, name="classes")

    @group.command("list")
    def list_classes(
        teacher: str | None = typer.Option(None, "--teacher", help="Only this teacher's classes."),
        sis: bool = typer.Option(
            False, "--sis", help="List the teacher's active SIS classes instead (needs --teacher)."
        ),
        as_email: str | None = AS_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        """List classes with their SIS link: `link` says linked, unlinked, unlinked_by_hand or
        linked_with_another_sis; sis_class_id is empty unless the class can export to it."""
        classroom = open_from_env()
        actor = actor_for(classroom, as_email)
        if as_email is not None and not actor.is_admin:
            # --as may name them by SIS identifier: the SIS is asked by their email.
            own = _email_of(classroom, actor) or as_email
            if teacher is not None and teacher.strip().lower() not in (
                own.strip().lower(),
                as_email.strip().lower(),
            ):
                fail("A teacher lists only their own classes; leave out --teacher.")
            teacher = own
        if sis:
            if teacher is None:
                fail("Give --teacher EMAIL to list that teacher's SIS classes.")

            async def fetch() -> list[class_link.SisClassChoice]:
                async with open_sis_client(classroom) as client:
                    return await class_link.sis_classes_for_teacher(client, teacher)

            with sync_errors():
                choices = asyncio.run(fetch())
            if as_json:
                print_json([c.as_json() for c in choices])
                return
            table = Table("SIS class", "Title", "Code", "School", "Terms")
            for c in choices:
                table.add_row(
                    c.sourced_id,
                    c.title,
                    c.class_code or "",
                    c.school_sourced_id,
                    ", ".join(c.term_sourced_ids),
                )
            out.print(table)
            return
        with sync_errors():
            rows = class_rows(classroom, teacher)
        if as_json:
            print_json(rows)
            return
        table = Table("Id", "Title", "Primary teacher", "SIS class")
        for row in rows:
            table.add_row(
                str(row["id"]),
                row["title"],
                row["primary_teacher"] or "",
                row["sis_class_id"] or f"({LinkState(row['link']).in_words})",
            )
        out.print(table)
        # The advice as whole sentences under the table, where a narrow terminal cannot wrap it.
        for row in rows:
            if row["link_advice"]:
                out.print(
                    f"Class {row['id']} ({row['title']}): {row['link_advice']}.", markup=False
                )

    @group.command("link")
    def link(
        class_: str = typer.Argument(..., metavar="CLASS", help="Class id or title."),
        sis_class: str = typer.Option(..., "--sis-class", help="The SIS class's sourcedId."),
        as_email: str | None = AS_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Link a class to one SIS class (its primary teacher, or an administrator)."""
        classroom = open_from_env()
        actor = actor_for(classroom, as_email)
        class_id = find_class(classroom, class_)

        async def run() -> class_link.SisClassFacts:
            async with open_sis_client(classroom) as client:
                return await class_link.link_class(classroom, client, actor, class_id, sis_class)

        with sync_errors():
            facts = asyncio.run(run())
        categories = [t for _, t in facts.categories]
        result: dict[str, Any] = {
            "class_id": class_id,
            "sis_class_id": facts.sis_class_id,
            "grading_periods": [p.title for p in facts.grading_periods],
            "categories": categories,
        }
        if as_json:
            print_json(result)
            return
        out.print(
            f"Linked class {class_id} to SIS class {facts.sis_class_id}: "
            f"{len(facts.grading_periods)} grading periods, categories "
            f"{', '.join(categories) or 'none'}."
        )

    @group.command("refresh-sis")
    def refresh_sis(
        class_: str = typer.Argument(..., metavar="CLASS", help="Class id or title."),
        as_email: str | None = AS_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Read the linked class's categories and grading periods from the SIS again now, and
        check what was exported against the SIS (what it lost goes with the next export)."""
        classroom = open_from_env()
        actor = actor_for(classroom, as_email)
        class_id = find_class(classroom, class_)

        async def run() -> class_link.SisClassFacts:
            async with open_sis_client(classroom) as client:
                return await class_link.refresh_class_facts_for_teacher(
                    classroom, client, actor, class_id
                )

        with sync_errors():
            facts = asyncio.run(run())
        titles = [t for _, t in facts.categories]
        if as_json:
            print_json(
                {
                    "class_id": class_id,
                    "sis_class_id": facts.sis_class_id,
                    "grading_periods": [p.title for p in facts.grading_periods],
                    "categories": titles,
                }
            )
            return
        out.print(
            f"Class {class_id}: the SIS lists {len(facts.grading_periods)} grading periods and "
            f"the categories {', '.join(titles) or 'none'}."
        )

    @group.command("unlink")
    def unlink(
        class_: str = typer.Argument(..., metavar="CLASS", help="Class id or title."),
        as_email: str | None = AS_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Remove a class's SIS link (exported marks stay in the SIS)."""
        classroom = open_from_env()
        actor = actor_for(classroom, as_email)
        class_id = find_class(classroom, class_)
        with sync_errors():
            unlinked = class_link.unlink_class(classroom, actor, class_id)
        if as_json:
            print_json({"class_id": class_id, "unlinked": unlinked})
            return
        out.print(
            f"Class {class_id} unlinked." if unlinked else f"Class {class_id} was not linked."
        )

    @group.command("settings")
    def export_choices(
        class_: str = typer.Argument(..., metavar="CLASS", help="Class id or title."),
        missing_as: str | None = typer.Option(
            None,
            "--missing-as",
            metavar="zero|not-submitted",
            help="What a missing mark becomes in the SIS: zero (a score of 0) or "
            "not-submitted (scoreStatus 'not submitted', no score).",
        ),
        export_drafts: bool | None = typer.Option(
            None,
            "--export-drafts/--no-export-drafts",
            help="Export draft marks too, or only marks returned to students (the default).",
        ),
        extra_credit_limit: str | None = typer.Option(
            None,
            "--extra-credit-limit",
            metavar="N",
            help="How many times its points a coursework's mark may be (extra credit), from 1 "
            "(none) to 100; 2 unless changed. A higher mark is refused, however it is set.",
        ),
        as_email: str | None = AS_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Show the class's mark choices (how missing and draft marks are exported, the
        extra-credit limit), or change them (its primary teacher, or an administrator)."""
        classroom = open_from_env()
        actor = actor_for(classroom, as_email)
        class_id = find_class(classroom, class_)
        with sync_errors(), classroom.transaction() as session:
            if missing_as is None and export_drafts is None and extra_credit_limit is None:
                choices = export_settings.export_choices(session, actor, class_id)
            else:
                choices = export_settings.change_export_choices(
                    session,
                    actor,
                    class_id,
                    missing_as=missing_as,
                    export_drafts=export_drafts,
                    extra_credit=extra_credit_limit,
                )
        if as_json:
            print_json(choices.as_json())
            return
        out.print(f"Class {class_id}: {choices.describe()}")
