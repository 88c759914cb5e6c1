"""`sislink serve`: the console (web pages and REST API) and the job scheduler, in one process."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the `serve` command."""
