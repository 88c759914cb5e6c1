"""OneRoster 1.1 and 1.2 CSV bundles: load one into the provider's store, export the store as one.

A bundle is a zip (or a directory) with `manifest.csv` and the data files it declares: orgs,
academicSessions, courses, classes, users (1.2: plus roles), enrollments, categories,
lineItems, results, with the official CSV binding's column names. Columns are found by name
(their order, and the case of their names, do not matter); unknown columns are ignored and
`metadata.*` columns become the object's metadata (a category's `metadata.classSourcedId` ties
it to a class).

The loader reads bundles as other systems write them, and reports every problem at once in a
`BundleSummary` (file, row, column, what was wrong, what to do; see `csv_report`):

- as warnings, where the data can still be used: an org or session whose parent is missing
  (loaded without it); a class whose school is a department or district (its school is the
  nearest org above it that is a school; with none, the class is skipped with its enrolments,
  lineItems, results and categories, and the report says which and why); a class whose term is
  a semester or school year; a class whose course is not in the bundle (the course is made from
  what the class says); rows with trailing empty values, or cut short; blank manifest values;
  dates written with a time, date-times without a zone (read as UTC); file, column and manifest
  property names in another case; users without an email;
- as notes: the files it does not read (demographics, resources, ... and anything else in the
  bundle), and what a bulk or delta file did to records loaded before.

A file declared `delta` is applied on top of what the store holds (several bundles may be
loaded one after the other: `load_bundles`): a `tobedeleted` row marks the stored record
`tobedeleted` (what a REST SIS shows of a deletion), any other row inserts or replaces. A
`bulk` file is the whole set: records of its kind loaded before that it lacks (or skips, with
their class) are marked `tobedeleted`, and nothing in the bundle may refer to them. In a bulk
file `status` and `dateLastModified` may be blank (the binding says they should be): they are
read as active and the load time.

A bundle with errors (a missing column, a value that is not what its column holds, such as a
number not written in ASCII digits, a reference to nothing, a duplicate sourcedId ...) raises
`CsvBundleError` listing every error (and every warning: see its `lines`), and nothing
is written: every row is checked, references included, before the first record goes into the
store. Passwords in users.csv are never stored. Columns the models do not carry (subjectCodes,
userMasterIdentifier, preferredMiddleName/FamilyName, pronouns) are dropped.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from pydantic import ValidationError

from sislink.oneroster.models import format_datetime, utc_now
from sislink.oneroster.provider.csv_report import (
    COUNT,
    EXAMPLES,
    BundleProblem,
    ProblemLog,
    plural,
)
from sislink.oneroster.versions import spec_for

DEFAULT_ROOT_URL = "http://localhost/ims/oneroster"
"""Root the loaded GUIDRef hrefs hang from (the server rebuilds hrefs for its own host)."""

_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)", re.ASCII)
"""A number as the CSV binding writes one: ASCII digits, an optional point, no exponent."""
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same store exports the same bytes


class BundleStore(Protocol):
    """What the loader and exporter need of a store (`ProviderStore` has it)."""

    def insert_many(self, entity: str, records: Iterable[dict[str, Any]]) -> int: ...

    def iter_all(self, entity: str) -> Iterator[dict[str, Any]]: ...

    def get(self, entity: str, sourced_id: str) -> dict[str, Any] | None: ...

    def count(self, entity: str) -> int: ...


class CsvBundleError(ValueError):
    """A bundle that cannot be loaded: every error found (`problems`, warnings and notes after
    them), where the first one is (`file`, `row`, `column`, `problem`), the bundle's name
    (`bundle`) and, from `load_bundles`, what the bundles before it loaded (`loaded`). Its
    message holds the errors; `lines()` holds every problem, for people."""

    def __init__(
        self,
        problem: str | Sequence[BundleProblem],
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
        action: str = "",
    ) -> None:
        if isinstance(problem, str):
            rows = () if row is None else (row,)
            problems: tuple[BundleProblem, ...] = (
                BundleProblem("error", file or "", rows, column, problem, action),
            )
        else:
            problems = tuple(problem)
        self.problems = problems
        self.bundle = ""
        self.loaded: tuple[BundleSummary, ...] = ()
        errors = [p for p in problems if p.severity == "error"] or list(problems)
        first = errors[0]
        self.file = first.file or None
        self.row, self.column, self.problem = first.row, first.column, first.problem
        if len(errors) == 1:
            message = str(first)
        else:
            message = f"the bundle has {len(errors)} errors; nothing was loaded:\n" + "\n".join(
                f"  {error}" for error in errors
            )
        super().__init__(message)

    def lines(self) -> list[str]:
        """What was refused, then each problem (errors, warnings, notes) on its own line, as
        `BundleSummary.lines` writes a load."""
        counts = {severity: 0 for severity in ("error", "warning", "note")}
        for problem in self.problems:
            counts[problem.severity] += 1
        return [
            f"refused {self.bundle or 'the bundle'}: nothing was loaded from it",
            ", ".join(plural(n, severity) for severity, n in counts.items()) + ":",
            *(f"  {p.severity}: {p}" for p in self.problems),
        ]


@dataclass(frozen=True)
class BundleSummary:
    """What a load did: the bundle's OneRoster version, records written per entity, records
    marked `tobedeleted` per entity, files not read, and every problem met (warnings, notes)."""

    version: str
    counts: dict[str, int]
    skipped_files: tuple[str, ...] = ()
    source_system: str = ""
    problems: tuple[BundleProblem, ...] = ()
    marked_deleted: dict[str, int] = field(default_factory=dict)
    name: str = ""

    @property
    def warnings(self) -> tuple[BundleProblem, ...]:
        return tuple(p for p in self.problems if p.severity == "warning")

    def lines(self) -> list[str]:
        """The summary in words, then each problem on its own line (for people)."""
        counts = ", ".join(f"{entity} {n}" for entity, n in self.counts.items()) or "nothing"
        head = f"loaded {self.name or 'the bundle'} (OneRoster {self.version}): {counts}"
        if self.marked_deleted:
            head += "; marked tobedeleted: " + ", ".join(
                f"{entity} {n}" for entity, n in self.marked_deleted.items()
            )
        lines = [head]
        warnings = len(self.warnings)
        notes = len(self.problems) - warnings
        if self.problems:
            lines.append(f"{plural(warnings, 'warning')}, {plural(notes, 'note')}:")
            lines += [f"  {p.severity}: {p}" for p in self.problems]
        else:
            lines.append("no problems")
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "bundle": self.name,
            "version": self.version,
            "counts": self.counts,
            "marked_deleted": self.marked_deleted,
            "skipped_files": list(self.skipped_files),
            "source_system": self.source_system,
            "problems": [p.as_dict() for p in self.problems],
        }


# ---- the CSV binding as data ------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One CSV column: its header, the wire field it fills, how to read it."""

    name: str
    field: str
    kind: str  # id status text date datetime ref refs list number flag userIds ignore
    ref_type: str | None = None
    required: bool = False  # the column must exist and every row must have a value


@dataclass(frozen=True)
class FileSpec:
    entity: str
    name: str  # e.g. "users.csv"
    manifest_key: str  # e.g. "file.users"
    columns: tuple[Column, ...]

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


def _base(*columns: Column) -> tuple[Column, ...]:
    return (
        Column("sourcedId", "sourcedId", "id", required=True),
        Column("status", "status", "status"),
        Column("dateLastModified", "dateLastModified", "datetime"),
        *columns,
    )


def _ref(name: str, field_: str, ref_type: str, required: bool = False) -> Column:
    return Column(name, field_, "ref", ref_type, required)


_ORGS = _base(
    Column("name", "name", "text", required=True),
    Column("type", "type", "text", required=True),
    Column("identifier", "identifier", "text"),
    _ref("parentSourcedId", "parent", "org"),
)
_SESSIONS = _base(
    Column("title", "title", "text", required=True),
    Column("type", "type", "text", required=True),
    Column("startDate", "startDate", "date", required=True),
    Column("endDate", "endDate", "date", required=True),
    _ref("parentSourcedId", "parent", "academicSession"),
    Column("schoolYear", "schoolYear", "text", required=True),
)
_COURSES = _base(
    _ref("schoolYearSourcedId", "schoolYear", "academicSession"),
    Column("title", "title", "text", required=True),
    Column("courseCode", "courseCode", "text"),
    Column("grades", "grades", "list"),
    _ref("orgSourcedId", "org", "org", required=True),
    Column("subjects", "subjects", "list"),
    Column("subjectCodes", "", "ignore"),
)
_CLASSES = _base(
    Column("title", "title", "text", required=True),
    Column("grades", "grades", "list"),
    _ref("courseSourcedId", "course", "course", required=True),
    Column("classCode", "classCode", "text"),
    Column("classType", "classType", "text"),
    Column("location", "location", "text"),
    _ref("schoolSourcedId", "school", "org", required=True),
    Column("termSourcedIds", "terms", "refs", "academicSession", required=True),
    Column("subjects", "subjects", "list"),
    Column("subjectCodes", "", "ignore"),
    Column("periods", "periods", "list"),
)


def _user_columns(*, v12: bool) -> tuple[Column, ...]:
    """users.csv in the official column order of each version (1.1 carries role and orgs)."""
    one_one = (
        Column("orgSourcedIds", "_orgs", "refs", "org", required=True),
        Column("role", "_role", "text", required=True),
    )
    return _base(
        Column("enabledUser", "enabledUser", "flag", required=True),
        *(() if v12 else one_one),
        Column("username", "username", "text"),
        Column("userIds", "userIds", "userIds"),
        Column("givenName", "givenName", "text", required=True),
        Column("familyName", "familyName", "text", required=True),
        Column("middleName", "middleName", "text"),
        Column("identifier", "identifier", "text"),
        Column("email", "email", "text"),
        Column("sms", "sms", "text"),
        Column("phone", "phone", "text"),
        Column("agentSourcedIds", "agents", "refs", "user"),
        Column("grades", "grades", "list"),
        Column("password", "", "ignore"),  # never kept: a sandbox must not hold passwords
        *(
            (
                Column("userMasterIdentifier", "", "ignore"),
                Column("resourceSourcedIds", "", "ignore"),
                Column("preferredGivenName", "preferredFirstName", "text"),
                Column("preferredMiddleName", "", "ignore"),
                Column("preferredFamilyName", "", "ignore"),
                _ref("primaryOrgSourcedId", "primaryOrg", "org"),
                Column("pronouns", "", "ignore"),
            )
            if v12
            else ()
        ),
    )


_USERS_1_1 = _user_columns(v12=False)
_USERS_1_2 = _user_columns(v12=True)
_ROLES = _base(
    _ref("userSourcedId", "_user", "user", required=True),
    Column("roleType", "roleType", "text", required=True),
    Column("role", "role", "text", required=True),
    Column("beginDate", "beginDate", "date"),
    Column("endDate", "endDate", "date"),
    _ref("orgSourcedId", "org", "org", required=True),
)
_ENROLLMENTS = _base(
    _ref("classSourcedId", "class", "class", required=True),
    _ref("schoolSourcedId", "school", "org", required=True),
    _ref("userSourcedId", "user", "user", required=True),
    Column("role", "role", "text", required=True),
    Column("primary", "primary", "flag"),
    Column("beginDate", "beginDate", "date"),
    Column("endDate", "endDate", "date"),
)
_CATEGORIES_1_1 = _base(Column("title", "title", "text", required=True))
_CATEGORIES_1_2 = (*_CATEGORIES_1_1, Column("weight", "weight", "number"))
_LINE_ITEMS_1_1 = _base(
    Column("title", "title", "text", required=True),
    Column("description", "description", "text"),
    Column("assignDate", "assignDate", "datetime", required=True),
    Column("dueDate", "dueDate", "datetime", required=True),
    _ref("classSourcedId", "class", "class", required=True),
    _ref("categorySourcedId", "category", "category", required=True),
    _ref("gradingPeriodSourcedId", "gradingPeriod", "academicSession"),
    Column("resultValueMin", "resultValueMin", "number"),
    Column("resultValueMax", "resultValueMax", "number"),
)
# 1.2 requires a school; a bundle without the column (every 1.1 one) gets the class's school.
_LINE_ITEMS_1_2 = (*_LINE_ITEMS_1_1, _ref("schoolSourcedId", "school", "org"))
_RESULTS_1_1 = _base(
    _ref("lineItemSourcedId", "lineItem", "lineItem", required=True),
    _ref("studentSourcedId", "student", "user", required=True),
    Column("scoreStatus", "scoreStatus", "text", required=True),
    Column("score", "score", "number"),
    Column("scoreDate", "scoreDate", "date", required=True),
    Column("comment", "comment", "text"),
)
_RESULTS_1_2 = (
    *_RESULTS_1_1,
    _ref("classSourcedId", "class", "class"),
    Column("textScore", "textScore", "text"),
    Column("late", "late", "flag"),
    Column("missing", "missing", "flag"),
)


def _files(version: str) -> tuple[FileSpec, ...]:
    """The files of a version, in load order (everything a row refers to is loaded before it)."""
    v12 = version == "1.2"
    specs = [
        FileSpec("org", "orgs.csv", "file.orgs", _ORGS),
        FileSpec("academicSession", "academicSessions.csv", "file.academicSessions", _SESSIONS),
        FileSpec("course", "courses.csv", "file.courses", _COURSES),
        FileSpec("class", "classes.csv", "file.classes", _CLASSES),
        FileSpec("user", "users.csv", "file.users", _USERS_1_2 if v12 else _USERS_1_1),
        FileSpec("enrollment", "enrollments.csv", "file.enrollments", _ENROLLMENTS),
        FileSpec(
            "category",
            "categories.csv",
            "file.categories",
            _CATEGORIES_1_2 if v12 else _CATEGORIES_1_1,
        ),
        FileSpec(
            "lineItem",
            "lineItems.csv",
            "file.lineItems",
            _LINE_ITEMS_1_2 if v12 else _LINE_ITEMS_1_1,
        ),
        FileSpec("result", "results.csv", "file.results", _RESULTS_1_2 if v12 else _RESULTS_1_1),
    ]
    return tuple(specs)


_ROLES_FILE = FileSpec("role", "roles.csv", "file.roles", _ROLES)
_UNSUPPORTED_1_1 = ("classResources", "courseResources", "demographics", "resources")
_UNSUPPORTED_1_2 = (
    *_UNSUPPORTED_1_1,
    "lineItemLearningObjectiveIds",
    "lineItemScoreScales",
    "resultLearningObjectiveIds",
    "resultScoreScales",
    "scoreScales",
    "userProfiles",
    "userResources",
)
_ALL_MANIFEST_FILES = {
    "1.1": sorted([*(s.manifest_key[5:] for s in _files("1.1")), *_UNSUPPORTED_1_1], key=str.lower),
    "1.2": sorted(
        [*(s.manifest_key[5:] for s in _files("1.2")), "roles", *_UNSUPPORTED_1_2], key=str.lower
    ),
}
# Manifest property names and file stems as the binding spells them, by their lower case: they
# are matched without regard to case, as file names are.
_FILE_STEMS = {name.lower(): name for names in _ALL_MANIFEST_FILES.values() for name in names}
_PROPERTY_NAMES = {
    name.lower(): name
    for name in (
        "manifest.version",
        "oneroster.version",
        "source.systemName",
        "source.systemCode",
        *(f"file.{stem}" for stem in _FILE_STEMS.values()),
    )
}
# 1.1 user roles that 1.2 renamed; 1.2's RoleDType has no plain "administrator".
_ROLE_1_1_TO_1_2 = {"administrator": "siteAdministrator"}


# ---- reading a bundle -------------------------------------------------------------------------

_MANIFEST = FileSpec(
    "manifest",
    "manifest.csv",
    "",
    (
        Column("propertyName", "", "text", required=True),
        Column("value", "", "text", required=True),
    ),
)
_NOT_SERVED = {
    "demographics": "the built-in SIS serves no demographics",
    "resources": "the built-in SIS serves no resources",
    "classResources": "the built-in SIS serves no resources",
    "courseResources": "the built-in SIS serves no resources",
    "userResources": "the built-in SIS serves no resources",
    "userProfiles": "the built-in SIS serves no user profiles",
}


class _Source:
    """The files of a bundle, from a zip or a directory, by base name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._names: dict[str, str] = {}  # base name, as written -> path or member
        if path.is_dir():
            self._names = {p.name: str(p) for p in path.iterdir() if p.is_file()}
        elif path.is_file():
            try:
                self._zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile:
                raise CsvBundleError(
                    f"{path.name} is not a zip file",
                    action="give a OneRoster CSV bundle (.zip) or a directory holding "
                    "manifest.csv and the data files",
                ) from None
            for info in self._zip.infolist():
                if not info.is_dir() and not Path(info.filename).name.startswith("."):
                    self._names.setdefault(Path(info.filename).name, info.filename)
        else:
            raise CsvBundleError(
                f"{path} does not exist", action="give the path of a CSV bundle (.zip or directory)"
            )

    @property
    def names(self) -> list[str]:
        return sorted(self._names)

    def actual_name(self, name: str) -> str | None:
        """The file's name as the bundle writes it (`Users.csv` for `users.csv`), if it has it:
        file names are matched without regard to case, as Windows-made bundles need."""
        if name in self._names:
            return name
        return next((n for n in self._names if n.lower() == name.lower()), None)

    def has(self, name: str) -> bool:
        return self.actual_name(name) is not None

    @contextmanager
    def open(self, name: str) -> Iterator[IO[str]]:
        member = self._names[self.actual_name(name) or name]
        if self._zip is not None:
            with (
                self._zip.open(member) as raw,
                io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text,
            ):
                yield text
        else:
            with open(member, encoding="utf-8-sig", newline="") as text:
                yield text

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def _header(spec: FileSpec, raw: list[str], log: ProblemLog) -> list[str] | None:
    """The header's column names as the binding spells them, or None when the file cannot be
    read (a required column missing, a name twice)."""
    header = [name.strip() for name in raw]
    while header and not header[-1]:
        header.pop()
        log.warning(
            spec.name,
            "the header ends with empty column names (trailing commas): they were ignored",
            "nothing to do",
            row=1,
        )
    spelled = {column.name.lower(): column.name for column in spec.columns}
    for i, name in enumerate(header):
        if not name:
            header[i] = f"(column {i + 1})"  # a blank name in the middle: its values are ignored
        elif name not in spelled.values() and name.lower() in spelled:
            log.warning(
                spec.name,
                f"column {name} is spelled {spelled[name.lower()]} in the binding: read as that",
                "nothing to do, or correct the header",
                row=1,
                column=name,
            )
            header[i] = spelled[name.lower()]
    readable = True
    for name in dict.fromkeys(h for h in header if header.count(h) > 1):
        log.error(
            spec.name,
            f"the column {name} appears {header.count(name)} times",
            "keep one column of each name",
            row=1,
            column=name,
        )
        readable = False
    for name in spec.required:
        if name not in header:
            log.error(
                spec.name,
                "the column is missing",
                f"add a {name} column to the header (the binding requires it)",
                row=1,
                column=name,
            )
            readable = False
    return header if readable else None


@dataclass
class _Unreadable:
    """What could not be read: references to it are not errors of their own."""

    entities: set[str] = field(default_factory=set)  # whole files (their header)
    ids: set[tuple[str, str]] = field(default_factory=set)  # rows: (entity, sourcedId)


def _rows(
    source: _Source, spec: FileSpec, log: ProblemLog, unreadable: _Unreadable | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """(spreadsheet row number, row) for every data row that can be read; what cannot be read
    is logged (each pass over a file logs the same problems: the log keeps each once), and
    noted in `unreadable`."""
    row_number = 1
    with source.open(spec.name) as handle:
        reader = csv.reader(handle)
        try:
            try:
                raw_header = next(reader)
            except StopIteration:
                log.error(spec.name, "the file is empty", "it needs at least its header row", row=1)
                return
            header = _header(spec, raw_header, log)
            if header is None:
                if unreadable is not None:
                    unreadable.entities.add(spec.entity)
                return
            width = len(header)
            # A header with trailing commas (warned about once) makes rows as wide as it: their
            # empty values up to that width are the same cause, not a problem of each row.
            header_width = len(raw_header)
            for row_number, values in enumerate(reader, start=2):
                if not values:
                    continue  # an empty line
                if not any(v.strip() for v in values):
                    log.note(spec.name, "rows with no value at all were skipped", row=row_number)
                    continue
                if len(values) > width:
                    if any(v.strip() for v in values[width:]):
                        if unreadable is not None and "sourcedId" in header:
                            sourced_id = values[header.index("sourcedId")].strip()
                            unreadable.ids.add((spec.entity, sourced_id))
                        log.error(
                            spec.name,
                            f"the row has {len(values)} values but the header has {width} columns",
                            "quote values that contain commas, or name every column in the header",
                            row=row_number,
                        )
                        continue
                    if len(values) > header_width:
                        log.warning(
                            spec.name,
                            "rows end with empty values beyond the header's columns (trailing "
                            "commas): the extra values were ignored",
                            "nothing to do",
                            row=row_number,
                        )
                    values = values[:width]
                elif len(values) < width:
                    log.warning(
                        spec.name,
                        "rows have fewer values than the header has columns: the missing "
                        "values at their end were read as empty",
                        "check that these rows were not cut short",
                        row=row_number,
                    )
                    values = values + [""] * (width - len(values))
                yield row_number, dict(zip(header, values, strict=True))
        except (csv.Error, UnicodeDecodeError) as exc:
            log.error(
                spec.name,
                f"unreadable CSV ({exc}); rows from here on were not read",
                "save the file as CSV in UTF-8",
                row=row_number + 1,
            )


@dataclass
class _Manifest:
    values: dict[str, str]
    rows: dict[str, int]


def _read_manifest(source: _Source, log: ProblemLog) -> _Manifest | None:
    if not source.has("manifest.csv"):
        log.error(
            "manifest.csv",
            "the bundle has no manifest.csv",
            "a OneRoster CSV bundle starts with a manifest (propertyName,value) naming "
            "oneroster.version and each file.* as bulk, delta or absent",
        )
        return None
    manifest = _Manifest({}, {})
    for row_number, row in _rows(source, _MANIFEST, log):
        name = row["propertyName"].strip()
        spelled = _PROPERTY_NAMES.get(name.lower(), name)
        if spelled != name:
            log.warning(
                "manifest.csv",
                f"{name} is spelled {spelled} in the binding: read as that",
                "nothing to do, or correct the propertyName",
                row=row_number,
                column="propertyName",
            )
            name = spelled
        if name:
            manifest.values[name] = row["value"].strip()
            manifest.rows[name] = row_number
    return manifest


def _read_version(manifest: _Manifest, source: _Source, log: ProblemLog) -> str:
    """The bundle's version: the manifest's, or guessed (with a warning) when it is blank."""
    version = manifest.values.get("oneroster.version", "")
    row = manifest.rows.get("oneroster.version")
    if not version:
        guessed = "1.2" if source.has("roles.csv") else "1.1"
        has = "has" if guessed == "1.2" else "has no"
        log.warning(
            "manifest.csv",
            f"oneroster.version is {'empty' if row else 'missing'}: read as {guessed}, since "
            f"the bundle {has} roles.csv (1.2 keeps users' roles there)",
            "write oneroster.version as 1.1 or 1.2",
            row=row,
            column="value" if row else None,
        )
        return guessed
    for known in ("1.1", "1.2"):
        if version == known or version.startswith(known + "."):
            return known
    log.error(
        "manifest.csv",
        f"oneroster.version is {version!r}",
        "this loader reads 1.1 and 1.2 bundles: export one of those",
        row=row,
        column="value",
    )
    return ""


def _read_modes(
    manifest: _Manifest, source: _Source, version: str, log: ProblemLog
) -> tuple[list[tuple[FileSpec, str]], list[str]]:
    """The data files to read, each with its mode (bulk or delta), and the files not read."""
    if not manifest.values.get("manifest.version"):
        log.warning(
            "manifest.csv",
            "manifest.version is "
            + ("empty" if "manifest.version" in manifest.values else "missing")
            + ": read as 1.0",
            "write manifest.version,1.0",
            row=manifest.rows.get("manifest.version"),
            column="value" if "manifest.version" in manifest.values else None,
        )
    declared: dict[str, str] = {}
    for key, value in manifest.values.items():
        if not key.startswith("file."):
            continue
        name, mode, row = key[5:], value.lower(), manifest.rows[key]
        if not mode:
            mode = "bulk" if source.has(f"{name}.csv") else "absent"
            has = "has" if mode == "bulk" else "has no"
            log.warning(
                "manifest.csv",
                f"{key} has no value: read as {mode}, since the bundle {has} {name}.csv",
                "write bulk, delta or absent",
                row=row,
                column="value",
            )
        elif mode not in ("bulk", "delta", "absent"):
            log.error("manifest.csv", f"{key} is {value!r}", "use bulk, delta or absent", row=row)
            continue
        declared[name] = mode
    specs = [*_files(version), *((_ROLES_FILE,) if version == "1.2" else ())]
    plan: list[tuple[FileSpec, str]] = []
    for spec in specs:
        name = spec.manifest_key[5:]
        mode = declared.get(name, "")
        if not mode and source.has(spec.name):
            log.warning(
                "manifest.csv",
                f"manifest.csv does not name file.{name}, but the bundle has {spec.name}: "
                "read as bulk",
                f"add file.{name},bulk to manifest.csv",
            )
            mode = "bulk"
        if mode in ("bulk", "delta"):
            if not source.has(spec.name):
                log.error(
                    spec.name,
                    f"manifest.csv declares {spec.manifest_key}={mode} but the bundle has no "
                    f"{spec.name}",
                    "add the file or declare it absent",
                )
                continue
            plan.append((spec, mode))
    read = {spec.name.lower() for spec, _ in plan} | {"manifest.csv"}
    ignored: list[str] = []
    for file_name in source.names:
        if file_name.lower() in read:
            continue
        ignored.append(file_name)
        is_csv = file_name.lower().endswith(".csv")
        stem = file_name[:-4] if is_csv else file_name
        stem = _FILE_STEMS.get(stem.lower(), stem) if is_csv else stem
        if declared.get(stem) == "absent":
            why, action = (
                f"manifest.csv declares file.{stem} absent",
                (f"declare file.{stem},bulk to load it"),
            )
        elif stem == "roles" and version == "1.1":
            why, action = (
                "roles.csv is a OneRoster 1.2 file, and this is a 1.1 bundle",
                ("nothing to do, or write oneroster.version,1.2 if the bundle is 1.2"),
            )
        elif stem in _NOT_SERVED or (stem in declared and is_csv):
            why = _NOT_SERVED.get(stem, f"the built-in SIS does not load {stem}")
            action = "nothing to do"
        else:
            why, action = "it is not a OneRoster CSV file", "nothing to do"
        log.note(file_name, f"not read: {why}", action)
    users_in_bulk = any(s.entity == "user" and m == "bulk" for s, m in plan)
    if version == "1.2" and users_in_bulk and not any(s is _ROLES_FILE for s, _ in plan):
        log.error(
            "roles.csv",
            "a 1.2 bundle with users needs roles.csv (declared file.roles=bulk)",
            "1.2 users carry their roles there: add it",
        )
    return plan, ignored


@dataclass
class _ClassRow:
    row: int
    school: str
    course: str
    terms: list[str]
    title: str
    class_code: str
    grades: str
    subjects: str


@dataclass
class _Index:
    """What pass one learns: every sourcedId per entity, what the decisions need, 1.2 roles."""

    ids: dict[str, dict[str, int]] = field(default_factory=dict)  # entity -> id -> row
    orgs: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id -> type,parent,name
    sessions: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # type,parent,title
    classes: dict[str, _ClassRow] = field(default_factory=dict)
    line_item_class: dict[str, str] = field(default_factory=dict)
    roles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # 1.2 user -> roles
    # CSV says only `parentSourcedId`; the API also lists each org's and session's children.
    children: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    # delta files: rows that say tobedeleted, per entity: sourcedId -> (row, dateLastModified)
    deletions: dict[str, dict[str, tuple[int, str]]] = field(default_factory=dict)


class _RowError(Exception):
    """A value of a row could not be read (already logged)."""


_CLASS_DEPENDANTS = ("enrollment", "lineItem", "result", "category")


class _Loader:
    def __init__(
        self,
        source: _Source,
        version: str,
        root_url: str,
        store: BundleStore,
        log: ProblemLog,
        modes: dict[str, str],
    ) -> None:
        self.source = source
        self.version = version
        self.spec = spec_for("1.2")
        self.root_url = root_url
        self.store = store
        self.log = log
        self.modes = modes  # entity -> bulk or delta
        self.index = _Index()
        self.now = format_datetime(utc_now())
        self._stored = {entity: store.count(entity) > 0 for entity in _ENTITY_FILES}
        # Decisions taken between pass one and pass two.
        self.dropped_parents: set[tuple[str, str]] = set()  # (entity, sourcedId)
        self.class_school: dict[str, str] = {}
        self.skipped_classes: dict[str, str] = {}  # class -> the org named as its school
        self.made_courses: dict[str, str] = {}  # course -> the class it is made from
        self.skipped_line_items: set[str] = set()
        self.dependants: dict[str, dict[str, int]] = {}  # class -> entity -> rows skipped
        self.unreadable = _Unreadable()

    # -- looking things up: this bundle first, then what the store held before it --

    def _kept_from_before(self, entity: str, sourced_id: str) -> dict[str, Any] | None:
        """A record loaded before this bundle that stays after it: none when this bundle's file
        of its kind is bulk (the whole set: what it lacks is about to be marked tobedeleted), a
        delta row of this bundle deletes it, or it was deleted before."""
        if not self._stored.get(entity) or self.modes.get(entity) == "bulk":
            return None
        if sourced_id in self.index.deletions.get(entity, {}):
            return None
        record = self.store.get(entity, sourced_id)
        if record is None or record.get("status") == "tobedeleted":
            return None
        return record

    def known(self, entity: str, sourced_id: str) -> bool:
        if sourced_id in self.index.ids.get(entity, {}):
            return True
        if entity == "course" and sourced_id in self.made_courses:
            return True
        return self._kept_from_before(entity, sourced_id) is not None

    def _org(self, org_id: str) -> tuple[str, str, str] | None:
        """(type, parent, name) of an org of the bundle or the store."""
        if org_id in self.index.orgs:
            org_type, parent_id, name = self.index.orgs[org_id]
            dropped = ("org", org_id) in self.dropped_parents
            return org_type, "" if dropped else parent_id, name
        record = self._kept_from_before("org", org_id)
        if record is not None:
            parent = record.get("parent") or {}
            return (
                str(record.get("type", "")),
                str(parent.get("sourcedId", "")),
                str(record.get("name", "")),
            )
        return None

    def _session(self, session_id: str) -> tuple[str, str] | None:
        """(type, title) of an academic session of the bundle or the store."""
        if session_id in self.index.sessions:
            session_type, _, title = self.index.sessions[session_id]
            return session_type, title
        record = self._kept_from_before("academicSession", session_id)
        if record is not None:
            return str(record.get("type", "")), str(record.get("title", ""))
        return None

    def nearest_school(self, org_id: str) -> str | None:
        """The org itself when it is a school, else the nearest school up its parents."""
        seen: set[str] = set()
        current = org_id
        while current and current not in seen:
            seen.add(current)
            org = self._org(current)
            if org is None:
                return None
            if org[0] == "school":
                return current
            current = org[1]
        return None

    def _describe_org(self, org_id: str) -> str:
        org = self._org(org_id)
        return f"{org_id} ({org[0]} “{org[2]}”)" if org else org_id

    # -- pass one: ids, and what the decisions need --

    def index_ids(self, plan: Iterable[tuple[FileSpec, str]]) -> None:
        for spec, mode in plan:
            seen = self.index.ids.setdefault(spec.entity, {})
            for row_number, row in _rows(self.source, spec, self.log, self.unreadable):
                sourced_id = row["sourcedId"].strip()
                if not sourced_id:
                    self.log.error(
                        spec.name,
                        "sourcedId is empty",
                        "every row needs one",
                        row=row_number,
                        column="sourcedId",
                    )
                    continue
                if sourced_id in seen:
                    self.log.error(
                        spec.name,
                        f"sourcedId {sourced_id!r} is already used at row {seen[sourced_id]}",
                        "sourcedIds must be unique within a file",
                        row=row_number,
                        column="sourcedId",
                    )
                    continue
                status = (row.get("status") or "").strip().lower()
                if mode == "delta":
                    self._check_delta_row(spec, row_number, row)
                    if status == "tobedeleted":
                        modified = (row.get("dateLastModified") or "").strip()
                        deletions = self.index.deletions.setdefault(spec.entity, {})
                        deletions[sourced_id] = (row_number, modified)
                        continue
                seen[sourced_id] = row_number
                self._remember(spec, row_number, sourced_id, row)

    def _check_delta_row(self, spec: FileSpec, row_number: int, row: dict[str, str]) -> None:
        for column, read_as in (("status", "active"), ("dateLastModified", "the load time")):
            if not (row.get(column) or "").strip():
                self.log.warning(
                    spec.name,
                    f"rows of this delta file have no {column}: read as {read_as}",
                    f"a delta file should give every row its {column}",
                    row=row_number,
                    column=column,
                )

    def _remember(
        self, spec: FileSpec, row_number: int, sourced_id: str, row: dict[str, str]
    ) -> None:
        def cell(name: str) -> str:
            return (row.get(name) or "").strip()

        entity = spec.entity
        if entity == "org":
            self.index.orgs[sourced_id] = (cell("type"), cell("parentSourcedId"), cell("name"))
        elif entity == "academicSession":
            self.index.sessions[sourced_id] = (
                cell("type"),
                cell("parentSourcedId"),
                cell("title"),
            )
        elif entity == "class":
            self.index.classes[sourced_id] = _ClassRow(
                row=row_number,
                school=cell("schoolSourcedId"),
                course=cell("courseSourcedId"),
                terms=[t.strip() for t in cell("termSourcedIds").split(",") if t.strip()],
                title=cell("title"),
                class_code=cell("classCode"),
                grades=cell("grades"),
                subjects=cell("subjects"),
            )
        elif entity == "lineItem":
            self.index.line_item_class[sourced_id] = cell("classSourcedId")
        parent = cell("parentSourcedId")
        if entity in ("org", "academicSession") and parent:
            self.index.children.setdefault((entity, parent), []).append(sourced_id)

    def index_roles(self, roles_mode: str) -> None:
        """1.2: every user's roles from roles.csv (checked like any other file)."""
        for row_number, row in _rows(self.source, _ROLES_FILE, self.log):
            if roles_mode == "delta" and (row.get("status") or "").strip() == "tobedeleted":
                continue
            record = self._convert_row(_ROLES_FILE, row_number, row)
            if record is None:
                continue
            user_id = record["_user"]["sourcedId"]
            keys = ("roleType", "role", "org", "beginDate", "endDate")
            role: dict[str, Any] = {key: record[key] for key in keys if key in record}
            self.index.roles.setdefault(user_id, []).append(role)

    # -- between the passes: what to repair, make or skip --

    def decide(self) -> None:
        self._missing_parents("org", "orgs.csv", self.index.orgs)
        self._missing_parents("academicSession", "academicSessions.csv", self.index.sessions)
        for class_id, klass in self.index.classes.items():
            if not klass.school or self._org(klass.school) is None:
                continue  # pass two reports the reference to nothing
            school = self.nearest_school(klass.school)
            if school is None:
                self.skipped_classes[class_id] = klass.school
                continue
            self.class_school[class_id] = school
            if school != klass.school:
                self.log.warning(
                    "classes.csv",
                    f"classes name {self._describe_org(klass.school)} as their school: "
                    f"{COUNT} ({EXAMPLES}); their school was taken as "
                    f"{self._describe_org(school)}, the nearest school above it",
                    "nothing to do, or name the school itself in schoolSourcedId",
                    row=klass.row,
                    column="schoolSourcedId",
                    example=class_id,
                )
            self._check_terms(class_id, klass)
            if klass.course and not self.known("course", klass.course):
                first = self.made_courses.setdefault(klass.course, class_id)
                self.log.warning(
                    "classes.csv",
                    f"course {klass.course} is not in courses.csv; classes naming it: {COUNT} "
                    f"({EXAMPLES}). It was made from class {first}: title "
                    f"“{self.index.classes[first].title}”, at that class's school",
                    "add the course to courses.csv to give it its own title and code",
                    row=klass.row,
                    column="courseSourcedId",
                    example=class_id,
                )

    def _missing_parents(
        self, entity: str, file_name: str, rows: dict[str, tuple[str, str, str]]
    ) -> None:
        for sourced_id, (_, parent, _) in rows.items():
            if parent and not self.known(entity, parent):
                self.dropped_parents.add((entity, sourced_id))
                self.log.warning(
                    file_name,
                    f"the parent of {sourced_id}, {parent}, is not in {file_name}: "
                    f"{sourced_id} was loaded without a parent",
                    f"add {parent} to {file_name}, or leave parentSourcedId empty",
                    row=self.index.ids[entity][sourced_id],
                    column="parentSourcedId",
                )

    def _check_terms(self, class_id: str, klass: _ClassRow) -> None:
        sessions = [(t, self._session(t)) for t in klass.terms]
        if any(s is not None and s[0] == "term" for _, s in sessions):
            return
        for term_id, session in sessions:
            if session is None:
                continue  # pass two reports the reference to nothing
            session_type, title = session
            self.log.warning(
                "classes.csv",
                f"classes have the {session_type or 'session'} {term_id} (“{title}”) as their "
                f"term, and no session of type term: {COUNT} ({EXAMPLES}). They were loaded "
                f"with it as their term, but GET /terms lists only sessions of type term, so "
                f"a consumer that reads classes by term will not find them",
                "if the SIS has terms inside it, give the classes their term; sislink reads a "
                "semester as a term",
                row=klass.row,
                column="termSourcedIds",
                example=class_id,
            )

    def report_skipped_classes(self) -> None:
        """One warning per org that classes named as their school with no school above it."""
        by_org: dict[str, list[str]] = {}
        for class_id, org in self.skipped_classes.items():
            by_org.setdefault(org, []).append(class_id)
        for org, class_ids in by_org.items():
            lost: dict[str, int] = {}
            for class_id in class_ids:
                for entity, n in self.dependants.get(class_id, {}).items():
                    lost[entity] = lost.get(entity, 0) + n
            with_them = ", ".join(
                plural(lost[e], _WORDS[e][0], _WORDS[e][1]) for e in _CLASS_DEPENDANTS if e in lost
            )
            for class_id in class_ids:
                self.log.warning(
                    "classes.csv",
                    f"classes name {self._describe_org(org)} as their school, and no org "
                    f"above it is a school; classes skipped: {COUNT} ({EXAMPLES})"
                    + (f", and with them {with_them}" if with_them else ""),
                    f"in the SIS, give these classes their school (an org of type school), or "
                    f"in orgs.csv put {org} under the school it belongs to",
                    row=self.index.classes[class_id].row,
                    column="schoolSourcedId",
                    example=class_id,
                )

    # -- pass two and three: rows to records --

    def _skipped_with_class(self, spec: FileSpec, row: dict[str, str], sourced_id: str) -> bool:
        """True for a row that belongs to a skipped class (counted once, in pass two)."""
        entity = spec.entity
        if entity == "class":
            return sourced_id in self.skipped_classes
        if entity in ("enrollment", "lineItem"):
            class_id = (row.get("classSourcedId") or "").strip()
        elif entity == "result":
            line_item = (row.get("lineItemSourcedId") or "").strip()
            if line_item not in self.skipped_line_items:
                return False
            class_id = self.index.line_item_class.get(line_item, "")
        elif entity == "category":
            class_id = (row.get("metadata.classSourcedId") or "").strip()
        else:
            return False
        if class_id not in self.skipped_classes:
            return False
        if entity == "lineItem":
            self.skipped_line_items.add(sourced_id)
        return True

    def records(self, spec: FileSpec, *, counting: bool = False) -> Iterator[dict[str, Any]]:
        deletions = self.index.deletions.get(spec.entity, {})
        for row_number, row in _rows(self.source, spec, self.log):
            sourced_id = row["sourcedId"].strip()
            if not sourced_id or self.index.ids[spec.entity].get(sourced_id) != row_number:
                continue  # an empty or repeated sourcedId (reported), or a delta deletion
            if sourced_id in deletions and deletions[sourced_id][0] == row_number:
                continue
            if self._skipped_with_class(spec, row, sourced_id):
                if counting and spec.entity != "class":
                    class_id = self._class_of(spec, row)
                    counts = self.dependants.setdefault(class_id, {})
                    counts[spec.entity] = counts.get(spec.entity, 0) + 1
                continue
            data = self._convert_row(spec, row_number, row)
            if data is None:
                continue
            if not self._complete(spec, row_number, data):
                continue
            try:
                model = self.spec.from_wire(spec.entity, data)
            except ValidationError as exc:
                self._model_errors(spec, row_number, exc)
                continue
            yield self.spec.to_wire(model, self.root_url)

    def _class_of(self, spec: FileSpec, row: dict[str, str]) -> str:
        if spec.entity == "result":
            line_item = (row.get("lineItemSourcedId") or "").strip()
            return self.index.line_item_class.get(line_item, "")
        if spec.entity == "category":
            return (row.get("metadata.classSourcedId") or "").strip()
        return (row.get("classSourcedId") or "").strip()

    def made_course_records(self) -> Iterator[dict[str, Any]]:
        """The courses made from the classes that name a course the bundle lacks."""
        for course_id, class_id in self.made_courses.items():
            klass = self.index.classes[class_id]
            data: dict[str, Any] = {
                "sourcedId": course_id,
                "status": "active",
                "dateLastModified": self.now,
                "title": klass.title or course_id,
                "org": {"sourcedId": self.class_school[class_id], "type": "org"},
            }
            if klass.class_code:
                data["courseCode"] = klass.class_code
            for name, value in (("grades", klass.grades), ("subjects", klass.subjects)):
                items = [item.strip() for item in value.split(",") if item.strip()]
                if items:
                    data[name] = items
            try:
                model = self.spec.from_wire("course", data)
            except ValidationError as exc:
                self._model_errors(_CLASSES_FILE, klass.row, exc)
                continue
            yield self.spec.to_wire(model, self.root_url)

    def deletions(self, entity: str) -> Iterator[dict[str, Any]]:
        """The stored records a delta file's tobedeleted rows name, marked tobedeleted."""
        file_name = _file_of(entity)
        for sourced_id, (row_number, modified) in self.index.deletions.get(entity, {}).items():
            record = self.store.get(entity, sourced_id) if self._stored[entity] else None
            if record is None:
                self.log.note(
                    file_name,
                    f"rows say tobedeleted for records the SIS does not hold: {COUNT} "
                    f"({EXAMPLES}); there was nothing to delete",
                    "nothing to do",
                    row=row_number,
                    example=sourced_id,
                )
                continue
            if record.get("status") == "tobedeleted":
                continue
            stamp = self._date_time(modified)
            if modified and stamp is None:
                self.log.warning(
                    file_name,
                    f"dateLastModified is not a date-time ({EXAMPLES}): read as the load time",
                    "write it as ISO 8601 in UTC, e.g. 2025-08-01T00:00:00.000Z",
                    row=row_number,
                    column="dateLastModified",
                    example=modified,
                )
            record["status"] = "tobedeleted"
            record["dateLastModified"] = stamp or self.now
            yield record

    def _date_time(self, value: str) -> str | None:
        """A delta deletion's dateLastModified when it reads as one (else the load time)."""
        if not value:
            return None
        try:
            return str(self._convert(_ENROLLMENTS_FILE, 0, _DATE_LAST_MODIFIED, value, quiet=True))
        except _RowError:
            return None

    def _convert_row(
        self, spec: FileSpec, row_number: int, row: dict[str, str]
    ) -> dict[str, Any] | None:
        data: dict[str, Any] = {}
        sourced_id = row.get("sourcedId", "").strip()
        failed = False
        for column in spec.columns:
            raw = row.get(column.name)
            value = raw.strip() if raw is not None else ""
            if (
                column.name == "parentSourcedId"
                and (spec.entity, sourced_id) in self.dropped_parents
            ):
                continue
            if not value:
                if column.required and raw is not None:
                    self.log.error(
                        spec.name,
                        "the value is empty but required",
                        f"give every row its {column.name}",
                        row=row_number,
                        column=column.name,
                    )
                    failed = True
                continue
            try:
                converted = self._convert(spec, row_number, column, value)
            except _RowError:
                failed = True
                continue
            if column.field:
                data[column.field] = converted
        if failed:
            return None
        metadata = _metadata_of(row)
        if metadata:
            data["metadata"] = metadata
        data.setdefault("status", "active")
        data.setdefault("dateLastModified", self.now)
        return data

    def _convert(
        self, spec: FileSpec, row_number: int, column: Column, value: str, *, quiet: bool = False
    ) -> Any:
        def fail(problem: str, action: str) -> _RowError:
            if not quiet:
                self.log.error(spec.name, problem, action, row=row_number, column=column.name)
            return _RowError()

        kind = column.kind
        if kind in ("id", "text", "ignore"):
            return value
        if kind == "status":
            status = value.lower()
            if status == "inactive":  # 1.0's word; 1.1 says read it as tobedeleted
                return "tobedeleted"
            if status not in ("active", "tobedeleted"):
                raise fail(f"{value!r} is not a status", "use active or tobedeleted")
            return status
        if kind == "date":
            timed = re.fullmatch(
                r"(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?", value
            )
            if timed and not quiet:
                self.log.warning(
                    spec.name,
                    f"dates carry a time ({EXAMPLES}): read as the date alone",
                    "nothing to do; OneRoster writes these as YYYY-MM-DD",
                    row=row_number,
                    column=column.name,
                    example=value,
                )
            value = timed.group(1) if timed else value
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise fail(f"{value!r} is not a date", "write it as YYYY-MM-DD, e.g. 2025-08-01")
            try:
                date.fromisoformat(value)
            except ValueError:
                raise fail(f"{value!r} is not a date on the calendar", "correct it") from None
            return value
        if kind == "datetime":
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise fail(
                    f"{value!r} is not a date-time",
                    "write it as ISO 8601 in UTC, e.g. 2025-08-01T00:00:00.000Z",
                ) from None
            if len(value) > 10 and parsed.tzinfo is None:
                if not quiet:
                    self.log.warning(
                        spec.name,
                        f"date-times have no time zone ({EXAMPLES}): read as UTC",
                        "OneRoster date-times are UTC: end them with Z",
                        row=row_number,
                        column=column.name,
                        example=value,
                    )
                return value + "Z"
            return value
        if kind == "number":
            # float() also reads other scripts' digits, 1_000, 1e3, nan and inf: none is a
            # OneRoster number, and a NaN would not even survive the store's JSON.
            if not _DECIMAL.fullmatch(value):
                raise fail(
                    f"{value!r} is not a number",
                    "write it with the digits 0-9 and a point for decimals, e.g. 12.5",
                )
            return float(value)
        if kind == "flag":
            flag = value.lower()
            if flag not in ("true", "false"):
                raise fail(f"{value!r} is not true or false", "write true or false")
            return flag
        if kind == "list":
            return [item.strip() for item in value.split(",") if item.strip()]
        if kind == "userIds":
            ids = []
            for item in re.findall(r"\{([^}]*)\}", value) or [value]:
                kind_, sep, identifier = item.partition(":")
                if not sep or not kind_.strip():
                    raise fail(
                        f"{value!r} is not a list of {{type:identifier}} user ids",
                        "write them as {type:identifier},{type:identifier}",
                    )
                ids.append({"type": kind_.strip(), "identifier": identifier.strip()})
            return ids
        if kind in ("ref", "refs"):
            assert column.ref_type is not None
            targets = [v.strip() for v in value.split(",") if v.strip()]
            missing = [t for t in targets if not self.known(column.ref_type, t)]
            if any(
                column.ref_type in self.unreadable.entities
                or (column.ref_type, target) in self.unreadable.ids
                for target in missing
            ):
                raise _RowError()  # what could not be read is the error
            deleted = self.index.deletions.get(column.ref_type, {})
            for target in missing:
                if target in deleted:
                    problem = (
                        f"{column.ref_type} {target!r} is marked tobedeleted at row "
                        f"{deleted[target][0]} of {_file_of(column.ref_type)}"
                    )
                    action = "keep it, or delete this row too"
                else:
                    problem = (
                        f"no {column.ref_type} with sourcedId {target!r} in "
                        f"{_file_of(column.ref_type)}"
                    )
                    action = "add it there or correct the reference"
                self.log.error(spec.name, problem, action, row=row_number, column=column.name)
            if missing:
                raise _RowError()
            refs = [{"sourcedId": t, "type": column.ref_type} for t in targets]
            return refs[0] if kind == "ref" else refs
        raise AssertionError(f"unknown column kind {kind}")

    def _complete(self, spec: FileSpec, row_number: int, data: dict[str, Any]) -> bool:
        """What a row cannot say on its own: a user's roles, a class's school, a 1.2 lineItem's
        school, children. False when the row cannot be loaded (logged)."""
        entity = spec.entity
        children = self.index.children.get((entity, data["sourcedId"]))
        if children:
            data["children"] = [{"sourcedId": c, "type": entity} for c in children]
        if entity == "class":
            data["school"] = {"sourcedId": self.class_school[data["sourcedId"]], "type": "org"}
        if entity in ("enrollment", "lineItem") and "school" in data:
            self._nearest_school_of(spec, row_number, data)
        if entity == "user" and not self._user_roles(spec, row_number, data):
            return False
        if entity == "lineItem" and "school" not in data:
            school = self.class_school.get(data["class"]["sourcedId"])
            if school:
                data["school"] = {"sourcedId": school, "type": "org"}
        return True

    def _nearest_school_of(self, spec: FileSpec, row_number: int, data: dict[str, Any]) -> None:
        """An enrolment's or lineItem's school, when it names a department or district: the
        nearest school above it (or its class's), as for classes."""
        named = data["school"]["sourcedId"]
        school = self.nearest_school(named) or self.class_school.get(data["class"]["sourcedId"])
        if school and school != named:
            data["school"] = {"sourcedId": school, "type": "org"}
            what = "enrolments" if spec.entity == "enrollment" else "lineItems"
            self.log.warning(
                spec.name,
                f"{what} name {self._describe_org(named)} as their school (rows: {COUNT}); "
                "their school was taken as the nearest school above it (or their class's)",
                "nothing to do, or name the school itself in schoolSourcedId",
                row=row_number,
                column="schoolSourcedId",
            )

    def _user_roles(self, spec: FileSpec, row_number: int, data: dict[str, Any]) -> bool:
        if self.version == "1.1":
            role = data.pop("_role")
            role = _ROLE_1_1_TO_1_2.get(role, role)
            orgs = data.pop("_orgs")
            data["roles"] = [
                {"roleType": "primary", "role": role, "org": org} for org in orgs or []
            ]
        else:
            roles = self.index.roles.get(data["sourcedId"])
            if not roles and self.modes.get("user") == "delta" and self._stored["user"]:
                stored = self.store.get("user", data["sourcedId"])
                roles = (stored or {}).get("roles")
            if not roles:
                self.log.error(
                    spec.name,
                    f"user {data['sourcedId']!r} has no row in roles.csv",
                    "every 1.2 user needs at least one role: add it to roles.csv",
                    row=row_number,
                    column="sourcedId",
                )
                return False
            data["roles"] = roles
        if not data.get("email"):
            role = str(data["roles"][0].get("role", "user")) if data["roles"] else "user"
            self.log.warning(
                spec.name,
                f"{role}s without an email: {COUNT} ({EXAMPLES}); they were loaded",
                "sislink matches people by email first: add theirs in the SIS if they are to "
                "be matched",
                row=row_number,
                column="email",
                example=data["sourcedId"],
            )
        return True

    def _model_errors(self, spec: FileSpec, row_number: int, exc: ValidationError) -> None:
        for error in exc.errors():
            location = error.get("loc", ())
            top = str(location[0]) if location else ""
            column = next((c.name for c in spec.columns if c.field == top and top), None)
            if top == "roles":
                column = "role" if self.version == "1.1" else "roles.csv"
            self.log.error(
                spec.name,
                f"{error.get('msg', 'invalid value')} ({'.'.join(str(p) for p in location)})",
                "correct the value",
                row=row_number,
                column=column,
            )


_WORDS = {
    "enrollment": ("enrolment", None),
    "lineItem": ("lineItem", None),
    "result": ("result", None),
    "category": ("category", "categories"),
}
_ENTITY_FILES = tuple(spec.entity for spec in _files("1.2"))
"""The kinds a bundle's data files hold (1.1's files are the same kinds)."""
_FILE_NAMES = {spec.entity: spec.name for spec in _files("1.2")}
_CLASSES_FILE = next(s for s in _files("1.2") if s.entity == "class")
_ENROLLMENTS_FILE = next(s for s in _files("1.2") if s.entity == "enrollment")
_DATE_LAST_MODIFIED = Column("dateLastModified", "dateLastModified", "datetime")


def _metadata_of(row: dict[str, str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for key, raw in row.items():
        if not key.startswith("metadata.") or not raw.strip():
            continue
        *parents, leaf = key[len("metadata.") :].split(".")
        node = metadata
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = raw.strip()
    return metadata


def _file_of(entity: str) -> str:
    return _FILE_NAMES.get(entity, f"{entity}s.csv")


def load_bundle(
    store: BundleStore, path: str | Path, *, root_url: str = DEFAULT_ROOT_URL
) -> BundleSummary:
    """Load a OneRoster 1.1 or 1.2 CSV bundle (zip or directory) into `store`, on top of what it
    holds (see the module's docstring for bulk and delta).

    Every row is checked first (columns, values, dates, references between files and to the
    store); only a bundle with no error is written. Raises CsvBundleError listing every error;
    returns the summary with every warning and note.
    """
    try:
        return _load_bundle(store, Path(path), root_url)
    except CsvBundleError as error:
        error.bundle = Path(path).name
        raise


def _load_bundle(store: BundleStore, path: Path, root_url: str) -> BundleSummary:
    log = ProblemLog()
    source = _Source(path)
    try:
        manifest = _read_manifest(source, log)
        if manifest is None:
            raise CsvBundleError(log.problems())
        version = _read_version(manifest, source, log)
        if not version:
            raise CsvBundleError(log.problems())
        plan, ignored = _read_modes(manifest, source, version, log)
        roles_mode = next((m for s, m in plan if s is _ROLES_FILE), None)
        data_plan = [(s, m) for s, m in plan if s is not _ROLES_FILE]
        loader = _Loader(source, version, root_url, store, log, {s.entity: m for s, m in data_plan})
        # Pass one: every sourcedId, so references can point forwards and across files.
        loader.index_ids(data_plan)
        if roles_mode:
            loader.index_roles(roles_mode)
        loader.decide()
        # Pass two: every row converted and validated; nothing is written yet.
        for spec, _ in data_plan:
            for _ in loader.records(spec, counting=True):
                pass
            for _ in loader.deletions(spec.entity):
                pass
        for _ in loader.made_course_records():
            pass
        loader.report_skipped_classes()
        if log.has_errors:
            raise CsvBundleError(log.problems())
        # Pass three: write.
        counts: dict[str, int] = {}
        marked: dict[str, int] = {}
        for spec, mode in data_plan:
            written: set[str] = set()
            counts[spec.entity] = store.insert_many(
                spec.entity, _noting_ids(loader.records(spec), written)
            )
            if mode == "bulk" and loader._stored[spec.entity]:
                # Kept: what this file wrote (not the rows skipped with their class), and the
                # courses made from classes, written below.
                kept = written | (set(loader.made_courses) if spec.entity == "course" else set())
                stale = _stale(store, spec.entity, kept)
                if stale:
                    marked[spec.entity] = store.insert_many(spec.entity, stale)
                    rows = loader.index.ids[spec.entity]
                    skipped = sum(1 for record in stale if record["sourcedId"] in rows)
                    log.note(
                        spec.name,
                        f"records loaded before that this bulk file does not have: "
                        f"{len(stale)}; marked tobedeleted"
                        + (f" (of them, {skipped} in the file but skipped)" if skipped else ""),
                        "nothing to do (a bulk file is the whole set)",
                    )
            deleted = store.insert_many(spec.entity, list(loader.deletions(spec.entity)))
            if deleted:
                marked[spec.entity] = marked.get(spec.entity, 0) + deleted
        made = store.insert_many("course", loader.made_course_records())
        if made:
            counts["course"] = counts.get("course", 0) + made
        return BundleSummary(
            version=version,
            counts=counts,
            skipped_files=tuple(ignored),
            source_system=manifest.values.get("source.systemName", ""),
            problems=log.problems(),
            marked_deleted=marked,
            name=path.name,
        )
    finally:
        source.close()


def _noting_ids(records: Iterable[dict[str, Any]], ids: set[str]) -> Iterator[dict[str, Any]]:
    """The records, each one's sourcedId added to `ids` as it passes."""
    for record in records:
        ids.add(record["sourcedId"])
        yield record


def _stale(store: BundleStore, entity: str, kept: set[str]) -> list[dict[str, Any]]:
    """Records of the store that a bulk file of their kind leaves out, marked tobedeleted."""
    now = format_datetime(utc_now())
    stale = []
    for record in store.iter_all(entity):
        if record["sourcedId"] not in kept and record.get("status") != "tobedeleted":
            record["status"] = "tobedeleted"
            record["dateLastModified"] = now
            stale.append(record)
    return stale


def load_bundles(
    store: BundleStore, paths: Sequence[str | Path], *, root_url: str = DEFAULT_ROOT_URL
) -> list[BundleSummary]:
    """Load bundles one after the other, each on top of the ones before (a bulk bundle, then
    its deltas). Raises CsvBundleError, naming the bundle, at the first that has errors; its
    `loaded` holds the summaries of the bundles loaded before it."""
    summaries: list[BundleSummary] = []
    for path in paths:
        try:
            summaries.append(load_bundle(store, path, root_url=root_url))
        except CsvBundleError as error:
            if len(paths) > 1:
                error.args = (f"{Path(path).name}: {error.args[0]}",)
            error.loaded = tuple(summaries)
            raise
    return summaries


# ---- writing a bundle -------------------------------------------------------------------------


def _cell(column: Column, value: Any) -> str:
    if value is None:
        return ""
    if column.kind == "ref":
        return str(value.get("sourcedId", "")) if isinstance(value, dict) else str(value)
    if column.kind == "refs":
        return ",".join(str(v.get("sourcedId", "")) for v in value)
    if column.kind == "list":
        return ",".join(str(v) for v in value)
    if column.kind == "userIds":
        return ",".join(f"{{{v['type']}:{v['identifier']}}}" for v in value)
    if column.kind == "number":
        return repr(float(value))
    return str(value)


def _exported(column: Column, record: dict[str, Any]) -> Any:
    if column.kind == "ignore" or not column.field or column.field.startswith("_"):
        return None
    return record.get(column.field)


def _flatten(metadata: dict[str, Any], prefix: str = "metadata") -> Iterator[tuple[str, str]]:
    for key, value in metadata.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}.{key}")
        elif value is not None:
            yield f"{prefix}.{key}", str(value)


def _user_extras(version: str) -> Callable[[dict[str, Any]], dict[str, str]]:
    def extras(record: dict[str, Any]) -> dict[str, str]:
        if version != "1.1":
            return {}
        roles = record.get("roles") or []
        primary = next(
            (r for r in roles if r.get("roleType") == "primary"), roles[0] if roles else {}
        )
        orgs: list[str] = []
        for role in roles:
            org = role.get("org", {}).get("sourcedId")
            if org and org not in orgs:
                orgs.append(org)
        return {"role": str(primary.get("role", "")), "orgSourcedIds": ",".join(orgs)}

    return extras


def _write_csv(
    archive: zipfile.ZipFile,
    name: str,
    header: list[str],
    rows: Iterable[list[str]],
) -> int:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    written = 0
    with (
        archive.open(info, "w") as raw,
        io.TextIOWrapper(raw, encoding="utf-8", newline="") as text,
    ):
        writer = csv.writer(text, lineterminator="\r\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            written += 1
    return written


def export_bundle(store: BundleStore, path: str | Path, version: str = "1.2") -> dict[str, int]:
    """Write the store as a OneRoster CSV bundle (zip) of `version`; returns rows per file.

    The same store always gives the same bytes, and `load_bundle` reads the bundle back into
    the same records (1.2; a 1.1 bundle loses what 1.1 cannot say, such as category weights).
    """
    if version not in ("1.1", "1.2"):
        raise ValueError(f"Unknown OneRoster version {version!r}: use 1.1 or 1.2")
    target = Path(path)
    counts: dict[str, int] = {}
    written_files: set[str] = set()
    with zipfile.ZipFile(target, "w") as archive:
        for spec in _files(version):
            metadata_columns = sorted(
                {
                    key
                    for r in store.iter_all(spec.entity)
                    for key, _ in _flatten(r.get("metadata") or {})
                }
            )
            columns = list(spec.columns)
            header = [c.name for c in columns] + metadata_columns
            extras = _user_extras(version) if spec.entity == "user" else None

            def rows(
                spec: FileSpec = spec,
                columns: list[Column] = columns,
                metadata_columns: list[str] = metadata_columns,
                extras: Callable[[dict[str, Any]], dict[str, str]] | None = extras,
            ) -> Iterator[list[str]]:
                for record in store.iter_all(spec.entity):
                    special = extras(record) if extras else {}
                    flat = dict(_flatten(record.get("metadata") or {}))
                    yield [
                        special[c.name] if c.name in special else _cell(c, _exported(c, record))
                        for c in columns
                    ] + [flat.get(m, "") for m in metadata_columns]

            counts[spec.name] = _write_csv(archive, spec.name, header, rows())
            written_files.add(spec.manifest_key[5:])
        if version == "1.2":
            counts["roles.csv"] = _write_csv(
                archive, "roles.csv", [c.name for c in _ROLES], _role_rows(store)
            )
            written_files.add("roles")
        manifest = [
            ["manifest.version", "1.0"],
            ["oneroster.version", version],
            *(
                [f"file.{name}", "bulk" if name in written_files else "absent"]
                for name in _ALL_MANIFEST_FILES[version]
            ),
            ["source.systemName", "sislink"],
            ["source.systemCode", "sislink-provider"],
        ]
        _write_csv(archive, "manifest.csv", ["propertyName", "value"], manifest)
    return counts


def _role_rows(store: BundleStore) -> Iterator[list[str]]:
    for user in store.iter_all("user"):
        for i, role in enumerate(user.get("roles") or [], start=1):
            yield [
                f"{user['sourcedId']}-role-{i}",
                str(user.get("status", "active")),
                str(user.get("dateLastModified", "")),
                str(user["sourcedId"]),
                str(role.get("roleType", "")),
                str(role.get("role", "")),
                str(role.get("beginDate", "")),
                str(role.get("endDate", "")),
                str(role.get("org", {}).get("sourcedId", "")),
            ]
