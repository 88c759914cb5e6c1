"""`sislink summary send`: the summary e-mail to administrators, on demand (`sislink serve`
sends the morning one by itself at SISLINK_SUMMARY_HOUR)."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime, timedelta

import typer

from sislink.cli.common import fail, open_from_env
from sislink.operations.summary import SmtpSettings, SummaryNotConfigured, send_summary

summary_app = typer.Typer(help="The summary e-mail to administrators.", no_args_is_help=True)


@summary_app.command("send")
def send(
    hours: float | None = typer.Option(
        None,
        "--hours",
        min=0.1,
        help="Tell what happened in the last HOURS hours (default: since the last summary, "
        "which this one then becomes; the last 24 hours when there was none).",
    ),
    always: bool = typer.Option(
        False, "--always", help="Send it even when nothing ran and nothing is on hold."
    ),
) -> None:
    """E-mail SISLINK_SUMMARY_TO, now, what ran since the last summary, what failed, what needs
    attention and what is on hold (SMTP: SISLINK_SMTP_HOST, _PORT, _USERNAME, _PASSWORD,
    _STARTTLS or _TLS, _CA_FILE; links to SISLINK_CONSOLE_URL). Nothing is sent when nothing happened, unless
    --always. `sislink serve` sends one by itself each morning (SISLINK_SUMMARY_HOUR)."""
    try:
        settings = SmtpSettings.from_env()
    except SummaryNotConfigured as exc:
        fail(str(exc))
    classroom = open_from_env()
    since = None if hours is None else datetime.now(UTC) - timedelta(hours=hours)
    try:
        sent = send_summary(classroom, settings, since=since, always=always)
    except (OSError, smtplib.SMTPException) as exc:
        fail(
            f"The summary could not be sent through {settings.host}:{settings.port} "
            f"({type(exc).__name__}: {exc}); check SISLINK_SMTP_* and that the server is up."
        )
    finally:
        classroom.close()
    if sent is None:
        typer.echo("Nothing happened since then: no e-mail sent (--always sends one anyway).")
    else:
        typer.echo(f"Sent '{sent['Subject']}' to {sent['To']}.")


def register(app: typer.Typer) -> None:
    """Adds the `summary` group."""
    app.add_typer(summary_app, name="summary")
