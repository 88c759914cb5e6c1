"""OneRoster CSV bundles in the shapes other systems write them (issue 14, item 9), written by the
tests themselves: a small district, and one function per shape that adds it."""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HEADERS_1_1 = {
    "orgs.csv": "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId",
    "academicSessions.csv": "sourcedId,status,dateLastModified,title,type,startDate,endDate,"
    "parentSourcedId,schoolYear",
    "courses.csv": "sourcedId,status,dateLastModified,schoolYearSourcedId,title,courseCode,grades,"
    "orgSourcedId,subjects,subjectCodes",
    "classes.csv": "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,"
    "classType,location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods",
    "users.csv": "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,"
    "userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,"
    "password",
    "enrollments.csv": "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,"
    "userSourcedId,role,primary,beginDate,endDate",
    "demographics.csv": "sourcedId,status,dateLastModified,birthDate,sex",
}
DATA_FILES = ("orgs", "academicSessions", "courses", "classes", "users", "enrollments")
OTHER_FILES = (
    "categories",
    "lineItems",
    "results",
    "demographics",
    "resources",
    "classResources",
    "courseResources",
)


@dataclass
class Bundle:
    """A 1.1 bundle: rows per file (dicts by column name; `_trailing` adds that many empty
    values past the header), manifest values, and files written as they are (in place of the
    rows of a file of the same name)."""

    rows: dict[str, list[dict[str, str | int]]] = field(default_factory=dict)
    manifest: dict[str, str] = field(default_factory=dict)
    extra_files: dict[str, str] = field(default_factory=dict)

    def add(self, file: str, **values: str | int) -> None:
        self.rows.setdefault(file, []).append(values)

    def write(self, path: Path) -> Path:
        manifest = {
            "manifest.version": "1.0",
            "oneroster.version": "1.1",
            **{
                f"file.{name}": "bulk" if f"{name}.csv" in self.rows else "absent"
                for name in (*DATA_FILES, *OTHER_FILES)
            },
            "source.systemName": "Test SIS",
            "source.systemCode": "test",
            **self.manifest,
        }
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(
                "manifest.csv",
                _csv([["propertyName", "value"], *([k, v] for k, v in manifest.items())]),
            )
            for name, rows in self.rows.items():
                if name in self.extra_files:
                    continue  # written as given, below
                header = HEADERS_1_1[name].split(",")
                lines: list[list[str]] = [header]
                for row in rows:
                    trailing = int(row.get("_trailing", 0))
                    lines.append([str(row.get(c, "")) for c in header] + [""] * trailing)
                archive.writestr(name, _csv(lines))
            for name, text in self.extra_files.items():
                archive.writestr(name, text)
        return path


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def district() -> Bundle:
    """One district, one school, a school year and its term, a course, a class, a teacher and two
    students: a bulk 1.1 bundle with blank status and dateLastModified, as the binding asks."""
    b = Bundle()
    b.add("orgs.csv", sourcedId="dist-1", name="Lakeside District", type="district")
    b.add(
        "orgs.csv",
        sourcedId="sch-north",
        name="North High",
        type="school",
        parentSourcedId="dist-1",
    )
    b.add(
        "academicSessions.csv",
        sourcedId="sy-2026",
        title="2025-2026",
        type="schoolYear",
        startDate="2025-08-01",
        endDate="2026-06-30",
        schoolYear="2026",
    )
    b.add(
        "academicSessions.csv",
        sourcedId="term-fall",
        title="Fall 2025",
        type="term",
        startDate="2025-08-01",
        endDate="2025-12-20",
        parentSourcedId="sy-2026",
        schoolYear="2026",
    )
    b.add(
        "courses.csv",
        sourcedId="crs-bio",
        title="Biology",
        courseCode="BIO",
        orgSourcedId="sch-north",
        schoolYearSourcedId="sy-2026",
    )
    b.add(
        "classes.csv",
        sourcedId="cls-bio-1",
        title="Biology 1",
        courseSourcedId="crs-bio",
        classType="scheduled",
        schoolSourcedId="sch-north",
        termSourcedIds="term-fall",
    )
    for user_id, role, given in (
        ("tch-1", "teacher", "Tess"),
        ("stu-1", "student", "Sam"),
        ("stu-2", "student", "Sol"),
    ):
        b.add(
            "users.csv",
            sourcedId=user_id,
            enabledUser="true",
            orgSourcedIds="sch-north",
            role=role,
            givenName=given,
            familyName="Lee",
            identifier=user_id.upper(),
            email=f"{user_id}@lakeside.example",
            username=user_id,
        )
    for enrolment_id, user_id, role in (
        ("enr-t1", "tch-1", "teacher"),
        ("enr-s1", "stu-1", "student"),
        ("enr-s2", "stu-2", "student"),
    ):
        b.add(
            "enrollments.csv",
            sourcedId=enrolment_id,
            classSourcedId="cls-bio-1",
            schoolSourcedId="sch-north",
            userSourcedId=user_id,
            role=role,
            primary="true" if role == "teacher" else "false",
        )
    return b


# ---- the shapes -------------------------------------------------------------------------------


def org_with_missing_parent(b: Bundle) -> None:
    b.add(
        "orgs.csv",
        sourcedId="sch-south",
        name="South High",
        type="school",
        parentSourcedId="dist-gone",
    )


def class_under_a_department(b: Bundle) -> None:
    b.add(
        "orgs.csv",
        sourcedId="dept-sci",
        name="Science",
        type="department",
        parentSourcedId="sch-north",
    )
    b.add(
        "classes.csv",
        sourcedId="cls-chem-1",
        title="Chemistry 1",
        courseSourcedId="crs-bio",
        schoolSourcedId="dept-sci",
        termSourcedIds="term-fall",
    )
    b.add(
        "enrollments.csv",
        sourcedId="enr-chem-s1",
        classSourcedId="cls-chem-1",
        schoolSourcedId="dept-sci",
        userSourcedId="stu-1",
        role="student",
    )


def class_under_a_district(b: Bundle) -> None:
    b.add(
        "classes.csv",
        sourcedId="cls-online-1",
        title="Online Study Hall",
        courseSourcedId="crs-bio",
        schoolSourcedId="dist-1",
        termSourcedIds="term-fall",
    )
    b.add(
        "enrollments.csv",
        sourcedId="enr-online-t1",
        classSourcedId="cls-online-1",
        schoolSourcedId="dist-1",
        userSourcedId="tch-1",
        role="teacher",
    )
    b.add(
        "enrollments.csv",
        sourcedId="enr-online-s2",
        classSourcedId="cls-online-1",
        schoolSourcedId="dist-1",
        userSourcedId="stu-2",
        role="student",
    )


def class_in_a_semester(b: Bundle) -> None:
    b.add(
        "academicSessions.csv",
        sourcedId="sem-spring",
        title="Spring 2026",
        type="semester",
        startDate="2026-01-05",
        endDate="2026-06-30",
        parentSourcedId="sy-2026",
        schoolYear="2026",
    )
    b.add(
        "classes.csv",
        sourcedId="cls-art-1",
        title="Art 1",
        courseSourcedId="crs-bio",
        schoolSourcedId="sch-north",
        termSourcedIds="sem-spring",
    )


def class_without_its_course(b: Bundle) -> None:
    b.add(
        "classes.csv",
        sourcedId="cls-music-1",
        title="Choir",
        courseSourcedId="crs-music",
        classCode="MUS-1",
        grades="09,10",
        schoolSourcedId="sch-north",
        termSourcedIds="term-fall",
    )


def rows_with_trailing_empty_columns(b: Bundle) -> None:
    for row in b.rows["users.csv"][:2]:
        row["_trailing"] = 2


def blank_manifest_values(b: Bundle) -> None:
    b.manifest["manifest.version"] = ""
    b.manifest["file.resources"] = ""


def files_the_loader_ignores(b: Bundle) -> None:
    b.manifest["file.demographics"] = "bulk"
    b.add("demographics.csv", sourcedId="stu-1", birthDate="2010-01-01", sex="female")
    b.extra_files["README.txt"] = "Exported by Test SIS\r\n"


def users_without_email(b: Bundle) -> None:
    b.add(
        "users.csv",
        sourcedId="stu-3",
        enabledUser="true",
        orgSourcedIds="sch-north",
        role="student",
        givenName="Sky",
        familyName="Park",
        identifier="S3",
    )
    b.add(
        "users.csv",
        sourcedId="tch-2",
        enabledUser="true",
        orgSourcedIds="sch-north",
        role="teacher",
        givenName="Tom",
        familyName="Ng",
        identifier="T2",
    )


EVERY_BULK_SHAPE = (
    org_with_missing_parent,
    class_under_a_department,
    class_under_a_district,
    class_in_a_semester,
    class_without_its_course,
    rows_with_trailing_empty_columns,
    blank_manifest_values,
    files_the_loader_ignores,
    users_without_email,
)


def delta_on_top() -> Bundle:
    """A delta bundle for `district()`: stu-2 and enr-s2 deleted, stu-1 renamed, stu-4 new and
    enrolled (that row with a blank status), and a deletion of someone the SIS never had."""
    b = Bundle()
    b.manifest.update({f"file.{name}": "absent" for name in DATA_FILES})
    b.manifest.update({"file.users": "delta", "file.enrollments": "delta"})
    stamp = "2026-01-10T08:00:00.000Z"
    b.add("users.csv", sourcedId="stu-2", status="tobedeleted", dateLastModified=stamp)
    b.add("users.csv", sourcedId="stu-ghost", status="tobedeleted", dateLastModified=stamp)
    b.add(
        "users.csv",
        sourcedId="stu-1",
        status="active",
        dateLastModified=stamp,
        enabledUser="true",
        orgSourcedIds="sch-north",
        role="student",
        givenName="Samuel",
        familyName="Lee",
        identifier="STU-1",
        email="stu-1@lakeside.example",
    )
    b.add(
        "users.csv",
        sourcedId="stu-4",
        status="active",
        dateLastModified=stamp,
        enabledUser="true",
        orgSourcedIds="sch-north",
        role="student",
        givenName="Ada",
        familyName="Cruz",
        identifier="STU-4",
        email="stu-4@lakeside.example",
    )
    b.add("enrollments.csv", sourcedId="enr-s2", status="tobedeleted", dateLastModified=stamp)
    b.add(
        "enrollments.csv",
        sourcedId="enr-s4",
        dateLastModified=stamp,
        classSourcedId="cls-bio-1",
        schoolSourcedId="sch-north",
        userSourcedId="stu-4",
        role="student",
    )
    return b
