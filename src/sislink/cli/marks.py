"""`sislink marks ...`: set, import, export marks and read the export report."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from sislink.classroom import Actor, Classroom, ClassroomError
from sislink.classroom.models import Coursework, JobStatus
from sislink.classroom.services import gradebook_sheet
from sislink.classroom.services import marks as mark_service
from sislink.classroom.services.access import class_for_editing
from sislink.classroom.services.people import find_student_of_class
from sislink.cli.classes import find_class, sync_errors
from sislink.cli.common import (
    AS_OPTION,
    EXIT_FAILED,
    EXIT_NEEDS_ATTENTION,
    JSON_OPTION,
    actor_for,
    fail,
    open_from_env,
    out,
    print_json,
)
from sislink.jobs.mark_export import ExportRun, run_all_exports, run_class_export
from sislink.sync.export_report import ExportOutcome, report_history, stored_report_json


def read_sheet_file(path: Path) -> gradebook_sheet.Sheet:
    """The sheet in `path` (UTF-8, with or without a byte order mark; separated by commas,
    semicolons or tabs). One that cannot be read is refused whole, before anything is set."""
    try:
        # newline="": a line break inside a quoted cell is kept as the sheet has it.
        with path.open(encoding="utf-8-sig", newline="") as sheet:
            text = sheet.read()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"Cannot read {path}: {exc}. Save the sheet as CSV (UTF-8) and try again.")
    try:
        return gradebook_sheet.read_sheet(text)
    except ClassroomError as exc:
        fail(f"{path}: {exc}")


def import_gradebook(
    classroom: Classroom, actor: Actor, class_id: int, path: Path, *, returned: bool = True
) -> gradebook_sheet.SheetImport:
    """Read a gradebook sheet (a row per student by email or SIS identifier, a column per
    coursework title) and set every mark it can; each bad cell, row or column is reported."""
    sheet = read_sheet_file(path)
    with classroom.transaction() as session:
        return gradebook_sheet.import_sheet(session, actor, class_id, sheet, returned=returned)


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
    group = typer.Typer(help="Marks: set, import, export to the SIS, report.", no_args_is_help=True)
    app.add_typer(group, name="marks")

    @group.command("set")
    def set_mark(
        class_: str = typer.Argument(..., metavar="CLASS", help="Class id or title."),
        coursework: int = typer.Option(..., "--coursework", help="Coursework id."),
        student: str = typer.Option(
            ..., "--student", help="The student's email, or their SIS identifier."
        ),
        score: str | None = typer.Option(None, "--score"),
        excused: bool = typer.Option(False, "--excused"),
        missing: bool = typer.Option(False, "--missing"),
        comment: str | None = typer.Option(None, "--comment"),
        draft: bool = typer.Option(
            False, "--draft", help="Make it a draft (not returned, not exported), even if returned."
        ),
        as_email: str | None = AS_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Set one student's mark: a score, excused or missing (each clears the other two);
        returned to the student unless --draft."""
        if sum((score is not None, excused, missing)) != 1:
            fail("Give exactly one of --score N, --excused or --missing.")
        classroom = open_from_env()
        actor = actor_for(classroom, as_email)
        class_id = find_class(classroom, class_)
        with sync_errors(), classroom.transaction() as session:
            # Access first, then only the class's students: a teacher cannot look anyone up.
            class_for_editing(session, actor, class_id)
            person = find_student_of_class(session, class_id, student)
            work = session.get(Coursework, coursework)
            if work is None or work.class_id != class_id:
                fail(f"Coursework {coursework} is not in class {class_id}.")
            values: dict[str, Any] = (
                {"score": score}
                if score is not None
                else {"excused": True}
                if excused
                else {"missing": True}
            )
            # The service clears the other two (a missing mark keeps no earlier score), and
            # --draft takes back a mark that was returned, so that it is not exported.
            mark = mark_service.set_mark(
                session, actor, coursework, person.id, comment=comment, draft=draft, **values
            )
            if not draft:
                mark_service.return_marks(session, actor, coursework, [person.id])
            shown = {
                "coursework_id": coursework,
                "student": person.email or person.sis_identifier or person.name,
                "score": mark.score,
                "excused": mark.excused,
                "missing": mark.missing,
                "state": mark.state,
            }
        if as_json:
            print_json(shown)
            return
        out.print(f"Mark set for {shown['student']} on coursework {coursework}.")

    @group.command("import")
    def import_marks(
        class_: str = typer.Argument(..., metavar="CLASS", help="Class id or title."),
        file: Path = typer.Argument(..., metavar="FILE.csv"),
        draft: bool = typer.Option(False, "--draft", help="Import as drafts (not returned)."),
        as_email: str | None = AS_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Import a gradebook sheet: a row per student (email or SIS identifier), a column per
        coursework title; comma-, semicolon- or tab-separated (with a decimal comma in the
        latter two). Every cell it can is set; each one refused is listed, and the exit status
        is then 3."""
        classroom = open_from_env()
        actor = actor_for(classroom, as_email)
        class_id = find_class(classroom, class_)
        with sync_errors():
            done = import_gradebook(classroom, actor, class_id, file, returned=not draft)
        if as_json:
            print_json(done.as_json())
        else:
            out.print(f"{done.imported} marks imported.")
            for problem in done.problems:
                out.print(f"  not imported: {problem}")
        if done.problems:
            raise typer.Exit(EXIT_NEEDS_ATTENTION)

    @group.command("export")
    def export(
        class_: str | None = typer.Option(None, "--class", help="Class id or title."),
        all_classes: bool = typer.Option(False, "--all", help="Every linked class you may."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be sent."),
        as_email: str | None = AS_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Export coursework and marks to the SIS (only what changed since the last export).

        Exit status: 0 all sent; 3 finished, but items were skipped for a reason to act on
        (listed); 1 a class failed, was refused or stopped."""
        if (class_ is None) == (not all_classes):
            fail("Give --class CLASS or --all.")
        classroom = open_from_env()
        actor = actor_for(classroom, as_email)
        with sync_errors():
            if all_classes:
                run: ExportRun = asyncio.run(run_all_exports(classroom, actor, dry_run=dry_run))
            else:
                assert class_ is not None
                class_id = find_class(classroom, class_)
                run = asyncio.run(run_class_export(classroom, actor, class_id, dry_run=dry_run))
        if as_json:
            print_json(run.as_json())
        else:
            if run.job.error:
                out.print(f"The export stopped: {run.job.error}")
            for report in run.class_reports():
                _print_class_report(report)
            for refused in run.refused_classes:  # on the workers: no report of theirs is kept
                out.print(refused, markup=False, highlight=False)
        # Non-zero whenever something was not exported as asked, so scripts notice: 1 when a
        # class failed, was refused or stopped; 3 when every class finished but items were
        # skipped for a reason someone must act on (README, "Exit status"). The same whether
        # this process ran the export or the workers did (their reports are the stored ones).
        finished = {
            ExportOutcome.SUCCEEDED.value,
            ExportOutcome.NEEDS_ATTENTION.value,
            ExportOutcome.DRY_RUN.value,
        }
        if (
            run.job.error
            or run.refused_classes
            or any(r.get("outcome") not in finished for r in run.class_reports())
        ):
            raise typer.Exit(EXIT_FAILED)
        if run.job.status == JobStatus.NEEDS_ATTENTION:
            raise typer.Exit(EXIT_NEEDS_ATTENTION)

    @group.command("report")
    def report(
        class_: str = typer.Argument(..., metavar="CLASS", help="Class id or title."),
        history: int = typer.Option(1, "--history", help="How many past exports to show."),
        as_email: str | None = AS_OPTION,
        as_json: bool = JSON_OPTION,
    ) -> None:
        """Troubleshoot mark export: the last export(s), per coursework and per student."""
        classroom = open_from_env()
        actor = actor_for(classroom, as_email)
        class_id = find_class(classroom, class_)
        with sync_errors(), classroom.session() as session:
            class_for_editing(session, actor, class_id)
            rows = [stored_report_json(r) for r in report_history(session, class_id, limit=history)]
        if as_json:
            print_json(rows)
            return
        if not rows:
            out.print("This class has not been exported yet.")
            return
        for row in rows:
            out.print(
                f"Export {row['report_id']} at {row['started_at']}: {row['outcome']}, "
                f"{row['writes']} writes"
            )
            table = Table("Coursework", "Student", "Outcome", "Why / the SIS said", "At")
            for item in row["items"]:
                why = item["reason"]
                if item.get("status_code"):
                    why = f"HTTP {item['status_code']}: {item.get('sis_said') or why}"
                table.add_row(
                    item["coursework"], item.get("student") or "", item["outcome"], why, item["at"]
                )
            out.print(table)


def _print_class_report(report: dict[str, Any]) -> None:
    """One class's export in words: its outcome and counts, why it was not done, the items
    skipped or refused (a report as `ExportReport.as_json` or as kept in the class's history)."""
    counts = report.get("counts") or {}
    out.print(
        f"{report.get('class')}: {report.get('outcome')}, {report.get('writes', 0)} writes; "
        f"coursework (lineItems): {_tally(counts.get('lineItem', {}))}; "
        f"marks (results): {_tally(counts.get('result', {}))}"
    )
    for why in (report.get("refused"), report.get("failed"), report.get("stopped")):
        if why:
            out.print(f"  {why}")
    needing = int((report.get("attention") or {}).get("count", 0) or 0)
    if needing:
        out.print(
            f"  Needs attention: {needing} item{'s' if needing != 1 else ''} skipped (below)."
        )
    for item in report.get("items") or []:
        if item.get("outcome") in ("skipped", "failed"):
            who = f" / {item['student']}" if item.get("student") else ""
            out.print(f"  {item['outcome']}: {item.get('coursework')}{who}: {item.get('reason')}")


def _tally(outcomes: dict[str, int]) -> str:
    """{"exported": 2, "unchanged": 4} -> "2 exported, 4 unchanged"."""
    return ", ".join(f"{n} {outcome}" for outcome, n in outcomes.items()) or "none"
