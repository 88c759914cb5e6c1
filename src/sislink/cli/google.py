"""`sislink google ...`: the Google Classroom connection (connect, authorise, status, disconnect:
thin, each calls `sislink.sync.google_connection`) and the local Classroom (`serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from sislink.classroom import Actor, ClassroomError
from sislink.cli.common import (
    AS_OPTION,
    EXIT_NEEDS_ATTENTION,
    JSON_OPTION,
    actor_for,
    fail,
    open_from_env,
    out,
    print_json,
)
from sislink.googleclassroom import DEFAULT_API_ENDPOINT
from sislink.googleclassroom.emulator.app import ClassroomConfig
from sislink.googleclassroom.emulator.server import (
    bind_socket,
    describe,
    open_classroom,
    serve_forever,
)
from sislink.sync import google_connection as service
from sislink.sync.errors import AuthorisationFailed, SyncError

google_app = typer.Typer(
    help="Google Classroom: connect a Google Workspace domain, or serve a local Classroom.",
    no_args_is_help=True,
)


sync_app = typer.Typer(
    help="Sync with Google Classroom: the roster into Classroom, Classroom's grades back.",
    no_args_is_help=True,
)
google_app.add_typer(sync_app, name="sync")


def register(app: typer.Typer) -> None:
    app.add_typer(google_app, name="google")


@google_app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8200, help="Port (0: any free port)."),
    seed: int = typer.Option(
        7, help="Seed of the district: the same people as `sislink sis serve --seed`."
    ),
    students: int = typer.Option(2000, help="Students in the district (as the built-in SIS)."),
    schools: int | None = typer.Option(None, help="Schools (default: one per ~1,000 students)."),
    db: Path | None = typer.Option(
        None, help="Keep the Classroom's state in this SQLite file (default: memory)."
    ),
    key_file: Path | None = typer.Option(
        None,
        help="Where to write the service account key (default: beside --db, or a new "
        "temporary folder).",
    ),
    latency_ms: float = typer.Option(0, min=0.0, help="Added latency per HTTP request, in ms."),
    jitter_ms: float = typer.Option(0, min=0.0, help="Random +/- jitter on the latency, in ms."),
    rate_429: float = typer.Option(
        0, min=0.0, max=1.0, help="Share of calls answered 429 RESOURCE_EXHAUSTED."
    ),
    rate_503: float = typer.Option(
        0, min=0.0, max=1.0, help="Share of calls answered 503 UNAVAILABLE."
    ),
    rate_500: float = typer.Option(0, min=0.0, max=1.0, help="Share of calls answered 500."),
    retry_after: int | None = typer.Option(
        None, min=0, help="Send Retry-After (seconds) with injected 429 and 503 answers."
    ),
    per_user_per_minute: int = typer.Option(
        1200, min=1, help="Quota: calls a minute per user (Google's: 1,200)."
    ),
    per_client_per_minute: int = typer.Option(
        3000, min=1, help="Quota: calls a minute per Cloud project (Google's: 3,000)."
    ),
    delegated_scope: list[str] | None = typer.Option(
        None,
        help="A scope the domain granted the service account (repeat; default: every "
        "Classroom scope). Asking for others is refused, as Google refuses it.",
    ),
    api_disabled: bool = typer.Option(
        False, help="Act as if the Classroom API were disabled in the Cloud project."
    ),
) -> None:
    """Serve a local Google Classroom. Prints api_url, key_file, admin_email, teacher_email and
    domain first, one per line, then its log.

    Reach it with Google's own client: build("classroom", "v1", credentials=...,
    client_options={"api_endpoint": API_URL}) with the service account key in key_file (its
    token_uri is this server). The key file holds a private key: keep it to yourself.
    """
    try:
        config = ClassroomConfig(
            seed=seed,
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            rate_429=rate_429,
            rate_503=rate_503,
            rate_500=rate_500,
            retry_after_s=retry_after,
            per_user_per_minute=per_user_per_minute,
            per_client_per_minute=per_client_per_minute,
            delegated_scopes=frozenset(delegated_scope) if delegated_scope else None,
            api_enabled=not api_disabled,
        )
    except ValueError as error:
        message = str(error)
        for name in ("rate_429", "rate_503", "rate_500"):
            message = message.replace(name, "--" + name.replace("_", "-"))
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2) from None
    if students < 1:
        typer.echo("error: --students must be at least 1.", err=True)
        raise typer.Exit(2)
    sock = bind_socket(host, port)
    origin = f"http://{host}:{sock.getsockname()[1]}"
    classroom, written = open_classroom(
        origin=origin,
        seed=seed,
        students=students,
        schools=schools,
        db_path=str(db) if db else None,
        key_file=key_file,
        config=config,
    )
    for line in describe(classroom, written, origin).lines():
        typer.echo(line)
    serve_forever(classroom, sock)


def _print(view: dict[str, Any] | None) -> None:
    if view is None:
        out.print(
            "sislink is not connected to Google Classroom (sislink google connect, then "
            "sislink google authorise)."
        )
        return
    table = Table(title="Google Classroom", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", overflow="fold")
    for label, key in (
        ("Domain", "domain"),
        ("Administrator", "admin_email"),
        ("Service account", "client_email"),
        ("Client id (for domain-wide delegation)", "client_id"),
        ("Cloud project", "project_id"),
        ("API endpoint", "api_endpoint"),
        ("Status", "status"),
        ("Connected", "connected_at"),
        ("Authorised", "authorised_at"),
    ):
        table.add_row(label, str(view.get(key) or "-"))
    for check in view.get("checks", []):
        table.add_row(("ok " if check["ok"] else "FAILED ") + check["name"], check["detail"])
    out.print(table)


@google_app.command("connect")
def connect(
    key_file: Path = typer.Option(
        ..., "--key-file", help="The service account's JSON key file (stored sealed)."
    ),
    admin_email: str = typer.Option(
        ..., "--admin-email", help="An administrator of the Google Workspace domain."
    ),
    domain: str | None = typer.Option(
        None, "--domain", help="The domain (default: the administrator's email's)."
    ),
    api_endpoint: str = typer.Option(
        DEFAULT_API_ENDPOINT, "--api-endpoint", help="The Classroom API (a local one to try it)."
    ),
    as_email: str | None = AS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Save the key file and the administrator's email (nothing is called yet)."""
    try:
        text = key_file.read_text("utf-8")
    except OSError as exc:
        fail(f"Cannot read {key_file}: {exc.strerror or exc}. Give the path of the JSON key file.")
    classroom = open_from_env()
    try:
        actor = actor_for(classroom, as_email)
        try:
            view = service.connect(
                classroom,
                actor,
                key_file_text=text,
                admin_email=admin_email,
                domain=domain,
                api_endpoint=api_endpoint,
            )
        except (SyncError, ClassroomError) as exc:
            fail(exc.message)
    finally:
        classroom.close()
    if as_json:
        print_json(view.as_dict())
        return
    out.print(
        f"Saved: {view.client_email} acting as {view.admin_email} in {view.domain}. "
        "Next: sislink google authorise."
    )


@google_app.command("authorise")
def authorise(as_email: str | None = AS_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Check the connection with Google for real: each step, or what to fix."""
    classroom = open_from_env()
    try:
        actor = actor_for(classroom, as_email)
        try:
            view = service.authorise(classroom, actor)
        except AuthorisationFailed as exc:
            if as_json:
                print_json({"authorised": False, "problem": exc.problem, "message": exc.message})
                raise typer.Exit(1) from None
            fail(exc.message)
        except (SyncError, ClassroomError) as exc:
            fail(exc.message)
    finally:
        classroom.close()
    if as_json:
        print_json({"authorised": True, **view.as_dict()})
        return
    _print(view.as_dict())


@google_app.command("status")
def status(as_json: bool = JSON_OPTION) -> None:
    """The Google Classroom connection (never the key)."""
    classroom = open_from_env()
    try:
        view = service.status(classroom)
    finally:
        classroom.close()
    if as_json:
        print_json(view.as_dict() if view else None)
        return
    _print(view.as_dict() if view else None)


@google_app.command("disconnect")
def disconnect(as_email: str | None = AS_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Disconnect: the key is erased; nothing in Google Classroom is removed."""
    classroom = open_from_env()
    try:
        actor = actor_for(classroom, as_email)
        try:
            view = service.disconnect(classroom, actor)
        except (SyncError, ClassroomError) as exc:
            fail(exc.message)
    finally:
        classroom.close()
    if as_json:
        print_json(view.as_dict())
        return
    out.print(f"Disconnected from {view.domain}: the key is erased; Classroom is unchanged.")


@sync_app.command("roster")
def sync_roster_command(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Read Classroom and say what would change; change nothing."
    ),
    active: bool = typer.Option(
        False,
        "--active",
        help="Create new courses ACTIVE (default: PROVISIONED, for the teacher to accept).",
    ),
    approve: int | None = typer.Option(
        None, "--approve", metavar="JOB", help="Approve the removals of a held sync, and sync."
    ),
    discard: int | None = typer.Option(
        None, "--discard", metavar="JOB", help="Discard the removals of a held sync."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Push the SIS roster into Google Classroom: one course per SIS class (found again by its
    domain alias), the primary teacher its owner, co-teachers and students added; only people
    sislink added are ever removed. Exit 3 when something needs attention (or is held); 1 when
    it failed or was cancelled."""
    import asyncio

    from sislink.jobs import google_roster as roster_job
    from sislink.sync.google_roster import sync_roster

    classroom = open_from_env()
    try:
        actor = Actor.system()
        try:
            if discard is not None:
                result: dict[str, Any] = {
                    "job_id": discard,
                    **roster_job.discard_hold(classroom, discard, actor),
                }
            elif dry_run:
                report = sync_roster(classroom, actor, dry_run=True, activate=active)
                result = {"job_id": None, **roster_job.google_roster_job_report(report)}
            else:
                if approve is not None:
                    outcome = asyncio.run(roster_job.approve_hold(classroom, approve, actor))
                else:
                    outcome = asyncio.run(
                        roster_job.run_google_roster_sync(classroom, actor, activate=active)
                    )
                if outcome.status.value == "failed":
                    fail(f"The roster sync (job {outcome.job_id}) failed: {outcome.error}")
                if outcome.status.value == "cancelled":  # stopped part way: not 0
                    fail(
                        f"The roster sync (job {outcome.job_id}) was cancelled before it "
                        "finished; what it changed in Google Classroom stays, and the next "
                        "sync finishes it."
                    )
                result = {
                    **outcome.report,
                    "job_id": outcome.job_id,
                    "job_status": str(outcome.status),
                }
        except (SyncError, ClassroomError) as exc:
            fail(exc.message)
    finally:
        classroom.close()
    if as_json:
        print_json(result)
    else:
        _print_roster_report(result)
    if result.get("attention") or result.get("status") == "on_hold":
        raise typer.Exit(EXIT_NEEDS_ATTENTION)


def _print_roster_report(report: dict[str, Any]) -> None:
    status = report.get("status")
    table = Table(title=f"Roster to Google Classroom ({status}, {report.get('domain', '')})")
    columns = ("created", "updated", "removed", "unchanged", "skipped", "held")
    table.add_column("")
    for column in columns:
        table.add_column(column, justify="right")
    for name, counts in (report.get("counts") or {}).items():
        table.add_row(name, *(str(counts.get(k, 0)) for k in columns))
    out.print(table)
    calls = report.get("calls") or {}
    if calls:
        out.print(
            f"Calls: {calls.get('reads', 0)} reads, {calls.get('writes', 0)} writes "
            f"in {calls.get('http_requests', 0)} HTTP requests."
        )
    for warning in report.get("warnings", []):
        out.print(f"Warning: {warning}", markup=False, highlight=False)
    lacking = report.get("categories_not_in_classroom") or []
    if lacking:
        out.print(
            f"{len(lacking)} course(s) lack the SIS's grade categories; Google's API cannot set "
            "them: the teacher adds them in the course's settings (see --json).",
            markup=False,
        )
    unread = report.get("grading_periods_not_read") or []
    if unread:
        out.print(
            f"{len(unread)} course(s) did not let sislink read their grading periods, so they "
            f"were not set (e.g. {unread[0]['title']}: {unread[0]['reason']})",
            markup=False,
            highlight=False,
        )
    if status == "on_hold":
        held = report.get("held") or []
        out.print(f"On hold (job {report.get('job_id')}): {report.get('hold_reason')}")
        for item in held[:20]:
            out.print(
                f"  would remove {item['email']} ({item['role']}) from {item['course']}",
                markup=False,
                highlight=False,
            )
        out.print(
            f"Approve: sislink google sync roster --approve {report.get('job_id')}; discard: "
            f"sislink google sync roster --discard {report.get('job_id')}."
        )


@sync_app.command("grades")
def sync_grades_command(
    class_: str | None = typer.Option(None, "--class", help="Class id or title."),
    all_classes: bool = typer.Option(
        False, "--all", help="Every class in Google Classroom that you may pull."
    ),
    export: bool = typer.Option(
        False,
        "--export",
        help="Then export to the SIS the classes with something not yet sent (marks export).",
    ),
    full: bool = typer.Option(
        False, "--full", help="Look at every courseWork and submission again, not only changes."
    ),
    as_email: str | None = AS_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Pull grades from Google Classroom: each linked course's published courseWork becomes
    coursework, its grades marks (returned grades; draft grades as draft marks), only what
    changed since the last pull. Exit 3 when something cannot go to the SIS (see the report)
    or a class was not pulled; 1 when the pull failed or was cancelled."""
    import asyncio

    from sislink.cli.classes import find_class
    from sislink.cli.common import EXIT_FAILED
    from sislink.jobs.google_grades import run_grade_pull

    if (class_ is None) == (not all_classes):
        fail("Give --class CLASS or --all.", code=2)
    classroom = open_from_env()
    try:
        actor = actor_for(classroom, as_email)
        class_ids = None if all_classes else [find_class(classroom, str(class_))]
        try:
            run = asyncio.run(
                run_grade_pull(classroom, actor, class_ids=class_ids, full=full, export=export)
            )
        except (SyncError, ClassroomError) as exc:
            fail(exc.message)
    finally:
        classroom.close()
    result = run.as_json()
    if as_json:
        print_json(result)
    else:
        _print_grades_report(result)
    if run.job.status.value == "failed":
        if not as_json:
            fail(f"The grade pull (job {run.job.job_id}) failed: {run.job.error}")
        raise typer.Exit(EXIT_FAILED)
    if run.job.status.value == "cancelled":  # stopped before its export was done: not 0
        if not as_json:
            fail(
                f"The grade pull (job {run.job.job_id}) was cancelled before it finished (someone "
                "cancelled it, or the SIS was disconnected); the marks it pulled are kept, and "
                "the next pull with --export sends them to the SIS."
            )
        raise typer.Exit(EXIT_FAILED)
    if result.get("attention"):
        raise typer.Exit(EXIT_NEEDS_ATTENTION)


def _print_grades_report(report: dict[str, Any]) -> None:
    table = Table(title=f"Grades from Google Classroom (job {report.get('job_id')})")
    for column in ("class", "outcome", "coursework", "marks", "not sent"):
        table.add_column(column)
    for course in report.get("courses", []):
        work, marks = course.get("coursework", {}), course.get("marks", {})
        table.add_row(
            str(course.get("class")),
            str(course.get("outcome")),
            ", ".join(f"{k} {v}" for k, v in work.items() if v) or "-",
            ", ".join(f"{k} {v}" for k, v in marks.items() if v) or "-",
            str(len(course.get("not_sent", []))),
        )
    out.print(table)
    out.print(
        f"Calls: {report.get('api_calls', 0)} to Google Classroom in "
        f"{report.get('calls', 0)} HTTP requests; {report.get('writes', 0)} writes to the SIS."
    )
    attention = report.get("attention") or {}
    for reason in attention.get("reasons", []):
        out.print(f"  {reason}", markup=False, highlight=False)
