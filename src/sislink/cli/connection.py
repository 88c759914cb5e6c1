"""`sislink partners|eligibility|connect|authorise|permissions|disconnect|status`: the SIS connection."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
