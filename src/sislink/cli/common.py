"""What every command shares: opening the classroom, choosing who acts, printing, failing plainly.

A command prints a table (Rich) or, with `--json`, one JSON document on stdout; a failure prints
one sentence on stderr that says what went wrong and what to do, and exits non-zero. Domain
errors never reach the user as a stack trace.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console

from sislink.classroom import Actor, Classroom, ClassroomError, open_classroom
from sislink.classroom.services.people import find_person
from sislink.settings import Settings

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# Exit statuses every command shares, so a cron job can tell them apart (README, "Exit status").
EXIT_FAILED = 1
EXIT_NEEDS_ATTENTION = 3  # finished, but skipped or rejected something: read the report

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON document instead of a table.")
AS_OPTION = typer.Option(
    None,
    "--as",
    help="Act as this person (their email, or their SIS identifier); their permissions apply.",
    metavar="EMAIL|SIS-ID",
)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one plain sentence on stderr and exit non-zero."""
    err.print(f"[bold red]Error:[/] {message}", markup=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def open_from_env() -> Classroom:
    """The classroom of this installation (SISLINK_HOME / SISLINK_DATABASE_URL)."""
    try:
        return open_classroom(Settings.from_env())
    except ClassroomError as exc:
        fail(str(exc))


@contextmanager
def classroom_errors() -> Iterator[None]:
    """Turn domain errors into a plain message and exit status 1."""
    try:
        yield
    except ClassroomError as exc:
        fail(str(exc))


def actor_for(classroom: Classroom, named: str | None) -> Actor:
    """Who a command acts as: the active person with this email or SIS identifier, or, without
    --as, the installation's operator (the command line runs on the server, so it acts with an
    administrator's rights)."""
    if named is None:
        return Actor.system()
    with classroom.session() as session:
        try:
            person = find_person(session, named, active_only=True)
        except ClassroomError as exc:
            fail(str(exc))
        return Actor.of(person)
