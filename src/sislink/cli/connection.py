"""`sislink partners|eligibility|connect|authorise|permissions|disconnect|status|audit`: the SIS
connection, as the administrator's page has it. Thin: each command calls `sislink.sync.connection`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.table import Table

from sislink.classroom import ClassroomError
from sislink.cli.common import (
    AS_OPTION,
    JSON_OPTION,
    actor_for,
    fail,
    open_from_env,
    out,
    print_json,
)
from sislink.sync import connection as service
from sislink.sync.connection_checks import DEFAULT_TIMEOUT_S
from sislink.sync.errors import SyncError
from sislink.sync.sis_client import partner_profile

CONFIRM_OPTION = typer.Option(
    False,
    "--confirm-different-sis",
    help="Go ahead although this is a different SIS (old class links are set aside).",
)


@contextmanager
def plain_failures() -> Iterator[None]:
    """Domain and sync errors become one sentence on stderr and exit status 1."""
    try:
        yield
    except (SyncError, ClassroomError) as exc:
        fail(exc.message)


def _when(value: Any) -> str:
    return "-" if value is None else str(value)


def _print_connection(data: dict[str, Any] | None, title: str) -> None:
    if data is None:
        out.print("sislink is not connected to a SIS (sislink connect, then sislink authorise).")
        return
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    rows = [
        ("SIS", f"{data['display_name']} ({data['partner']})"),
        ("OneRoster version", data["version"]),
        ("Host URL", data["host_url"]),
        ("Token URL", data["token_url"] or "(derived from the Host URL)"),
        ("Access key", data["access_key"]),
        ("Client authentication", data.get("client_auth") or "(OAuth 1.0a: none)"),
        ("Status", data["status"]),
        ("Secret stored", "yes (encrypted)" if data["secret_stored"] else "no (erased)"),
        ("SIS identity", data["sis_identity"] or "(known once authorised)"),
        ("Connected by", data["connected_by"]),
        ("Authorised", _when(data["authorised_at"])),
        ("Disconnected", _when(data["disconnected_at"])),
        (
            "Enable classwork and mark exporting",
            "on" if data["teacher_export_enabled"] else "off",
        ),
        ("Last import", _when(data["last_import_at"])),
        ("Last export", _when(data["last_export_at"])),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    out.print(table)


def _partnership_table(rows: list[dict[str, str]]) -> Table:
    table = Table(title="SIS partnerships")
    table.add_column("name")
    table.add_column("SIS")
    table.add_column("partnership")
    for row in rows:
        table.add_row(row["name"], row["display_name"], row["partnership"])
    return table


def partners(as_json: bool = JSON_OPTION) -> None:
    """The SIS catalogue, with each SIS's partnership status."""
    entries = service.partners()
    if as_json:
        print_json([entry.as_dict() for entry in entries])
        return
    table = Table(title="SIS catalogue")
    table.add_column("name", no_wrap=True)
    for column in ("SIS", "OneRoster", "auth", "partnership", "credentials"):
        table.add_column(column)
    for entry in entries:
        labels = entry.labels
        credentials = f"{labels['host_url']}, {labels['access_key']}, {labels['secret_code']}"
        if entry.token_url_needed:
            credentials += ", Token URL"
        if entry.extra_credentials:
            credentials += ", " + ", ".join(n.replace("_", " ") for n in entry.extra_credentials)
        table.add_row(
            entry.name,
            entry.display_name,
            entry.oneroster_version,
            entry.auth,
            entry.partnership,
            credentials,
        )
    out.print(table)


def eligibility(
    sis: str = typer.Option(..., "--sis", help="The SIS (see `sislink partners`)."),
    version: str | None = typer.Option(None, "--version", help="Your SIS's version, e.g. 6.2."),
    licence: str | None = typer.Option(
        None, "--licence", help="yes or no: does the district have the licence this SIS needs?"
    ),
    hosting: str | None = typer.Option(
        None, "--hosting", help="vendor (the SIS company hosts it) or self (the district does)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Whether sislink can work with your SIS, and why."""
    has_licence: bool | None = None
    if licence is not None:
        if licence.lower() not in ("yes", "no"):
            fail(f"--licence is yes or no, not {licence!r}.")
        has_licence = licence.lower() == "yes"
    if hosting is not None and hosting not in ("vendor", "self"):
        fail(f"--hosting is vendor or self, not {hosting!r}.")
    with plain_failures():
        report = service.eligibility(
            sis,
            version=version,
            has_licence=has_licence,
            hosting="vendor" if hosting == "vendor" else "self" if hosting == "self" else None,
        )
    if as_json:
        print_json(report.as_dict())
    else:
        verdict = "eligible" if report.eligible else "NOT eligible"
        out.print(f"{report.display_name}: {verdict}")
        for reason in report.reasons:
            out.print(f"  why not: {reason}")
        for warning in report.warnings:
            out.print(f"  note: {warning}")
        for question in report.to_confirm:
            out.print(f"  to confirm: {question}")
    if not report.eligible:
        raise typer.Exit(1)


def connect(
    sis: str = typer.Option(..., "--sis", help="The SIS (see `sislink partners`)."),
    host_url: str = typer.Option(..., "--host-url", help="The Host URL your SIS gives."),
    access_key: str = typer.Option(..., "--access-key", help="The access key (client id)."),
    token_url: str | None = typer.Option(
        None, "--token-url", help="Only where the SIS profile cannot derive it (generic 1.2)."
    ),
    secret_code_env: str | None = typer.Option(
        None,
        "--secret-code-env",
        help="Environment variable holding the secret code; without it, a hidden prompt asks.",
        metavar="VAR",
    ),
    vendor_key_env: str | None = typer.Option(
        None,
        "--vendor-key-env",
        help="Environment variable holding the vendor key (key:secret) for SIS that need one.",
        metavar="VAR",
    ),
    insecure: bool = typer.Option(
        False, "--insecure", help="Allow plain http to a host that is not this machine."
    ),
    client_auth: str | None = typer.Option(
        None,
        "--client-auth",
        help="How the OAuth 2 token request sends the access key and secret: basic (HTTP "
        "Basic) or post (in the form body); default: as the SIS's profile says.",
        metavar="basic|post",
    ),
    confirm: bool = CONFIRM_OPTION,
    as_email: str | None = AS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Save the SIS details (the secret encrypted); then run `sislink authorise`."""
    if client_auth is not None and client_auth not in ("basic", "post"):
        fail(f"--client-auth is basic or post, not {client_auth!r}.")
    with plain_failures():
        chosen = partner_profile(sis)
    secret = _secret_from(secret_code_env, chosen.labels.secret_code)
    extras: dict[str, str] = {}
    if vendor_key_env is not None:
        extras["vendor_key"] = _secret_from(vendor_key_env, "vendor key")
    elif "vendor_key" in chosen.extra_credentials:
        extras["vendor_key"] = typer.prompt("Vendor key (key:secret)", hide_input=True)
    classroom = open_from_env()
    try:
        actor = actor_for(classroom, as_email)
        with plain_failures():
            view = service.connect(
                classroom,
                actor,
                sis=sis,
                host_url=host_url,
                access_key=access_key,
                secret_code=secret,
                token_url=token_url,
                extra_credentials=extras,
                insecure=insecure,
                confirm_different_sis=confirm,
                client_auth=client_auth,
            )
    finally:
        classroom.close()
    if as_json:
        print_json(view.as_dict())
    else:
        out.print(
            f"Saved the connection to {view.display_name} at {view.host_url}. "
            "Run `sislink authorise` to check it with the SIS."
        )


def _secret_from(variable: str | None, label: str) -> str:
    if variable is None:
        value: str = typer.prompt(label, hide_input=True)
        return value
    value = os.environ.get(variable, "")
    if not value.strip():
        fail(
            f"The environment variable {variable} is empty or not set; put the {label.lower()} "
            f"in it (e.g. `read -s {variable}; export {variable}`)."
        )
    return value


def authorise(
    confirm: bool = CONFIRM_OPTION,
    timeout: float = typer.Option(
        DEFAULT_TIMEOUT_S, "--timeout", help="Seconds to wait for each answer from the SIS."
    ),
    as_email: str | None = AS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Check the saved connection with the SIS for real: "Authorised", or what to fix."""
    classroom = open_from_env()
    try:
        actor = actor_for(classroom, as_email)
        with plain_failures():
            report = asyncio.run(
                service.authorise(
                    classroom, actor, confirm_different_sis=confirm, timeout_s=timeout
                )
            )
    finally:
        classroom.close()
    if as_json:
        print_json(report.as_dict())
        return
    out.print(
        f"Authorised: {report.connection.display_name}, district "
        f"{report.district_name or report.district_sourced_id} "
        f"(SIS identity {report.connection.sis_identity})."
    )
    if report.links_resumed:
        out.print(f"{report.links_resumed} class links resume with the same SIS.")
    if report.links_set_aside:
        out.print(f"{report.links_set_aside} class links made with the old SIS were set aside.")


def permissions(
    teacher_export: str = typer.Option(
        ..., "--teacher-export", help="on or off: 'Enable classwork and mark exporting'."
    ),
    as_email: str | None = AS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Switch the teacher permission 'Enable classwork and mark exporting'."""
    if teacher_export not in ("on", "off"):
        fail(f"--teacher-export is on or off, not {teacher_export!r}.")
    classroom = open_from_env()
    try:
        actor = actor_for(classroom, as_email)
        with plain_failures():
            view = service.set_teacher_export(classroom, actor, teacher_export == "on")
    finally:
        classroom.close()
    if as_json:
        print_json(view.as_dict())
    else:
        out.print(f"Enable classwork and mark exporting: {teacher_export}.")


def disconnect(as_email: str | None = AS_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Disconnect: exports and imports stop; links and history stay; the secret is erased."""
    classroom = open_from_env()
    try:
        actor = actor_for(classroom, as_email)
        with plain_failures():
            view = service.disconnect(classroom, actor)
    finally:
        classroom.close()
    if as_json:
        print_json(view.as_dict())
    else:
        out.print(
            f"Disconnected from {view.display_name}. What was exported stays in the SIS; the "
            "stored secret was erased. Connect again to resume."
        )


def status(as_json: bool = JSON_OPTION) -> None:
    """The SIS connection: partner, version, authorised when, by whom, permission, activity."""
    classroom = open_from_env()
    try:
        with plain_failures():
            report = service.status(classroom)
    finally:
        classroom.close()
    if as_json:
        print_json(report.as_dict())
        return
    _print_connection(report.connection.as_dict() if report.connection else None, "SIS connection")
    out.print(_partnership_table(report.partners))


def audit(
    limit: int = typer.Option(50, "--limit", help="How many events, newest first."),
    as_email: str | None = AS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The SIS connection's audit trail: who did what, when."""
    classroom = open_from_env()
    try:
        actor = actor_for(classroom, as_email)
        with plain_failures():
            rows = service.audit_trail(classroom, actor, limit=limit)
    finally:
        classroom.close()
    if as_json:
        print_json(rows)
        return
    table = Table(title="SIS audit trail")
    for column in ("when", "who", "what", "details"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(str(row["at"]), row["who"], row["action"], str(row["details"] or ""))
    out.print(table)


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
    app.command("partners")(partners)
    app.command("eligibility")(eligibility)
    app.command("connect")(connect)
    app.command("authorise")(authorise)
    app.command("permissions")(permissions)
    app.command("disconnect")(disconnect)
    app.command("status")(status)
    app.command("audit")(audit)
