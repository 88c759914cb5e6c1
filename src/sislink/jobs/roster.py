"""The roster import as a job: `run_roster_import` runs one now; `roster_import_job` is the registered work.

The work is a plain function of the Job row (params: connection id, full, shrink threshold),
so the scheduler, the CLI, the console and (later) a Celery worker all run the same thing.
A held import raises JobHeld: the runner records it on hold with its plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sislink.classroom import Actor, Classroom
from sislink.classroom.services.access import require_admin
from sislink.classroom.services.jobs import lock_key_for
from sislink.jobs.runner import (
    JobCancelled,
    JobContext,
    JobHeld,
    JobOutcome,
    attention,
    register_job_kind,
    run_job,
)
from sislink.oneroster.consumer import OneRosterClient
from sislink.sync.roster_holds import ROSTER_IMPORT
from sislink.sync.roster_import import (
    DEFAULT_SHRINK_THRESHOLD,
    Progress,
    RosterImportCancelled,
    RosterReport,
    import_roster,
)
from sislink.sync.sis_client import authorised_connection, open_sis_client


def roster_job_report(report: RosterReport) -> dict[str, Any]:
    """The import's report as its job (or a dry run in the CLI or console) gives it: records
    it rejected and rows it could not write make it `needs_attention`."""
    return report.to_dict() | attention(*report.not_applied())


async def roster_import_job(
    context: JobContext,
    *,
    client: OneRosterClient | None = None,
    progress: Progress | None = None,
) -> Mapping[str, Any]:
    """Import the roster for the job's connection; `client` and `progress` are for callers in
    this process (a given client, a progress bar); a worker uses the stored connection."""
    params = context.params
    totals: dict[str, int] = {}

    def record_progress(entity: str, done: int, total: int | None) -> None:
        totals[entity] = done
        context.progress(
            sum(totals.values()), None, f"{entity}: {done}" + (f" of {total}" if total else "")
        )
        if progress is not None:
            progress(entity, done, total)

    async def run(sis: OneRosterClient) -> Mapping[str, Any]:
        try:
            report = await import_roster(
                context.classroom,
                sis,
                connection_id=int(params["connection_id"]),
                full=bool(params.get("full")),
                shrink_threshold=float(params.get("shrink_threshold", DEFAULT_SHRINK_THRESHOLD)),
                progress=record_progress,
                should_stop=context.cancelled,
                before_commit=context.renew_lease,
            )
        except RosterImportCancelled as stopped:
            raise JobCancelled(stopped.report.to_dict()) from None
        if report.status == "on_hold":
            raise JobHeld(report.hold_reason or "on hold", roster_job_report(report))
        return roster_job_report(report)

    if client is not None:
        return await run(client)
    async with open_sis_client(context.classroom) as sis:
        return await run(sis)


register_job_kind(ROSTER_IMPORT, roster_import_job)


async def run_roster_import(
    classroom: Classroom,
    actor: Actor,
    *,
    full: bool = False,
    shrink_threshold: float = DEFAULT_SHRINK_THRESHOLD,
    client: OneRosterClient | None = None,
    progress: Progress | None = None,
) -> JobOutcome:
    """Run a roster import job now for the current authorised connection.

    Raises NotConnected without one, and Conflict when another import of it is running or
    on hold. The outcome's report is the RosterReport as a dict.
    """
    require_admin(actor, "import the roster from the SIS")
    connection = authorised_connection(classroom)

    async def work(context: JobContext) -> Mapping[str, Any]:
        return await roster_import_job(context, client=client, progress=progress)

    return await run_job(
        classroom,
        kind=ROSTER_IMPORT,
        actor=actor,
        work=work,
        lock_key=lock_key_for(connection_id=connection.id),
        connection_id=connection.id,
        params={"connection_id": connection.id, "full": full, "shrink_threshold": shrink_threshold},
    )
