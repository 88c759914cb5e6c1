"""`sislink demo`: the whole flow on the embedded default (built-in SIS on loopback, SQLite)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the `demo` command."""
