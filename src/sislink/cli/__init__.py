"""The `sislink` command line: one thin module per command group, assembled here.

Each module exposes `register(app)`; the commands call services and print, nothing more.
"""

from __future__ import annotations

import typer

from sislink.cli import (
    check_sis,
    classes,
    connection,
    coursework,
    demo,
    google,
    marks,
    roster,
    serve,
    sign_in,
    sis,
    summary,
    time_zone,
    users,
    worker,
)

app = typer.Typer(
    name="sislink",
    help="sislink: connect a classroom to the school's Student Information System (OneRoster).",
    no_args_is_help=True,
    add_completion=False,
)
for module in (
    sis,
    check_sis,
    connection,
    roster,
    classes,
    coursework,
    marks,
    users,
    serve,
    demo,
    google,
    summary,
    sign_in,
    time_zone,
    worker,
):
    module.register(app)


def main() -> None:
    from sislink.operations.logs import configure_logging

    try:
        configure_logging()  # SISLINK_LOG_FORMAT (json or text) and SISLINK_LOG_LEVEL
    except ValueError as exc:
        typer.echo(f"sislink: {exc}", err=True)
        raise SystemExit(1) from None
    app()
