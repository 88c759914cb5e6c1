"""`sislink roster ...`: import the roster from the SIS (now, dry run, holds, history)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
