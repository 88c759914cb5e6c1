"""CSV bundles as other systems write them load, with every problem reported once, in words: what
was wrong, where (file, row, column) and what to do. Each test writes its own bundle."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from csv_bundle_shapes import (
    EVERY_BULK_SHAPE,
    Bundle,
    blank_manifest_values,
    class_in_a_semester,
    class_under_a_department,
    class_under_a_district,
    class_without_its_course,
    delta_on_top,
    district,
    files_the_loader_ignores,
    org_with_missing_parent,
    rows_with_trailing_empty_columns,
    users_without_email,
)
from sislink.oneroster.provider.csv_bundle import (
    BundleSummary,
    CsvBundleError,
    load_bundle,
    load_bundles,
)
from sislink.oneroster.provider.csv_report import BundleProblem
from sislink.oneroster.provider.profiles import profile_named
from sislink.oneroster.provider.server import RunningProvider, open_store, running_provider
from sislink.oneroster.provider.store import ProviderStore


def _load(tmp_path: Path, *shapes: Callable[[Bundle], None]) -> tuple[ProviderStore, BundleSummary]:
    bundle = district()
    for shape in shapes:
        shape(bundle)
    store = ProviderStore()
    return store, load_bundle(store, bundle.write(tmp_path / "bundle.zip"))


def _only(summary: BundleSummary, text: str) -> BundleProblem:
    found = [p for p in summary.problems if text in str(p)]
    assert len(found) == 1, "\n".join(summary.lines())
    return found[0]


def test_a_plain_bulk_bundle_with_blank_status_and_date_last_modified_loads_without_a_problem(
    tmp_path: Path,
) -> None:
    store, summary = _load(tmp_path)
    assert summary.problems == (), summary.lines()
    user = store.get("user", "stu-1")
    assert user is not None
    assert user["status"] == "active" and user["dateLastModified"].endswith("Z")


def test_an_org_whose_parent_is_missing_loads_without_it_with_a_warning(tmp_path: Path) -> None:
    store, summary = _load(tmp_path, org_with_missing_parent)
    org = store.get("org", "sch-south")
    assert org is not None and "parent" not in org
    problem = _only(summary, "dist-gone")
    assert (problem.severity, problem.file, problem.row, problem.column) == (
        "warning",
        "orgs.csv",
        4,
        "parentSourcedId",
    )
    assert "add dist-gone to orgs.csv, or leave parentSourcedId empty" in str(problem)


def test_a_class_under_a_department_gets_the_nearest_school_above_it(tmp_path: Path) -> None:
    store, summary = _load(tmp_path, class_under_a_department)
    klass = store.get("class", "cls-chem-1")
    enrolment = store.get("enrollment", "enr-chem-s1")
    assert klass is not None and enrolment is not None
    assert klass["school"]["sourcedId"] == "sch-north"
    assert enrolment["school"]["sourcedId"] == "sch-north"
    problem = _only(summary, "classes name dept-sci")
    assert problem.severity == "warning" and problem.column == "schoolSourcedId"
    assert "taken as sch-north (school “North High”), the nearest school above it" in str(problem)
    assert _only(summary, "enrolments name dept-sci").file == "enrollments.csv"


def test_classes_under_a_district_are_skipped_with_their_enrolments_saying_why(
    tmp_path: Path,
) -> None:
    store, summary = _load(tmp_path, class_under_a_district)
    assert store.get("class", "cls-online-1") is None
    assert store.get("enrollment", "enr-online-s2") is None
    assert store.count("class") == 1 and store.count("enrollment") == 3
    problem = _only(summary, "cls-online-1")
    assert str(problem) == (
        "classes.csv:3 schoolSourcedId: classes name dist-1 (district “Lakeside District”) as "
        "their school, and no org above it is a school; classes skipped: 1 (cls-online-1), "
        "and with them 2 enrolments; in the SIS, give these classes their school (an org of "
        "type school), or in orgs.csv put dist-1 under the school it belongs to"
    )


def test_a_class_in_a_semester_loads_with_it_as_its_term_and_a_warning(tmp_path: Path) -> None:
    store, summary = _load(tmp_path, class_in_a_semester)
    klass = store.get("class", "cls-art-1")
    assert klass is not None and klass["terms"][0]["sourcedId"] == "sem-spring"
    problem = _only(summary, "sem-spring")
    assert problem.severity == "warning" and problem.column == "termSourcedIds"
    assert "the semester sem-spring (“Spring 2026”) as their term" in problem.problem


def test_a_class_whose_course_is_missing_gets_a_course_made_from_what_it_says(
    tmp_path: Path,
) -> None:
    store, summary = _load(tmp_path, class_without_its_course)
    course = store.get("course", "crs-music")
    assert course is not None
    assert (course["title"], course["courseCode"], course["grades"]) == (
        "Choir",
        "MUS-1",
        ["09", "10"],
    )
    assert course["org"]["sourcedId"] == "sch-north"
    assert store.get("class", "cls-music-1") is not None
    assert summary.counts["course"] == 2
    problem = _only(summary, "crs-music")
    assert "It was made from class cls-music-1" in problem.problem
    assert problem.action == "add the course to courses.csv to give it its own title and code"


def test_rows_with_trailing_empty_columns_load_with_one_warning(tmp_path: Path) -> None:
    store, summary = _load(tmp_path, rows_with_trailing_empty_columns)
    assert store.count("user") == 3
    problem = _only(summary, "trailing commas")
    assert (problem.file, problem.rows) == ("users.csv", (2, 3))


def test_a_row_with_a_value_past_the_header_is_an_error_naming_its_row(tmp_path: Path) -> None:
    bundle = district()
    path = bundle.write(tmp_path / "a.zip")
    with zipfile.ZipFile(path) as archive:
        lines = archive.read("users.csv").decode().splitlines()
    lines[2] += ",,surplus"
    bundle.extra_files["users.csv"] = "\r\n".join(lines) + "\r\n"
    with pytest.raises(CsvBundleError) as caught:
        load_bundle(ProviderStore(), bundle.write(tmp_path / "b.zip"))
    assert str(caught.value) == (
        "users.csv:3: the row has 20 values but the header has 18 columns; quote values that "
        "contain commas, or name every column in the header"
    )


def test_dates_with_a_time_and_date_times_without_a_zone_are_read_with_a_warning(
    tmp_path: Path,
) -> None:
    bundle = district()
    for row in bundle.rows["enrollments.csv"]:
        row["beginDate"] = "2025-08-20T00:00:00Z"
    bundle.rows["users.csv"][0]["dateLastModified"] = "2025-08-01T10:00:00"
    store = ProviderStore()
    summary = load_bundle(store, bundle.write(tmp_path / "b.zip"))
    enrolment, user = store.get("enrollment", "enr-s1"), store.get("user", "tch-1")
    assert enrolment is not None and enrolment["beginDate"] == "2025-08-20"
    assert user is not None and user["dateLastModified"] == "2025-08-01T10:00:00.000Z"
    dates = _only(summary, "dates carry a time (2025-08-20T00:00:00Z)")
    assert (dates.rows, dates.column) == ((2, 3, 4), "beginDate")
    assert _only(summary, "have no time zone (2025-08-01T10:00:00): read as UTC").row == 2


def test_file_and_column_names_are_matched_without_regard_to_case(tmp_path: Path) -> None:
    bundle = district()
    path = bundle.write(tmp_path / "a.zip")
    with zipfile.ZipFile(path) as archive:
        users = archive.read("users.csv").decode()
    bundle.rows.pop("users.csv")
    bundle.extra_files["Users.csv"] = users.replace("givenName", "GivenName", 1)
    bundle.manifest["file.users"] = "bulk"
    store = ProviderStore()
    summary = load_bundle(store, bundle.write(tmp_path / "b.zip"))
    assert store.count("user") == 3 and summary.skipped_files == ()
    problem = _only(summary, "column GivenName is spelled givenName in the binding")
    assert (problem.file, problem.row, problem.severity) == ("users.csv", 1, "warning")


def test_blank_manifest_values_are_read_with_a_warning(tmp_path: Path) -> None:
    _, summary = _load(tmp_path, blank_manifest_values)
    assert _only(summary, "manifest.version is empty").file == "manifest.csv"
    problem = _only(summary, "file.resources has no value")
    assert problem.problem == (
        "file.resources has no value: read as absent, since the bundle has no resources.csv"
    )


def test_a_blank_version_is_read_from_what_the_bundle_holds(tmp_path: Path) -> None:
    bundle = district()
    bundle.manifest["oneroster.version"] = ""
    store = ProviderStore()
    summary = load_bundle(store, bundle.write(tmp_path / "b.zip"))
    assert summary.version == "1.1" and store.count("user") == 3
    assert _only(summary, "oneroster.version is empty: read as 1.1").severity == "warning"


def test_files_the_loader_ignores_are_named_in_its_report(tmp_path: Path) -> None:
    _, summary = _load(tmp_path, files_the_loader_ignores)
    assert set(summary.skipped_files) == {"demographics.csv", "README.txt"}
    assert _only(summary, "demographics.csv: not read").severity == "note"
    assert _only(summary, "README.txt: not read: it is not a OneRoster CSV file").severity == "note"


def test_users_without_an_email_are_loaded_with_a_warning_per_role(tmp_path: Path) -> None:
    store, summary = _load(tmp_path, users_without_email)
    assert store.get("user", "stu-3") is not None and store.get("user", "tch-2") is not None
    assert _only(summary, "students without an email: 1 (stu-3)").column == "email"
    assert _only(summary, "teachers without an email: 1 (tch-2)").severity == "warning"


def test_a_delta_bundle_applies_on_top_of_what_was_loaded(tmp_path: Path) -> None:
    store = ProviderStore()
    base, delta = load_bundles(
        store,
        [district().write(tmp_path / "full.zip"), delta_on_top().write(tmp_path / "delta.zip")],
    )
    assert base.problems == ()
    gone, renamed, new = (store.get("user", i) for i in ("stu-2", "stu-1", "stu-4"))
    assert gone is not None and gone["status"] == "tobedeleted"
    assert gone["dateLastModified"] == "2026-01-10T08:00:00.000Z"
    assert renamed is not None and renamed["givenName"] == "Samuel"
    assert new is not None and new["status"] == "active"
    enrolment = store.get("enrollment", "enr-s2")
    assert enrolment is not None and enrolment["status"] == "tobedeleted"
    assert store.get("enrollment", "enr-s4") is not None
    assert delta.counts == {"user": 2, "enrollment": 1}
    assert delta.marked_deleted == {"user": 1, "enrollment": 1}
    assert _only(delta, "stu-ghost").severity == "note"
    blank = _only(delta, "no status: read as active")
    assert (blank.file, blank.row, blank.column) == ("enrollments.csv", 3, "status")
    assert store.count("org") == 2  # files the delta declares absent are left as they were


def test_a_bulk_bundle_on_top_marks_what_it_no_longer_has_tobedeleted(tmp_path: Path) -> None:
    store = ProviderStore()
    load_bundle(store, district().write(tmp_path / "first.zip"))
    second = district()
    second.rows["users.csv"] = second.rows["users.csv"][:2]
    second.rows["enrollments.csv"] = second.rows["enrollments.csv"][:2]
    summary = load_bundle(store, second.write(tmp_path / "second.zip"))
    dropped = store.get("user", "stu-2")
    assert dropped is not None and dropped["status"] == "tobedeleted"
    assert summary.marked_deleted == {"user": 1, "enrollment": 1}
    note = _only(summary, "users.csv: records loaded before that this bulk file does not have")
    assert note.severity == "note" and note.problem.endswith(": 1; marked tobedeleted")


def test_every_bulk_shape_at_once_reports_each_problem_once(tmp_path: Path) -> None:
    _, summary = _load(tmp_path, *EVERY_BULK_SHAPE)
    texts = [str(p) for p in summary.problems]
    assert len(texts) == len(set(texts))
    assert [p.severity for p in summary.problems].count("error") == 0
    assert len(summary.problems) == 13, "\n".join(summary.lines())


def test_every_error_of_a_bundle_is_reported_at_once_and_nothing_is_loaded(
    tmp_path: Path,
) -> None:
    bundle = district()
    bundle.rows["academicSessions.csv"][1]["startDate"] = "2025-13-01"
    bundle.rows["users.csv"][2]["orgSourcedIds"] = "sch-nowhere"
    bundle.rows["enrollments.csv"][0]["role"] = ""
    bundle.rows["enrollments.csv"][1]["classSourcedId"] = "cls-nowhere"
    bundle.rows["enrollments.csv"][2]["classSourcedId"] = "cls-nowhere"
    org_with_missing_parent(bundle)  # a warning comes with the errors
    store = ProviderStore()
    with pytest.raises(CsvBundleError) as caught:
        load_bundle(store, bundle.write(tmp_path / "b.zip"))
    error = caught.value
    errors = [str(p) for p in error.problems if p.severity == "error"]
    assert errors == [
        "academicSessions.csv:3 startDate: '2025-13-01' is not a date on the calendar; correct it",
        "users.csv:4 orgSourcedIds: no org with sourcedId 'sch-nowhere' in orgs.csv; add it "
        "there or correct the reference",
        "enrollments.csv:2 role: the value is empty but required; give every row its role",
        "enrollments.csv:3 (and 1 more row) classSourcedId: no class with sourcedId "
        "'cls-nowhere' in classes.csv; add it there or correct the reference",
    ]
    assert str(error).startswith("the bundle has 4 errors; nothing was loaded:\n  ")
    assert any(p.severity == "warning" for p in error.problems)
    assert all(store.count(entity) == 0 for entity in ("org", "user", "enrollment"))


@pytest.mark.parametrize(
    ("path", "openapi_path"),
    [
        ("orgs", "/orgs"),
        ("orgs/sch-south", "/orgs/{sourcedId}"),
        ("schools", "/schools"),
        ("academicSessions", "/academicSessions"),
        ("courses/crs-music", "/courses/{sourcedId}"),
        ("classes", "/classes"),
        ("classes/cls-chem-1", "/classes/{sourcedId}"),
        ("users", "/users"),
        ("users/stu-2", "/users/{sourcedId}"),
        ("enrollments", "/enrollments"),
    ],
)
def test_a_bundle_of_every_shape_is_served_as_valid_oneroster(
    served_shapes: tuple[RunningProvider, httpx.Client], path: str, openapi_path: str, openapi: Any
) -> None:
    _, http = served_shapes
    response = http.get(f"rostering/v1p2/{path}")
    assert response.status_code == 200, response.text
    openapi.validate(
        openapi.response_schema("rostering", openapi_path, "get", "200"), response.json()
    )


@pytest.fixture(scope="module")
def served_shapes(
    tmp_path_factory: pytest.TempPathFactory, fetch_token: Any
) -> Iterator[tuple[RunningProvider, httpx.Client]]:
    folder = tmp_path_factory.mktemp("shapes")
    bundle = district()
    for shape in EVERY_BULK_SHAPE:
        shape(bundle)
    store = ProviderStore()
    load_bundles(
        store, [bundle.write(folder / "full.zip"), delta_on_top().write(folder / "delta.zip")]
    )
    with running_provider(store=store) as running:
        token = fetch_token(running)
        with httpx.Client(
            base_url=running.base_url + "/", headers={"Authorization": f"Bearer {token}"}
        ) as http:
            yield running, http
    store.close()


def test_a_bulk_bundle_on_top_makes_again_the_course_its_class_lacks_and_keeps_it_active(
    tmp_path: Path,
) -> None:
    store = ProviderStore()
    days = []
    for day in ("day1", "day2"):
        bundle = district()
        class_without_its_course(bundle)
        days.append(load_bundle(store, bundle.write(tmp_path / f"{day}.zip")))
    assert "crs-music" in _only(days[1], "course crs-music is not in courses.csv").problem
    course, klass = store.get("course", "crs-music"), store.get("class", "cls-music-1")
    assert course is not None and course["status"] == "active"
    assert klass is not None and klass["course"]["sourcedId"] == "crs-music"
    assert days[1].marked_deleted == {}


def test_a_bulk_bundle_on_top_refuses_an_enrolment_of_a_user_its_users_file_dropped(
    tmp_path: Path,
) -> None:
    store = ProviderStore()
    load_bundle(store, district().write(tmp_path / "day1.zip"))
    day2 = district()
    day2.rows["users.csv"] = [r for r in day2.rows["users.csv"] if r["sourcedId"] != "stu-2"]
    with pytest.raises(CsvBundleError) as caught:
        load_bundle(store, day2.write(tmp_path / "day2.zip"))
    assert str(caught.value) == (
        "enrollments.csv:4 userSourcedId: no user with sourcedId 'stu-2' in users.csv; add it "
        "there or correct the reference"
    )
    user = store.get("user", "stu-2")
    assert user is not None and user["status"] == "active"


def test_a_class_loaded_before_and_skipped_by_a_bulk_bundle_on_top_is_marked_tobedeleted(
    tmp_path: Path,
) -> None:
    store = ProviderStore()
    load_bundle(store, district().write(tmp_path / "day1.zip"))
    day2 = district()
    day2.rows["classes.csv"][0]["schoolSourcedId"] = "dist-1"  # no school above it: skipped
    summary = load_bundle(store, day2.write(tmp_path / "day2.zip"))
    klass, enrolment = store.get("class", "cls-bio-1"), store.get("enrollment", "enr-s1")
    assert klass is not None and klass["status"] == "tobedeleted"
    assert enrolment is not None and enrolment["status"] == "tobedeleted"
    assert summary.marked_deleted == {"class": 1, "enrollment": 3}
    note = _only(summary, "classes.csv: records loaded before that this bulk file does not have")
    assert note.problem.endswith("marked tobedeleted (of them, 1 in the file but skipped)")


def test_a_delta_row_naming_a_user_the_same_delta_deletes_is_refused(tmp_path: Path) -> None:
    store = ProviderStore()
    load_bundle(store, district().write(tmp_path / "full.zip"))
    delta = delta_on_top()
    delta.rows["enrollments.csv"][1]["userSourcedId"] = "stu-2"
    with pytest.raises(CsvBundleError) as caught:
        load_bundle(store, delta.write(tmp_path / "delta.zip"))
    assert str(caught.value) == (
        "enrollments.csv:3 userSourcedId: user 'stu-2' is marked tobedeleted at row 2 of "
        "users.csv; keep it, or delete this row too"
    )


def test_open_store_loads_bundles_one_on_top_of_another_and_returns_what_each_found(
    tmp_path: Path,
) -> None:
    full = district()
    org_with_missing_parent(full)
    paths = [full.write(tmp_path / "full.zip"), delta_on_top().write(tmp_path / "delta.zip")]
    store, teacher_email, summaries = open_store(
        profile=profile_named("generic-1.2"), csv_paths=paths
    )
    try:
        assert [s.name for s in summaries] == ["full.zip", "delta.zip"]
        assert _only(summaries[0], "dist-gone").severity == "warning"
        assert teacher_email == "tch-1@lakeside.example"
        renamed = store.get("user", "stu-1")
        assert renamed is not None and renamed["givenName"] == "Samuel"
    finally:
        store.close()


def test_a_file_whose_header_and_rows_all_end_with_commas_is_warned_about_once(
    tmp_path: Path,
) -> None:
    bundle = district()
    path = bundle.write(tmp_path / "a.zip")
    with zipfile.ZipFile(path) as archive:
        lines = archive.read("users.csv").decode().splitlines()
    bundle.extra_files["users.csv"] = "".join(line + ",,\r\n" for line in lines)
    store = ProviderStore()
    summary = load_bundle(store, bundle.write(tmp_path / "b.zip"))
    assert store.count("user") == 3
    problem = _only(summary, "trailing commas")
    assert (problem.file, problem.rows, problem.severity) == ("users.csv", (1,), "warning")


def test_manifest_names_and_ignored_file_names_are_matched_without_regard_to_case(
    tmp_path: Path,
) -> None:
    bundle = district()
    bundle.manifest["file.demographics"] = "absent"
    bundle.extra_files["Demographics.csv"] = "sourcedId,birthDate\r\nstu-1,2010-01-01\r\n"
    written = bundle.write(tmp_path / "a.zip")
    with zipfile.ZipFile(written) as original, zipfile.ZipFile(tmp_path / "b.zip", "w") as copy:
        for name in original.namelist():
            text = original.read(name).decode()
            if name == "manifest.csv":
                text = text.replace("file.users,", "File.Users,")
            copy.writestr(name, text)
    store = ProviderStore()
    summary = load_bundle(store, tmp_path / "b.zip")
    assert store.count("user") == 3
    spelled = _only(summary, "File.Users is spelled file.users in the binding")
    assert (spelled.severity, spelled.column) == ("warning", "propertyName")
    ignored = _only(summary, "Demographics.csv: not read")
    assert ignored.problem == "not read: manifest.csv declares file.demographics absent"
