"""`sislink marks ...`: set, import, export marks and read the export report."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
