"""`sislink sis ...`: run the built-in OneRoster SIS (a sandbox for demos, tests, benchmarks)."""

from __future__ import annotations

import typer

app = typer.Typer(help="The built-in OneRoster SIS: serve it, export its data.", no_args_is_help=True)
