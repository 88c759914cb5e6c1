"""`sislink marks ...`: set, import, export marks and read the export report."""

from __future__ import annotations

import asyncio
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from sqlalchemy import select

from sislink.classroom import Actor, Classroom, ClassroomError
from sislink.classroom.models import Coursework, CourseworkState, JobStatus
from sislink.classroom.services import marks as mark_service
from sislink.classroom.services.access import class_for_editing
from sislink.classroom.services.people import find_person_by_email
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

EXCUSED_WORDS = {"excused", "ex", "exempt"}
MISSING_WORDS = {"missing", "m", "msg"}
EMAIL_COLUMNS = {"email", "student", "student email", "e-mail"}


@dataclass(frozen=True)
class CellProblem:
    row: int
    column: str
    value: str
    problem: str

    def as_json(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "problem": self.problem,
        }

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r} ({self.value!r}): {self.problem}"


def read_sheet(path: Path) -> list[list[str]]:
    """The sheet's rows, one per spreadsheet row: a quoted cell may hold line breaks, so the
    file is parsed as CSV, never split into lines first (row numbers stay the sheet's own).
    A sheet that is not CSV (an unclosed quote, say) is refused whole, before anything is set.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as sheet:
            reader = csv.reader(sheet, strict=True)
            try:
                return list(reader)
            except csv.Error as exc:
                fail(
                    f"{path} is not a readable CSV sheet (line {reader.line_num}: {exc}); check "
                    "that every quoted cell is closed, or save it again as CSV. Nothing was "
                    "imported."
                )
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"Cannot read {path}: {exc}. Save the sheet as CSV (UTF-8) and try again.")


def import_gradebook(
    classroom: Classroom, actor: Actor, class_id: int, path: Path, *, returned: bool = True
) -> tuple[int, list[CellProblem]]:
    """Read a gradebook sheet (one row per student by email, one column per coursework title)
    and set every mark it can; each bad cell is reported and the rest imported."""
    rows = read_sheet(path)
    if not rows:
        fail(f"{path} is empty; it needs a header row: email, then one column per coursework.")
    header = [h.strip() for h in rows[0]]
    email_at = next((i for i, h in enumerate(header) if h.casefold() in EMAIL_COLUMNS), None)
    if email_at is None:
        fail(f"{path} has no email column; name the column of student emails 'email'.")
    problems: list[CellProblem] = []
    imported = 0
    with classroom.transaction() as session:
        class_for_editing(session, actor, class_id)
        works = {
            w.title.casefold(): w
            for w in session.scalars(
                select(Coursework).where(
                    Coursework.class_id == class_id, Coursework.state != CourseworkState.DELETED
                )
            )
        }
        columns: dict[int, Coursework] = {}
        for i, title in enumerate(header):
            if i == email_at or not title:
                continue
            work = works.get(title.casefold())
            if work is None:
                problems.append(
                    CellProblem(1, title, title, "no coursework of this class has this title")
                )
            else:
                columns[i] = work
        for number, row in enumerate(rows[1:], start=2):
            if not any(cell.strip() for cell in row):
                continue
            email = row[email_at].strip() if email_at < len(row) else ""
            student = find_person_by_email(session, email) if email else None
            if student is None:
                problems.append(
                    CellProblem(number, header[email_at], email, "no student has this email")
                )
                continue
            for i, work in columns.items():
                value = row[i].strip() if i < len(row) else ""
                if not value:
                    continue
                # The service clears what the cell does not say: a "missing" cell drops an
                # earlier score or excused, a score drops excused and missing.
                values: dict[str, Any]
                if value.casefold() in EXCUSED_WORDS:
                    values = {"excused": True}
                elif value.casefold() in MISSING_WORDS:
                    values = {"missing": True}
                else:
                    values = {"score": value}
                try:
                    with session.begin_nested():
                        mark_service.set_mark(session, actor, work.id, student.id, **values)
                        if returned:
                            mark_service.return_marks(session, actor, work.id, [student.id])
                except ClassroomError as exc:
                    problems.append(CellProblem(number, header[i], value, str(exc)))
                    continue
                imported += 1
    return imported, problems


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
    group = typer.Typer(help="Marks: set, import, export to the SIS, report.", no_args_is_help=True)
    app.add_typer(group, name="marks")

    @group.command("set")
    def set_mark(
        class_: str = typer.Argument(..., metavar="CLASS", help="Class id or title."),
        coursework: int = typer.Option(..., "--coursework", help="Coursework id."),
        student: str = typer.Option(..., "--student", help="The student's email."),
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
            person = find_person_by_email(session, student)
            if person is None:
                fail(f"No student has the email {student!r}.")
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
                "student": person.email,
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
        """Import a gradebook sheet: a row per student (email), a column per coursework title."""
        classroom = open_from_env()
        actor = actor_for(classroom, as_email)
        class_id = find_class(classroom, class_)
        with sync_errors():
            imported, problems = import_gradebook(
                classroom, actor, class_id, file, returned=not draft
            )
        if as_json:
            print_json({"imported": imported, "problems": [p.as_json() for p in problems]})
        else:
            out.print(f"{imported} marks imported.")
            for problem in problems:
                out.print(f"  not imported: {problem}")
        if problems:
            raise typer.Exit(2)

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
            for report in run.reports:
                counts = report.counts()
                out.print(
                    f"{report.class_title}: {report.outcome.value}, {report.writes} writes; "
                    f"coursework (lineItems): {_tally(counts.get('lineItem', {}))}; "
                    f"marks (results): {_tally(counts.get('result', {}))}"
                )
                for why in (report.refused, report.failed, report.stopped):
                    if why:
                        out.print(f"  {why}")
                if report.attention_count:
                    out.print(
                        f"  Needs attention: {report.attention_count} item"
                        f"{'s' if report.attention_count != 1 else ''} skipped (below)."
                    )
                for item in report.items:
                    if item.outcome.value in ("skipped", "failed"):
                        who = f" / {item.student}" if item.student else ""
                        out.print(
                            f"  {item.outcome.value}: {item.coursework_title}{who}: {item.reason}"
                        )
        # Non-zero whenever something was not exported as asked, so scripts notice: 1 when a
        # class failed, was refused or stopped; 3 when every class finished but items were
        # skipped for a reason someone must act on (README, "Exit status").
        finished = (
            ExportOutcome.SUCCEEDED,
            ExportOutcome.NEEDS_ATTENTION,
            ExportOutcome.DRY_RUN,
        )
        if run.job.error or any(r.outcome not in finished for r in run.reports):
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


def _tally(outcomes: dict[str, int]) -> str:
    """{"exported": 2, "unchanged": 4} -> "2 exported, 4 unchanged"."""
    return ", ".join(f"{n} {outcome}" for outcome, n in outcomes.items()) or "none"
