"""`sislink roster ...`: import the roster from the SIS (now, dry run), holds, approve/discard, history."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sislink.classroom import Actor
from sislink.cli.common import (
    EXIT_NEEDS_ATTENTION,
    JSON_OPTION,
    classroom_errors,
    err,
    fail,
    open_from_env,
    out,
    print_json,
)
from sislink.jobs.roster import roster_job_report, run_roster_import
from sislink.jobs.runner import needs_attention
from sislink.oneroster.consumer import OneRosterError
from sislink.sync import roster_holds
from sislink.sync.errors import SyncError
from sislink.sync.roster_import import import_roster
from sislink.sync.roster_report import ENTITIES
from sislink.sync.sis_client import authorised_connection, open_sis_client

roster_app = typer.Typer(help="Import the roster (schools, classes, people) from the SIS.")


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
    app.add_typer(roster_app, name="roster")


@contextmanager
def _errors() -> Iterator[None]:
    with classroom_errors():
        try:
            yield
        except (SyncError, OneRosterError) as exc:
            fail(str(exc))


@contextmanager
def _bars(enabled: bool) -> Iterator[Any]:
    """A Rich progress bar per entity (on stderr, so --json output stays clean)."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("{task.description:>12}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=err, transient=False) as bars:
        tasks: dict[str, Any] = {}

        def update(entity: str, done: int, total: int | None) -> None:
            if entity not in tasks:
                tasks[entity] = bars.add_task(entity, total=total)
            bars.update(tasks[entity], completed=done, total=total or done)

        yield update


@roster_app.command("import")
def import_command(
    full: bool = typer.Option(
        False, "--full", help="Read everything, and deactivate what the SIS no longer has."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan; change nothing."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import the roster now (a delta of changes since the last import, unless --full)."""
    classroom = open_from_env()
    with _errors(), _bars(not as_json) as progress:
        if dry_run:
            connection = authorised_connection(classroom)

            async def plan() -> dict[str, Any]:
                async with open_sis_client(classroom) as client:
                    report = await import_roster(
                        classroom,
                        client,
                        connection_id=connection.id,
                        full=full,
                        dry_run=True,
                        progress=progress,
                    )
                # What the import would reject, as the job would say it.
                return {"job_id": None, "status": "dry_run", **roster_job_report(report)}

            result = asyncio.run(plan())
        else:
            outcome = asyncio.run(
                run_roster_import(classroom, Actor.system(), full=full, progress=progress)
            )
            if outcome.error and outcome.status.value == "failed":
                fail(f"The roster import (job {outcome.job_id}) failed: {outcome.error}")
            if outcome.status.value == "cancelled":
                # Stopped part way (cancelled in the console, or the SIS disconnected): not
                # what was asked, so not 0; the import is all or nothing.
                fail(
                    f"The roster import (job {outcome.job_id}) was cancelled before it finished "
                    "(someone cancelled it, or the SIS was disconnected); nothing of it was "
                    "applied. Run it again to import the roster."
                )
            result = {**outcome.report, "job_id": outcome.job_id, "job_status": str(outcome.status)}
    if as_json:
        print_json(_public(result))
    else:
        _print_report(result)
    if needs_attention(result):
        # Finished, but records were rejected or skipped: a cron job must notice.
        raise typer.Exit(EXIT_NEEDS_ATTENTION)


def _public(report: dict[str, Any]) -> dict[str, Any]:
    # The complete deactivation lists can be long; `roster holds --json` shows them.
    return {key: value for key, value in report.items() if key != "deactivations"}


def _print_report(report: dict[str, Any]) -> None:
    table = Table(title=f"Roster import ({report.get('mode')}, {report.get('status')})")
    for column in ("entity", "created", "updated", "deactivated", "unchanged", "skipped"):
        table.add_column(column, justify="left" if column == "entity" else "right")
    for entity in ENTITIES:
        counts = report.get("counts", {}).get(entity, {})
        table.add_row(
            entity,
            *(
                str(counts.get(k, 0))
                for k in ("created", "updated", "deactivated", "unchanged", "skipped")
            ),
        )
    out.print(table)
    for warning in report.get("warnings", []):
        out.print(
            f"[yellow]Warning:[/] {warning['message']} (e.g. {', '.join(warning['examples'][:3])})"
        )
    left = report.get("classes_left_unlinked", [])
    for unlinked in left:
        out.print(f"Not linked: {unlinked['message']}.", markup=False, highlight=False)
    unlisted = report.get("classes_left_unlinked_count", len(left)) - len(left)
    if unlisted > 0:
        out.print(f"Not linked: {unlisted} more imported classes (see --json).")
    rejected = report.get("rejected", [])
    for record in rejected[:20]:
        out.print(
            f"Rejected: {record['entity']} {record['sourced_id']!r}: {record['reason']} "
            "(kept as it was)",
            markup=False,
            highlight=False,
        )
    if report.get("rejected_count", 0) > min(len(rejected), 20):
        out.print(
            f"Rejected: {report['rejected_count'] - min(len(rejected), 20)} more (see --json)."
        )
    needing = report.get("attention") or {}
    if needing:
        out.print(
            f"[bold yellow]Needs attention:[/] {needing['count']} records were not applied; "
            "correct them in the SIS and import again."
        )
    if report.get("status") == "on_hold":
        out.print(f"[bold]On hold (job {report.get('job_id')}):[/] {report.get('hold_reason')}")


@roster_app.command("holds")
def holds_command(as_json: bool = JSON_OPTION) -> None:
    """Imports waiting for an administrator's approval."""
    classroom = open_from_env()
    with _errors():
        found = roster_holds.holds(classroom)
    if as_json:
        print_json(found)
        return
    if not found:
        out.print("No roster import is on hold.")
    for job in found:
        report = job["report"]
        out.print(f"Job {job['job_id']} ({report.get('mode')}): {report.get('hold_reason')}")
        for entity, ids in report.get("deactivations", {}).items():
            out.print(f"  {entity}: {len(ids)} to deactivate, e.g. {', '.join(ids[:5])}")


@roster_app.command("approve")
def approve_command(
    job: int = typer.Argument(..., help="The held job's number."), as_json: bool = JSON_OPTION
) -> None:
    """Apply a held import (its deactivations)."""
    classroom = open_from_env()
    with _errors():
        report = roster_holds.approve_hold(classroom, job, Actor.system())
    if as_json:
        print_json({"job_id": job, "status": "succeeded", **_public(report)})
        return
    out.print(f"Roster import {job} approved and applied.")
    _print_report(report)


@roster_app.command("discard")
def discard_command(
    job: int = typer.Argument(..., help="The held job's number."), as_json: bool = JSON_OPTION
) -> None:
    """Drop a held import: nothing it would deactivate is deactivated."""
    classroom = open_from_env()
    with _errors():
        roster_holds.discard_hold(classroom, job, Actor.system())
    if as_json:
        print_json({"job_id": job, "status": "cancelled", "discarded": True})
        return
    out.print(f"Roster import {job} discarded; nothing was deactivated.")


@roster_app.command("history")
def history_command(
    limit: int = typer.Option(20, "--limit", help="How many imports to show."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The latest roster imports, newest first."""
    classroom = open_from_env()
    with _errors():
        jobs = roster_holds.history(classroom, limit=limit)
    if as_json:
        print_json([{**job, "report": _public(job["report"])} for job in jobs])
        return
    table = Table(title="Roster imports")
    for column in ("job", "status", "mode", "started", "created", "updated", "deactivated"):
        table.add_column(column)
    for job in jobs:
        counts = job["report"].get("counts", {})
        total = {
            k: sum(c.get(k, 0) for c in counts.values())
            for k in ("created", "updated", "deactivated")
        }
        table.add_row(
            str(job["job_id"]),
            job["status"],
            str(job["report"].get("mode", "")),
            str(job["started_at"] or ""),
            *(str(total[k]) for k in ("created", "updated", "deactivated")),
        )
    out.print(table)
