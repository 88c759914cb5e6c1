"""`sislink demo`: the whole flow on the embedded default (built-in SIS on loopback, SQLite)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Adds the `demo` command."""

    @app.command("demo")
    def demo(
        profile: str = typer.Option(
            "generic-1.2",
            "--profile",
            help="Which SIS the built-in one plays: generic-1.1, generic-1.2, infinite-campus, "
            "skyward, aspen, aeries.",
        ),
        students: int = typer.Option(300, help="Students in the demo district."),
        seed: int = typer.Option(7, help="Seed of the demo district."),
        classes: int = typer.Option(3, min=1, help="How many of the teacher's classes to use."),
        google: bool = typer.Option(
            True, "--google/--no-google", help="First check the SIS with Google's 1.2 sequence."
        ),
        home: Path | None = typer.Option(
            None, "--home", help="SISLINK_HOME for the demo classroom (default: a new temp dir)."
        ),
        serve: bool = typer.Option(
            False, "--serve", help="Then keep the web console running (Ctrl-C stops it)."
        ),
        port: int = typer.Option(8000, "--port", help="The console's port, with --serve."),
    ) -> None:
        """Run the whole flow against the built-in SIS: connect, authorise, import the roster,
        add coursework and marks, link, export; disconnect, reconnect, export again; then with
        the local Google Classroom: roster in, the teacher accepts and grades there, grades to
        the SIS, both disconnected and reconnected, again; show that the SIS's lineItem and
        result counts and Classroom's course count stay equal (exit status 1 if not)."""
        from sislink.demo import run_demo

        if home is not None:
            home.mkdir(parents=True, exist_ok=True)
        raise typer.Exit(
            run_demo(
                typer.echo,
                students=students,
                seed=seed,
                profile=profile,
                classes=classes,
                google=google,
                home=home,
                serve=serve,
                port=port,
            )
        )
