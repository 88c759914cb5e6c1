"""`sislink demo`: the whole flow on the embedded default (built-in SIS on loopback, SQLite)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Adds the `demo` command."""

    @app.command("demo")
    def demo(
        students: int = typer.Option(200, help="Students in the demo district."),
        seed: int = typer.Option(7, help="Seed of the demo district."),
    ) -> None:
        """Start the built-in SIS, print its URLs and credentials, run Google's 1.2 sequence."""
        from sislink.demo import run_demo

        raise typer.Exit(run_demo(typer.echo, students=students, seed=seed))
