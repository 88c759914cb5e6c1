"""`sislink check-sis`: Google's conformance sequence against any OneRoster SIS, as a report card."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the `check-sis` command (built on the consumer)."""
