"""`sislink serve`: the console (web pages and REST API) and the job scheduler, in one process."""

from __future__ import annotations

import typer

from sislink.cli.common import open_from_env


def register(app: typer.Typer) -> None:
    """Adds the `serve` command."""

    @app.command("serve")
    def serve(
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8000, "--port", help="Port to listen on."),
        scheduler: bool = typer.Option(
            True, "--scheduler/--no-scheduler", help="Run scheduled roster imports here too."
        ),
    ) -> None:
        """Serve the console at http://HOST:PORT (Ctrl-C stops it).

        Jobs run in this process; with SISLINK_BROKER_URL set they go to `sislink worker`
        processes instead (docs/deploy.md). However many serve processes run, one scheduler
        fires each scheduled import."""
        from sislink.console.app import serve_console

        classroom = open_from_env()
        typer.echo(f"sislink console at http://{host}:{port}/ (Ctrl-C stops it)", err=True)
        try:
            serve_console(classroom, host=host, port=port, scheduler=scheduler)
        finally:
            classroom.close()
