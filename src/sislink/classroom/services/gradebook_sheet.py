"""Gradebook sheets as teachers save them: a row per student (email or SIS identifier), a column
per coursework title, read into marks with the same rule as every other way of setting a mark.

What spreadsheets write is read: commas, semicolons or tabs between cells (Excel in a
comma-decimal locale writes semicolons; its "Unicode text" is tab-separated), found from how
each splits the header and the first rows; in a semicolon- or tab-separated sheet a comma is a decimal comma (8,5), since it
cannot separate cells. What would be guessed is refused, cell by cell or row by row, each with
the sheet's own row number: two columns for one coursework, a column whose title two
coursework share, two rows for one student, a
student not in the class (only the class's students are looked among, so nobody outside it is
named), a mark that is not a plain number.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom.errors import ClassroomError, InvalidInput
from sislink.classroom.models import (
    Coursework,
    CourseworkState,
    Mark,
    Person,
)
from sislink.classroom.services import marks as mark_service
from sislink.classroom.services.access import Actor, class_for_editing
from sislink.classroom.services.export_settings import extra_credit_limit
from sislink.classroom.services.people import ClassStudents

EXCUSED_WORDS = frozenset({"excused", "ex", "exempt"})
MISSING_WORDS = frozenset({"missing", "m", "msg"})
# Headers of the column naming the student (by email, or by SIS identifier).
STUDENT_COLUMNS = frozenset(
    {
        "email",
        "student",
        "student email",
        "e-mail",
        "identifier",
        "sis identifier",
        "sis id",
        "student id",
    }
)
# Cell separators a sheet may use, in the order a tie in the header row is settled.
SEPARATORS = ("\t", ";", ",")
SEPARATOR_NAMES = {"\t": "tab", ";": "semicolon", ",": "comma"}
# How many rows after the header are read to tell the separator.
SNIFFED_ROWS = 5


@dataclass(frozen=True)
class CellProblem:
    """A cell (or row, or column) that was not imported, and why."""

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


@dataclass(frozen=True)
class Sheet:
    """The sheet's rows as a spreadsheet shows them, and the separator it was written with."""

    rows: list[list[str]]
    separator: str

    @property
    def decimal_comma(self) -> bool:
        """A comma in a cell is a decimal comma: it cannot be a separator in this sheet."""
        return self.separator != ","


@dataclass(frozen=True)
class SheetImport:
    imported: int
    problems: list[CellProblem]
    separator: str

    def as_json(self) -> dict[str, Any]:
        return {"imported": self.imported, "problems": [p.as_json() for p in self.problems]}


def sniff_separator(text: str) -> str:
    """The separator the sheet was written with: the one that splits the header into columns
    (two at least) and the most of the first rows after it into two cells up to the header's
    width (a row may end early, never have more cells); a tie goes to the wider header, then
    to the order of SEPARATORS. A title may hold another separator ('Unit 1; quiz' in a comma
    sheet), so counting them in the header alone could pick the wrong one. When none fits,
    the header row's most common separator outside quotes (a comma when it holds none)."""
    best: tuple[int, int, int] | None = None
    chosen = ""
    for order, separator in enumerate(SEPARATORS):
        rows = _first_rows(text, separator)
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        # A row of one cell, or of more cells than the header, is not split as written.
        fitting = sum(1 for row in rows[1:] if 1 < len(row) <= width)
        key = (fitting, width, -order)
        if best is None or key > best:
            best, chosen = key, separator
    if chosen:
        return chosen
    return _most_in_header(text)


def _first_rows(text: str, separator: str) -> list[list[str]]:
    """The first few non-blank rows as `separator` would split them (fewer if they cannot be
    read: the whole read then says why)."""
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append(row)
            if len(rows) > SNIFFED_ROWS:
                break
    except csv.Error:
        pass
    return rows


def _most_in_header(text: str) -> str:
    """The separator the header row (the first line) holds most of, outside quotes; a comma
    when it holds none."""
    header = text.split("\n", 1)[0]
    outside: list[str] = []
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        elif not quoted:
            outside.append(ch)
    counts = {sep: outside.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])  # ties: the first in SEPARATORS
    return best if counts[best] else ","


def read_sheet(text: str) -> Sheet:
    """The sheet's rows, one per spreadsheet row: a quoted cell may hold line breaks, so the
    text is parsed as CSV, never split into lines first (row numbers stay the sheet's own).
    A sheet that cannot be read (an unclosed quote, say) is refused whole."""
    text = text.removeprefix("\ufeff")
    separator = sniff_separator(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator, strict=True)
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise InvalidInput(
            f"The sheet is not readable as {SEPARATOR_NAMES[separator]}-separated values (line "
            f"{reader.line_num}: {exc}); check that every quoted cell is closed, or save it "
            "again as CSV. Nothing was imported."
        ) from None
    return Sheet(rows, separator)


def _column_name(index: int) -> str:
    """A spreadsheet's name for the column at `index` (0 -> A, 26 -> AA)."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def _folded(title: str) -> str:
    return " ".join(title.split()).casefold()


def import_sheet(
    session: Session, actor: Actor, class_id: int, sheet: Sheet, *, returned: bool = True
) -> SheetImport:
    """Set every mark the sheet gives that can be set; every other cell, row or column is
    reported and changes nothing. Only the class's teachers (or an administrator) may."""
    class_for_editing(session, actor, class_id)
    if not sheet.rows:
        raise InvalidInput(
            "The sheet is empty; it needs a header row: email, then one column per coursework."
        )
    header = [h.strip() for h in sheet.rows[0]]
    student_at = next((i for i, h in enumerate(header) if _folded(h) in STUDENT_COLUMNS), None)
    if student_at is None:
        raise InvalidInput(
            "The sheet has no column of students; name the column of student emails (or SIS "
            "identifiers) 'email'. Nothing was imported."
        )
    titled: dict[str, list[Coursework]] = {}
    for w in session.scalars(
        select(Coursework)
        .where(Coursework.class_id == class_id, Coursework.state != CourseworkState.DELETED)
        .order_by(Coursework.id)
    ):
        titled.setdefault(_folded(w.title), []).append(w)
    works = {title: found[0] for title, found in titled.items() if len(found) == 1}
    problems: list[CellProblem] = []
    columns_of: dict[int, list[int]] = {}  # coursework id -> the columns naming it
    for i, title in enumerate(header):
        if i == student_at or not title:
            continue
        sharing = len(titled.get(_folded(title), ()))
        if sharing > 1:
            # Which of them is meant cannot be told: none is given the column's marks.
            problems.append(
                CellProblem(
                    1,
                    title,
                    title,
                    f"{sharing} coursework of this class have this title, so which one is meant "
                    "is unclear: give them different titles; none of this column was imported",
                )
            )
            continue
        work = works.get(_folded(title))
        if work is None:
            problems.append(
                CellProblem(1, title, title, "no coursework of this class has this title")
            )
            continue
        columns_of.setdefault(work.id, []).append(i)
    columns: dict[int, Coursework] = {}
    for work_id, at in columns_of.items():
        work = next(w for w in works.values() if w.id == work_id)
        if len(at) > 1:
            named = " and ".join(_column_name(i) for i in at)
            problems.append(
                CellProblem(
                    1,
                    header[at[0]],
                    work.title,
                    f"the coursework {work.title!r} has {len(at)} columns ({named}), so which "
                    "marks are meant is unclear: keep one column; none of them was imported",
                )
            )
            continue
        columns[at[0]] = work

    # Who each row is: rows naming the same student twice are refused, both of them.
    students = ClassStudents.of_class(session, class_id)
    student_column = header[student_at]
    row_student: dict[int, Person] = {}
    rows_of: dict[int, list[int]] = {}
    for number, row in enumerate(sheet.rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        named = row[student_at].strip() if student_at < len(row) else ""
        if not named:
            problems.append(CellProblem(number, student_column, named, "the row names no student"))
            continue
        try:
            # Only among the class's students: a sheet cannot be used to look anyone up.
            student = students.find(named)
        except ClassroomError as exc:
            problems.append(CellProblem(number, student_column, named, exc.message))
            continue
        row_student[number] = student
        rows_of.setdefault(student.id, []).append(number)
    for numbers in rows_of.values():
        if len(numbers) < 2:
            continue
        student = row_student[numbers[0]]
        listed = ", ".join(str(n) for n in numbers)
        for number in numbers:
            del row_student[number]
            problems.append(
                CellProblem(
                    number,
                    student_column,
                    sheet.rows[number - 1][student_at].strip(),
                    f"{student.name} ({student.email or 'no email'}) has {len(numbers)} rows "
                    f"({listed}), so which marks are meant is unclear: keep one row; none of "
                    "them was imported",
                )
            )

    # Access, the limit, the coursework and the students were read once above: each cell is
    # only its own mark's query and write.
    limit = extra_credit_limit(session, class_id)
    imported = 0
    for number, student in sorted(row_student.items()):
        row = sheet.rows[number - 1]
        for i, work in columns.items():
            value = row[i].strip() if i < len(row) else ""
            if not value:
                continue
            # The service clears what the cell does not say: a "missing" cell drops an earlier
            # score or excused, a score drops excused and missing.
            values: dict[str, Any]
            if value.casefold() in EXCUSED_WORDS:
                values = {"excused": True}
            elif value.casefold() in MISSING_WORDS:
                values = {"missing": True}
            else:
                values = {"score": value}
            try:
                with session.begin_nested():
                    mark_service.write_mark(
                        session,
                        actor,
                        work,
                        student.id,
                        limit=limit,
                        decimal_comma=sheet.decimal_comma,
                        returned=returned,
                        enrolled=True,
                        **values,
                    )
            except ClassroomError as exc:
                problems.append(CellProblem(number, header[i], value, exc.message))
                continue
            imported += 1
    problems.sort(key=lambda p: p.row)
    return SheetImport(imported, problems, sheet.separator)


def write_sheet(session: Session, actor: Actor, class_id: int) -> str:
    """The class's gradebook as a comma-separated sheet that `import_sheet` reads back: an
    `email` column (the SIS identifier for a student without an email), then one column per
    coursework, its cells a score, EX (excused), M (missing) or empty. Only the class's teachers
    (or an administrator) may. A cell that a spreadsheet would run as a formula (=, +, -, @)
    is written with a leading apostrophe."""
    class_for_editing(session, actor, class_id)
    works = list(
        session.scalars(
            select(Coursework)
            .where(Coursework.class_id == class_id, Coursework.state != CourseworkState.DELETED)
            .order_by(Coursework.id)
        )
    )
    students = ClassStudents.of_class(session, class_id).students
    marks: dict[tuple[int, int], Mark] = {}
    if works:
        for mark in session.scalars(
            select(Mark).where(Mark.coursework_id.in_([w.id for w in works]))
        ):
            marks[(mark.coursework_id, mark.student_id)] = mark
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["email", *(_safe_cell(w.title) for w in works)])
    for student in sorted(students, key=lambda person: (person.name.casefold(), person.id)):
        named = student.email or student.sis_identifier or student.sis_sourced_id or ""
        row = [_safe_cell(named)]
        for work in works:
            cell = marks.get((work.id, student.id))
            if cell is None:
                row.append("")
            elif cell.excused:
                row.append("EX")
            elif cell.score is not None:
                row.append(_plain_score(cell.score))
            elif cell.missing:
                row.append("M")
            else:
                row.append("")
        writer.writerow(row)
    return out.getvalue()


def _plain_score(score: float) -> str:
    """The score as it is kept, in plain digits that `import_sheet` reads back to the same
    number (8, 8.5, 93.33333333, 1234567): never rounded (:g keeps 6 digits), never in
    exponent notation (which marks are not read in)."""
    text = format(Decimal(repr(float(score))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _safe_cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
