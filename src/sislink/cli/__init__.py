"""The `sislink` command line: one thin module per command group, assembled here."""

from __future__ import annotations

import typer

from sislink.cli import sis

app = typer.Typer(
    name="sislink",
    help="sislink: connect a classroom to the school's Student Information System (OneRoster).",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(sis.app, name="sis")


def main() -> None:
    app()
