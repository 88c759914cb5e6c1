"""`sislink time-zone [ZONE]`: the school's time zone, which every time in the console and the
morning summary's hour are in (the console's School page sets the same)."""

from __future__ import annotations

import typer

from sislink.classroom import Actor
from sislink.classroom.services import time_zone as service
from sislink.cli.common import JSON_OPTION, classroom_errors, open_from_env, print_json

SOURCE_WORDS = {
    service.FROM_SETTING: "set by an administrator",
    service.FROM_ENVIRONMENT: "from SISLINK_TIME_ZONE",
    service.FROM_SERVER: "the server's own zone",
}


def time_zone(
    zone: str | None = typer.Argument(
        None,
        help="The school's IANA time zone, such as America/Chicago (none: show the current one).",
        metavar="ZONE",
    ),
    default: bool = typer.Option(
        False,
        "--default",
        help="Forget the zone set here: SISLINK_TIME_ZONE, else the server's own zone, again.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show or set the school's time zone: every time the console shows is in it, the
    morning summary goes at SISLINK_SUMMARY_HOUR in it, and marks go to the SIS by its days (a
    due date's grading period, a mark's scoreDate, a due date typed as a day: noon in it), so
    changing it plans every class's next export again. Until one is set: SISLINK_TIME_ZONE,
    else the server's own zone (give every server and worker the same)."""
    classroom = open_from_env()
    try:
        with classroom_errors():
            if zone is not None or default:
                with classroom.transaction() as session:
                    # The command line runs on the server: it acts as the operator.
                    service.set_school_time_zone(session, Actor.system(), None if default else zone)
            with classroom.session() as session:
                found = service.school_time_zone(session)
    finally:
        classroom.close()
    if as_json:
        print_json({"time_zone": found.name, "source": found.source})
    else:
        typer.echo(f"The school's time zone is {found.name} ({SOURCE_WORDS[found.source]}).")
    problem = service.environment_problem()
    if problem is not None and found.source != service.FROM_SETTING:
        typer.echo(problem, err=True)


def register(app: typer.Typer) -> None:
    """Adds the `time-zone` command."""
    app.command("time-zone")(time_zone)
