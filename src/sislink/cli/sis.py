"""`sislink sis ...`: run the built-in OneRoster SIS (a sandbox for demos, tests, benchmarks)."""

from __future__ import annotations

import typer

sis_app = typer.Typer(help="The built-in OneRoster SIS: serve it, export its data.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(sis_app, name="sis")
