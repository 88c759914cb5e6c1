"""`sislink check-sis`: Google's conformance sequence against any OneRoster SIS, as a report card."""

from __future__ import annotations

import asyncio
import json
import os

import typer
from rich.console import Console
from rich.table import Table

from sislink.oneroster.consumer import SIS_QUIRKS, ConfigurationError, run_conformance
from sislink.oneroster.consumer.conformance import ConformanceReport, settings_for_check

STATUS_STYLE = {"PASS": "green", "FAIL": "bold red", "NOT RUN": "yellow"}


def check_sis(
    base_url: str = typer.Option(..., help="The OneRoster root, as `sis serve` prints it."),
    client_id: str = typer.Option(..., help="Client id (OAuth 2) or consumer key (OAuth 1.0a)."),
    client_secret_env: str = typer.Option(
        ..., help="Name of the environment variable that holds the secret (never the secret)."
    ),
    teacher_email: str = typer.Option(..., help="A teacher with classes and students."),
    token_url: str | None = typer.Option(None, help="OAuth 2 token URL (omit for OAuth 1.0a)."),
    version: str | None = typer.Option(None, help="1.1 or 1.2 (default: the profile's, else 1.2)."),
    profile: str | None = typer.Option(
        None, help=f"SIS profile, for its quirks: {', '.join(SIS_QUIRKS)}."
    ),
    client_auth: str | None = typer.Option(
        None,
        "--client-auth",
        help="How the OAuth 2 token request sends the client id and secret: basic (HTTP Basic) "
        "or post (in the form body); default: the profile's, else basic.",
        metavar="basic|post",
    ),
    vendor_key_env: str | None = typer.Option(
        None, help="Environment variable holding key:secret for a vendor header (Infinite Campus)."
    ),
    write_test: bool = typer.Option(
        False, "--write-test", help="Also write, read back and delete a test lineItem and result."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check what a SIS supports, call by call, before connecting a classroom to it."""
    console = Console(width=max(120, Console().width))
    secret = os.environ.get(client_secret_env)
    if not secret:
        console.print(
            f"[red]The environment variable {client_secret_env} is empty or not set:[/] "
            "put the client secret in it, e.g. `read -s SIS_SECRET; export SIS_SECRET`."
        )
        raise typer.Exit(2)
    vendor_key = os.environ.get(vendor_key_env) if vendor_key_env else None
    try:
        settings = settings_for_check(
            base_url=base_url,
            token_url=token_url,
            client_id=client_id,
            client_secret=secret,
            version=version,
            profile=profile,
            vendor_key=vendor_key,
            client_auth=client_auth,
        )
    except (ConfigurationError, ValueError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    report = asyncio.run(run_conformance(settings, teacher_email, write_test=write_test))
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        console.print(_report_card(report))
    raise typer.Exit(0 if report.passed else 1)


def _report_card(report: ConformanceReport) -> Table:
    table = Table(title=f"OneRoster {report.version} at {report.base_url}")
    table.add_column("check", no_wrap=True)
    table.add_column("result")
    table.add_column("details", overflow="fold")
    table.add_column("latency ms", justify="right")
    for check in report.checks:
        latency = "" if check.latency_ms is None else f"{check.latency_ms:.0f}"
        style = STATUS_STYLE[check.status]
        details = check.details + (f"\n[yellow]note:[/] {check.note}" if check.note else "")
        table.add_row(check.name, f"[{style}]{check.status}[/]", details, latency)
    verdict = "all checks passed" if report.passed else "some checks FAILED or did not run"
    table.caption = verdict
    return table


def register(app: typer.Typer) -> None:
    """Adds the `check-sis` command (built on the consumer)."""
    app.command("check-sis")(check_sis)
