"""OneRoster 1.1 and 1.2 CSV bundles: load one into the provider's store, export the store as one.

A bundle is a zip (or a directory) with `manifest.csv` and the data files it declares `bulk`:
orgs, academicSessions, courses, classes, users (1.2: plus roles), enrollments, categories,
lineItems, results, with the official CSV binding's column names. Columns are found by name,
so their order does not matter; unknown columns are ignored and `metadata.*` columns become the
object's metadata (a category's `metadata.classSourcedId` ties it to a class).

Left out, and said so when met: `delta` files (a bundle must be bulk), and the files a SIS
export rarely carries: demographics, resources, classResources, courseResources,
userResources, userProfiles, scoreScales and the learning-objective/score-scale link files
(they are skipped and listed in `BundleSummary.skipped_files`). Passwords in users.csv are
never stored. Columns the models do not carry (subjectCodes, userMasterIdentifier,
preferredMiddleName/FamilyName, pronouns) are dropped.

A bad bundle raises `CsvBundleError` naming the file, the row (spreadsheet numbering: the
header is row 1) and the column, and nothing is written: every row is checked, references
included, before the first record goes into the store.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from pydantic import ValidationError

from sislink.oneroster.models import format_datetime, utc_now
from sislink.oneroster.versions import spec_for

DEFAULT_ROOT_URL = "http://localhost/ims/oneroster"
"""Root the loaded GUIDRef hrefs hang from (the server rebuilds hrefs for its own host)."""

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed entry times: the same store exports the same bytes


class BundleStore(Protocol):
    """What the loader and exporter need of a store (`ProviderStore` has it)."""

    def insert_many(self, entity: str, records: Iterable[dict[str, Any]]) -> int: ...

    def iter_all(self, entity: str) -> Iterator[dict[str, Any]]: ...


class CsvBundleError(ValueError):
    """A bundle that cannot be loaded: where (file, row, column) and what was wrong."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.file, self.row, self.column, self.problem = file, row, column, problem
        where = ", ".join(
            part
            for part in (
                file,
                None if row is None else f"row {row}",
                None if column is None else f"column {column}",
            )
            if part
        )
        super().__init__(f"{where}: {problem}" if where else problem)


@dataclass(frozen=True)
class BundleSummary:
    """What a load read: the bundle's OneRoster version, records per entity, files skipped."""

    version: str
    counts: dict[str, int]
    skipped_files: tuple[str, ...] = ()
    source_system: str = ""


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
# 1.1 user roles that 1.2 renamed; 1.2's RoleDType has no plain "administrator".
_ROLE_1_1_TO_1_2 = {"administrator": "siteAdministrator"}


# ---- reading a bundle -------------------------------------------------------------------------


class _Source:
    """The files of a bundle, from a zip or a directory, by base name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._names: dict[str, str] = {}
        if path.is_dir():
            self._names = {p.name: str(p) for p in path.iterdir() if p.is_file()}
        elif path.is_file():
            try:
                self._zip = zipfile.ZipFile(path)
            except zipfile.BadZipFile:
                raise CsvBundleError(
                    f"{path.name} is not a zip file; give a OneRoster CSV bundle (.zip) or a "
                    "directory holding manifest.csv and the data files"
                ) from None
            for info in self._zip.infolist():
                if not info.is_dir():
                    self._names.setdefault(Path(info.filename).name, info.filename)
        else:
            raise CsvBundleError(f"{path} does not exist; give the path of a CSV bundle")

    def has(self, name: str) -> bool:
        return name in self._names

    @contextmanager
    def open(self, name: str) -> Iterator[IO[str]]:
        member = self._names[name]
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


def _rows(source: _Source, spec: FileSpec) -> Iterator[tuple[int, dict[str, str]]]:
    """(spreadsheet row number, row) for every data row, after checking the header."""
    with source.open(spec.name) as handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise CsvBundleError(
                "the file is empty; it needs at least its header row", file=spec.name, row=1
            ) from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CsvBundleError(f"unreadable CSV ({exc})", file=spec.name, row=1) from None
        for required in spec.required:
            if required not in header:
                raise CsvBundleError(
                    f"the column is missing from the header; {spec.name} needs "
                    f"{', '.join(spec.required)}",
                    file=spec.name,
                    row=1,
                    column=required,
                )
        row_number = 1
        try:
            for values in reader:
                row_number += 1
                if not values or values == [""]:
                    continue
                if len(values) != len(header):
                    raise CsvBundleError(
                        f"the row has {len(values)} values but the header has {len(header)} "
                        "columns; quote values that contain commas",
                        file=spec.name,
                        row=row_number,
                    )
                yield row_number, dict(zip(header, values, strict=True))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CsvBundleError(
                f"unreadable CSV ({exc})", file=spec.name, row=row_number + 1
            ) from None


def _read_manifest(source: _Source) -> dict[str, str]:
    if not source.has("manifest.csv"):
        raise CsvBundleError(
            "the bundle has no manifest.csv; a OneRoster CSV bundle starts with a manifest "
            "(propertyName,value) naming oneroster.version and each file.* as bulk or absent",
            file="manifest.csv",
        )
    manifest: dict[str, str] = {}
    spec = FileSpec(
        "manifest",
        "manifest.csv",
        "",
        (
            Column("propertyName", "", "text", required=True),
            Column("value", "", "text", required=True),
        ),
    )
    for _, row in _rows(source, spec):
        manifest[row["propertyName"].strip()] = row["value"].strip()
    return manifest


@dataclass
class _Index:
    """What pass one learns: every sourcedId per entity, and each class's school."""

    ids: dict[str, dict[str, int]] = field(default_factory=dict)  # entity -> id -> row
    class_school: dict[str, str] = field(default_factory=dict)
    roles: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # 1.2 user -> roles
    # CSV says only `parentSourcedId`; the API also lists each org's and session's children.
    children: dict[tuple[str, str], list[str]] = field(default_factory=dict)


class _Loader:
    def __init__(self, source: _Source, version: str, root_url: str) -> None:
        self.source = source
        self.version = version
        self.spec = spec_for("1.2")
        self.root_url = root_url
        self.index = _Index()
        self.now = format_datetime(utc_now())

    # -- pass one: ids --

    def index_ids(self, specs: Iterable[FileSpec]) -> None:
        for spec in specs:
            seen: dict[str, int] = {}
            for row_number, row in _rows(self.source, spec):
                sourced_id = row["sourcedId"].strip()
                if not sourced_id:
                    raise CsvBundleError(
                        "sourcedId is empty; every row needs one",
                        file=spec.name,
                        row=row_number,
                        column="sourcedId",
                    )
                if sourced_id in seen:
                    raise CsvBundleError(
                        f"sourcedId {sourced_id!r} is already used at row {seen[sourced_id]}; "
                        "sourcedIds must be unique within a file",
                        file=spec.name,
                        row=row_number,
                        column="sourcedId",
                    )
                seen[sourced_id] = row_number
                if spec.entity == "class":
                    self.index.class_school[sourced_id] = row.get("schoolSourcedId", "").strip()
                parent = (row.get("parentSourcedId") or "").strip()
                if spec.entity in ("org", "academicSession") and parent:
                    self.index.children.setdefault((spec.entity, parent), []).append(sourced_id)
            self.index.ids[spec.entity] = seen

    def index_roles(self) -> None:
        """1.2: every user's roles from roles.csv (checked like any other file)."""
        for row_number, row in _rows(self.source, _ROLES_FILE):
            record = self._convert_row(_ROLES_FILE, row_number, row)
            user_id = record["_user"]["sourcedId"]
            keys = ("roleType", "role", "org", "beginDate", "endDate")
            role: dict[str, Any] = {key: record[key] for key in keys if key in record}
            self.index.roles.setdefault(user_id, []).append(role)

    # -- pass two and three: rows to records --

    def records(self, spec: FileSpec) -> Iterator[dict[str, Any]]:
        for row_number, row in _rows(self.source, spec):
            data = self._convert_row(spec, row_number, row)
            self._complete(spec, row_number, row, data)
            try:
                model = self.spec.from_wire(spec.entity, data)
            except ValidationError as exc:
                raise self._model_error(spec, row_number, exc) from None
            yield self.spec.to_wire(model, self.root_url)

    def _convert_row(self, spec: FileSpec, row_number: int, row: dict[str, str]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for column in spec.columns:
            raw = row.get(column.name)
            value = raw.strip() if raw is not None else ""
            if not value:
                if column.required and raw is not None:
                    raise CsvBundleError(
                        "the value is empty but required",
                        file=spec.name,
                        row=row_number,
                        column=column.name,
                    )
                continue
            converted = self._convert(spec, row_number, column, value)
            if column.field:
                data[column.field] = converted
        metadata = _metadata_of(row)
        if metadata:
            data["metadata"] = metadata
        data.setdefault("status", "active")
        data.setdefault("dateLastModified", self.now)
        return data

    def _convert(self, spec: FileSpec, row_number: int, column: Column, value: str) -> Any:
        def fail(problem: str) -> CsvBundleError:
            return CsvBundleError(problem, file=spec.name, row=row_number, column=column.name)

        kind = column.kind
        if kind in ("id", "text", "ignore"):
            return value
        if kind == "status":
            status = value.lower()
            if status == "inactive":  # 1.0's word; 1.1 says read it as tobedeleted
                return "tobedeleted"
            if status not in ("active", "tobedeleted"):
                raise fail(f"{value!r} is not a status; use active or tobedeleted")
            return status
        if kind == "date":
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                raise fail(f"{value!r} is not a date; write it as YYYY-MM-DD, e.g. 2025-08-01")
            try:
                date.fromisoformat(value)
            except ValueError:
                raise fail(f"{value!r} is not a date on the calendar") from None
            return value
        if kind == "datetime":
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise fail(
                    f"{value!r} is not a date-time; write it as ISO 8601 in UTC, "
                    "e.g. 2025-08-01T00:00:00.000Z"
                ) from None
            if len(value) > 10 and parsed.tzinfo is None:
                raise fail(f"{value!r} has no time zone; OneRoster date-times are UTC (end with Z)")
            return value
        if kind == "number":
            try:
                return float(value)
            except ValueError:
                raise fail(f"{value!r} is not a number") from None
        if kind == "flag":
            flag = value.lower()
            if flag not in ("true", "false"):
                raise fail(f"{value!r} is not true or false")
            return flag
        if kind == "list":
            return [item.strip() for item in value.split(",") if item.strip()]
        if kind == "userIds":
            ids = []
            for item in re.findall(r"\{([^}]*)\}", value) or [value]:
                kind_, sep, identifier = item.partition(":")
                if not sep or not kind_.strip():
                    raise fail(f"{value!r} is not a list of {{type:identifier}} user ids")
                ids.append({"type": kind_.strip(), "identifier": identifier.strip()})
            return ids
        if kind in ("ref", "refs"):
            assert column.ref_type is not None
            targets = [v.strip() for v in value.split(",") if v.strip()]
            known = self.index.ids.get(column.ref_type)
            for target in targets:
                if known is None or target not in known:
                    raise fail(
                        f"no {column.ref_type} with sourcedId {target!r} in "
                        f"{_file_of(column.ref_type)}; add it there or correct the reference"
                    )
            refs = [{"sourcedId": t, "type": column.ref_type} for t in targets]
            return refs[0] if kind == "ref" else refs
        raise AssertionError(f"unknown column kind {kind}")

    def _complete(
        self, spec: FileSpec, row_number: int, row: dict[str, str], data: dict[str, Any]
    ) -> None:
        """What a row cannot say on its own: a user's roles, a 1.2 lineItem's school, children."""
        children = self.index.children.get((spec.entity, data["sourcedId"]))
        if children:
            data["children"] = [{"sourcedId": c, "type": spec.entity} for c in children]
        if spec.entity == "user":
            if self.version == "1.1":
                role = data.pop("_role")
                role = _ROLE_1_1_TO_1_2.get(role, role)
                orgs = data.pop("_orgs")
                data["roles"] = [
                    {"roleType": "primary", "role": role, "org": org} for org in orgs or []
                ]
            else:
                roles = self.index.roles.get(data["sourcedId"])
                if not roles:
                    raise CsvBundleError(
                        f"user {data['sourcedId']!r} has no row in roles.csv; every 1.2 user "
                        "needs at least one role",
                        file=spec.name,
                        row=row_number,
                        column="sourcedId",
                    )
                data["roles"] = roles
        if spec.entity == "lineItem" and "school" not in data:
            school = self.index.class_school.get(data["class"]["sourcedId"])
            if school:
                data["school"] = {"sourcedId": school, "type": "org"}

    def _model_error(self, spec: FileSpec, row_number: int, exc: ValidationError) -> CsvBundleError:
        error = exc.errors()[0]
        location = error.get("loc", ())
        top = str(location[0]) if location else ""
        column = next((c.name for c in spec.columns if c.field == top and top), None)
        if top == "roles":
            column = "role" if self.version == "1.1" else "roles.csv"
        return CsvBundleError(
            f"{error.get('msg', 'invalid value')} ({'.'.join(str(p) for p in location)})",
            file=spec.name,
            row=row_number,
            column=column,
        )


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
    return {spec.entity: spec.name for spec in _files("1.2")}.get(entity, f"{entity}s.csv")


def load_bundle(
    store: BundleStore, path: str | Path, *, root_url: str = DEFAULT_ROOT_URL
) -> BundleSummary:
    """Load a OneRoster 1.1 or 1.2 CSV bundle (zip or directory) into `store`.

    Every row is checked first (columns, values, dates, references between files); only a
    bundle with no error is written. Raises CsvBundleError naming file, row and column.
    """
    source = _Source(Path(path))
    try:
        manifest = _read_manifest(source)
        version = manifest.get("oneroster.version", "")
        if version not in ("1.1", "1.2"):
            raise CsvBundleError(
                f"oneroster.version is {version!r}; this loader reads 1.1 and 1.2 bundles",
                file="manifest.csv",
                column="value",
            )
        present: list[FileSpec] = []
        skipped: list[str] = []
        declared = {k[5:]: v.lower() for k, v in manifest.items() if k.startswith("file.")}
        for name, mode in sorted(declared.items()):
            if mode == "delta":
                raise CsvBundleError(
                    f"file.{name} is declared delta; only bulk bundles can be loaded. "
                    "Export a full (bulk) bundle from the SIS",
                    file="manifest.csv",
                )
            if mode not in ("bulk", "absent"):
                raise CsvBundleError(
                    f"file.{name} is {mode!r}; use bulk, delta or absent", file="manifest.csv"
                )
        for spec in _files(version):
            if declared.get(spec.manifest_key[5:]) == "bulk":
                if not source.has(spec.name):
                    raise CsvBundleError(
                        f"manifest.csv declares {spec.manifest_key}=bulk but the bundle has no "
                        f"{spec.name}; add the file or declare it absent",
                        file=spec.name,
                    )
                present.append(spec)
        for name, mode in sorted(declared.items()):
            known = {s.manifest_key[5:] for s in _files(version)} | {"roles"}
            if mode == "bulk" and name not in known:
                skipped.append(f"{name}.csv")
        has_roles = version == "1.2" and declared.get("roles") == "bulk"
        if has_roles and not source.has("roles.csv"):
            raise CsvBundleError(
                "manifest.csv declares file.roles=bulk but the bundle has no roles.csv",
                file="roles.csv",
            )
        if version == "1.2" and any(s.entity == "user" for s in present) and not has_roles:
            raise CsvBundleError(
                "a 1.2 bundle with users needs roles.csv (declared file.roles=bulk): "
                "1.2 users carry their roles there",
                file="roles.csv",
            )

        loader = _Loader(source, version, root_url)
        # Pass one: every sourcedId, so references can point forwards and across files.
        loader.index_ids(present)
        if has_roles:
            loader.index_ids([_ROLES_FILE])
            loader.index_roles()
        # Pass two: every row converted and validated; nothing is written yet.
        for spec in present:
            for _ in loader.records(spec):
                pass
        # Pass three: write.
        counts: dict[str, int] = {}
        for spec in present:
            counts[spec.entity] = store.insert_many(spec.entity, loader.records(spec))
        return BundleSummary(
            version=version,
            counts=counts,
            skipped_files=tuple(skipped),
            source_system=manifest.get("source.systemName", ""),
        )
    finally:
        source.close()


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
