"""`sislink worker`: a Celery worker that runs sislink's jobs (SISLINK_BROKER_URL)."""

from __future__ import annotations

import typer

from sislink.cli.common import fail


def register(app: typer.Typer) -> None:
    """Adds the `worker` command."""

    @app.command("worker")
    def worker(
        concurrency: int = typer.Option(
            2, "--concurrency", min=1, help="Jobs this worker runs at once (worker processes)."
        ),
        pool: str = typer.Option(
            "prefork", "--pool", help="Celery pool: prefork (processes) or solo (one job)."
        ),
    ) -> None:
        """Run jobs handed over by `serve`, the CLI and the scheduler (Ctrl-C stops it).

        It also sends again the tasks the broker lost (a job still queued
        SISLINK_REDELIVERY_GRACE_SECONDS after its task was sent, with none waiting).

        Needs SISLINK_BROKER_URL (redis://HOST:6379/0 or amqp://USER:PASS@HOST:5672//) and the
        same SISLINK_DATABASE_URL and SISLINK_HOME (its key) as `serve`; see docs/deploy.md."""
        from sislink.jobs.runner import BROKER_VARIABLE, broker_url

        if broker_url() is None:
            fail(
                f"{BROKER_VARIABLE} is not set: set it to the broker `serve` uses "
                "(redis://... or amqp://...); without it jobs run in the process that asks."
            )
        if pool not in ("prefork", "solo"):
            fail(f"--pool is prefork or solo, not {pool!r}.")
        from sislink.jobs.celery_app import start_worker, visibility_s

        try:
            visibility_s()
        except ValueError as exc:  # a setting given wrong: its sentence, not a traceback
            fail(str(exc))
        start_worker(concurrency=concurrency, pool=pool)
