"""`sislink coursework ...`: add and list coursework."""

from __future__ import annotations

import asyncio
from datetime import date, datetime

import typer
from rich.table import Table
from sqlalchemy import select

from sislink.classroom.models import Category
from sislink.classroom.services import coursework as coursework_service
from sislink.classroom.services import time_zone
from sislink.classroom.services.access import teaches
from sislink.cli.classes import find_class, sync_errors
from sislink.cli.common import (
    AS_OPTION,
    JSON_OPTION,
    actor_for,
    fail,
    open_from_env,
    out,
    print_json,
)
from sislink.sync import class_link


def parse_due(text: str) -> date | datetime:
    """A due date: `2026-10-01`, a day (kept as noon of it in the school's time zone,
    `time_zone.due_at_noon`, once the database is open) or a date-time with a zone
    (`2026-10-01T09:00Z`)."""
    cleaned = text.strip()
    try:
        if len(cleaned) == 10:
            return date.fromisoformat(cleaned)
        moment = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        fail(f"The due date {text!r} is not a date; write it as 2026-10-01 or 2026-10-01T09:00Z.")
    if moment.tzinfo is None:
        fail(f"The due date {text!r} needs a time zone, e.g. 2026-10-01T09:00Z.")
    return moment


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
    group = typer.Typer(help="Coursework of a class.", no_args_is_help=True)
    app.add_typer(group, name="coursework")

    @group.command("add")
    def add(
        class_: str = typer.Argument(..., metavar="CLASS", help="Class id or title."),
        title: str = typer.Option(..., "--title"),
        points: str = typer.Option(..., "--points", help="Max points."),
        due: str = typer.Option(
            ...,
            "--due",
            help="Due date: a day, e.g. 2026-10-01 (noon in the school's time zone), or a date-time with a zone, 2026-10-01T09:00Z.",
        ),
        category: str | None = typer.Option(None, "--category", help="Category title."),
        description: str = typer.Option("", "--description"),
        draft: bool = typer.Option(False, "--draft", help="Keep it a draft (not exported)."),
        as_email: str | None = AS_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Add published coursework to a class."""
        classroom = open_from_env()
        actor = actor_for(classroom, as_email)
        class_id = find_class(classroom, class_)
        due_given = parse_due(due)
        if category:
            # The SIS's categories, read again if they are stale, so that the one named is there.
            asyncio.run(class_link.fresh_facts_before_coursework(classroom, class_id))
        with sync_errors(), classroom.transaction() as session:
            due_date = (
                due_given
                if isinstance(due_given, datetime)
                else time_zone.due_at_noon(session, due_given)
            )
            category_id = None
            if category:
                found = session.scalars(select(Category).where(Category.class_id == class_id)).all()
                match = [c for c in found if c.title.casefold() == category.strip().casefold()]
                if not match:
                    offered = ", ".join(c.title for c in found) or "none yet (link the class)"
                    fail(f"The class has no category {category!r}; its categories: {offered}.")
                category_id = match[0].id
            work = coursework_service.create_coursework(
                session,
                actor,
                class_id,
                title=title,
                description=description,
                max_points=points,
                due_date=due_date,
                category_id=category_id,
                publish=not draft,
            )
            made = {
                "id": work.id,
                "class_id": class_id,
                "title": work.title,
                "points": work.max_points,
                "due": work.due_date.isoformat() if work.due_date else None,
                "category": category,
                "state": work.state,
            }
        if as_json:
            print_json(made)
            return
        out.print(f"Coursework {made['id']} added: {made['title']} ({made['points']} points).")

    @group.command("list")
    def list_coursework(
        class_: str = typer.Argument(..., metavar="CLASS", help="Class id or title."),
        as_email: str | None = AS_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        """List a class's coursework."""
        classroom = open_from_env()
        class_id = find_class(classroom, class_)
        actor = actor_for(classroom, as_email)
        with classroom.session() as session:
            if not actor.is_admin and (
                actor.person_id is None or not teaches(session, actor.person_id, class_id)
            ):
                fail("You do not teach this class, so you cannot see its coursework.")
            rows: list[dict[str, str]] = [
                {
                    "id": str(w.id),
                    "title": w.title,
                    "points": "" if w.max_points is None else f"{w.max_points:g}",
                    "due": w.due_date.isoformat() if w.due_date else "",
                    "state": str(w.state),
                }
                for w in coursework_service.coursework_of_class(session, class_id)
            ]
        if as_json:
            print_json(rows)
            return
        table = Table("Id", "Title", "Points", "Due", "State")
        for r in rows:
            table.add_row(r["id"], r["title"], r["points"], r["due"], r["state"])
        out.print(table)
