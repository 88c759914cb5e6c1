"""What loading a OneRoster CSV bundle found: each problem once, where it is, and what to do.

A problem is an `error` (the bundle is refused and nothing is written), a `warning` (the data
was used, perhaps repaired or skipped, as the problem says) or a `note` (nothing was wrong with
the data; the loader says what it did, such as a file it does not read). The same problem met
on many rows is one problem listing its rows: a bundle with 3,000 users without an email says
so once, not 3,000 times, and a problem met again by a later pass over the file is not
counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "note"]
_RANK: dict[str, int] = {"error": 0, "warning": 1, "note": 2}
_EXAMPLES = 5
COUNT = "<count>"
"""Placeholder in a problem's text: how many rows (or examples) it was met on."""
EXAMPLES = "<examples>"
"""Placeholder in a problem's text: the first few examples (sourcedIds), then "and N more"."""


@dataclass(frozen=True)
class BundleProblem:
    """One problem of a bundle: its file, the rows it was met on (spreadsheet numbering: the
    header is row 1; none when it concerns the whole file), its column, what was wrong and
    what to do."""

    severity: Severity
    file: str
    rows: tuple[int, ...]
    column: str | None
    problem: str
    action: str

    @property
    def row(self) -> int | None:
        return self.rows[0] if self.rows else None

    @property
    def where(self) -> str:
        """`users.csv:5 email`, `users.csv:5 (and 36 more rows) email`, `manifest.csv`."""
        where = self.file
        if self.rows:
            where += f":{self.rows[0]}"
            if len(self.rows) > 1:
                more = len(self.rows) - 1
                where += f" (and {more} more row{'s' if more > 1 else ''})"
        if self.column:
            where += f" {self.column}"
        return where

    def __str__(self) -> str:
        return (
            f"{self.where}: {self.problem}; {self.action}"
            if self.action
            else (f"{self.where}: {self.problem}")
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "file": self.file,
            "row": self.row,
            "rows": list(self.rows),
            "column": self.column,
            "problem": self.problem,
            "action": self.action,
            "text": str(self),
        }


@dataclass
class _Group:
    order: int
    rows: set[int] = field(default_factory=set)
    examples: dict[str, None] = field(default_factory=dict)  # an ordered set


class ProblemLog:
    """Collects problems; the same (severity, file, column, problem, action) is one problem
    whose rows and examples accumulate. Adding a row or example twice changes nothing, so a
    file read in several passes reports what it found once."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str, str | None, str, str], _Group] = {}

    def add(
        self,
        severity: Severity,
        file: str,
        problem: str,
        action: str = "",
        *,
        row: int | None = None,
        column: str | None = None,
        example: str | None = None,
    ) -> None:
        key = (severity, file, column, problem, action)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(order=len(self._groups))
        if row is not None:
            group.rows.add(row)
        if example is not None:
            group.examples[example] = None

    def error(self, file: str, problem: str, action: str = "", **where: Any) -> None:
        self.add("error", file, problem, action, **where)

    def warning(self, file: str, problem: str, action: str = "", **where: Any) -> None:
        self.add("warning", file, problem, action, **where)

    def note(self, file: str, problem: str, action: str = "", **where: Any) -> None:
        self.add("note", file, problem, action, **where)

    @property
    def has_errors(self) -> bool:
        return any(key[0] == "error" for key in self._groups)

    def problems(self) -> tuple[BundleProblem, ...]:
        """Errors first, then warnings, then notes; in the order they were first met."""
        out = []
        for key, group in sorted(
            self._groups.items(), key=lambda kv: (_RANK[kv[0][0]], kv[1].order)
        ):
            severity, file, column, problem, action = key
            rows = tuple(sorted(group.rows))
            examples = list(group.examples)
            count = len(examples) or len(rows)
            shown = ", ".join(examples[:_EXAMPLES])
            if len(examples) > _EXAMPLES:
                shown += f" and {len(examples) - _EXAMPLES} more"
            out.append(
                BundleProblem(
                    severity=severity,  # type: ignore[arg-type]  # a Severity: it was added as one
                    file=file,
                    rows=rows,
                    column=column,
                    problem=problem.replace(COUNT, str(count)).replace(EXAMPLES, shown),
                    action=action.replace(COUNT, str(count)).replace(EXAMPLES, shown),
                )
            )
        return tuple(out)


def plural(count: int, word: str, many: str | None = None) -> str:
    """`1 class`, `2 classes`."""
    return f"{count} {word if count == 1 else (many or word + 's')}"
