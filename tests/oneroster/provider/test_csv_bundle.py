"""CSV bundles: a SIS export loads as the provider's data, round-trips, and a bad one says where."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sislink.oneroster.provider.csv_bundle import (
    CsvBundleError,
    export_bundle,
    load_bundle,
)
from sislink.oneroster.provider.seed import seed_district
from sislink.oneroster.provider.store import ProviderStore
from sislink.oneroster.versions import spec_for

ENTITIES = (
    "org",
    "academicSession",
    "course",
    "class",
    "user",
    "enrollment",
    "category",
    "lineItem",
    "result",
)


def _store_with_gradebook() -> ProviderStore:
    """A seeded district plus a lineItem and two results, so every file has rows."""
    store = ProviderStore()
    seed_district(store, seed=3, students=150, today=date(2026, 3, 1))
    root = "http://localhost/ims/oneroster"
    ref = spec_for("1.2").href
    line_item = {
        "sourcedId": "li-1",
        "status": "active",
        "dateLastModified": "2026-02-01T10:00:00.000Z",
        "title": "Essay, draft 1",
        "description": 'Quotes "and" commas, inside',
        "assignDate": "2026-02-01T00:00:00.000Z",
        "dueDate": "2026-02-08T00:00:00.000Z",
        "class": {
            "href": ref(root, "class", "cls-00001"),
            "sourcedId": "cls-00001",
            "type": "class",
        },
        "school": {
            "href": ref(root, "org", "org-sch-001"),
            "sourcedId": "org-sch-001",
            "type": "org",
        },
        "category": {
            "href": ref(root, "category", "cat-00001-1"),
            "sourcedId": "cat-00001-1",
            "type": "category",
        },
        "gradingPeriod": {
            "href": ref(root, "academicSession", "as-2026-s2-gp3"),
            "sourcedId": "as-2026-s2-gp3",
            "type": "academicSession",
        },
        "resultValueMin": 0.0,
        "resultValueMax": 100.0,
    }
    store.insert_many("lineItem", [line_item])
    students = [
        e["user"]["sourcedId"]
        for e in store.iter_all("enrollment")
        if e["class"]["sourcedId"] == "cls-00001" and e["role"] == "student"
    ][:2]
    store.insert_many(
        "result",
        [
            {
                "sourcedId": f"res-{i}",
                "status": "active",
                "dateLastModified": "2026-02-09T10:00:00.000Z",
                "lineItem": {
                    "href": ref(root, "lineItem", "li-1"),
                    "sourcedId": "li-1",
                    "type": "lineItem",
                },
                "student": {"href": ref(root, "user", s), "sourcedId": s, "type": "user"},
                "class": {
                    "href": ref(root, "class", "cls-00001"),
                    "sourcedId": "cls-00001",
                    "type": "class",
                },
                "scoreStatus": "exempt" if i else "fully graded",
                "score": 300.0 if not i else 0.0,
                "scoreDate": "2026-02-09",
                "comment": "extra credit" if not i else "excused",
            }
            for i, s in enumerate(students)
        ],
    )
    return store


def _everything(store: ProviderStore) -> dict[str, list[dict[str, Any]]]:
    return {entity: list(store.iter_all(entity)) for entity in ENTITIES}


@pytest.fixture(scope="module")
def source() -> ProviderStore:
    return _store_with_gradebook()


@pytest.fixture(scope="module")
def bundle_1_2(source: ProviderStore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bundle") / "district-1.2.zip"
    export_bundle(source, path, version="1.2")
    return path


def _rewrite(bundle: Path, target: Path, changes: dict[str, str | None]) -> Path:
    """A copy of `bundle` with some files replaced (text) or removed (None)."""
    with zipfile.ZipFile(bundle) as original, zipfile.ZipFile(target, "w") as copy:
        for name in original.namelist():
            if name in changes:
                continue
            copy.writestr(name, original.read(name))
        for name, text in changes.items():
            if text is not None:
                copy.writestr(name, text)
    return target


def _edit_cell(bundle: Path, name: str, row: int, column: str, value: str) -> str:
    """The text of `name` with one cell changed (row in spreadsheet numbering)."""
    with zipfile.ZipFile(bundle) as archive:
        rows = list(csv.reader(io.StringIO(archive.read(name).decode("utf-8"))))
    rows[row - 1][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def _drop_column(bundle: Path, name: str, column: str) -> str:
    with zipfile.ZipFile(bundle) as archive:
        rows = list(csv.reader(io.StringIO(archive.read(name).decode("utf-8"))))
    index = rows[0].index(column)
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([r[:index] + r[index + 1 :] for r in rows])
    return out.getvalue()


def test_a_generated_1_2_bundle_loads_every_file(bundle_1_2: Path, source: ProviderStore) -> None:
    target = ProviderStore()
    summary = load_bundle(target, bundle_1_2)
    assert summary.version == "1.2"
    for entity in ENTITIES:
        assert summary.counts[entity] == source.count(entity) == target.count(entity)
    assert summary.counts["lineItem"] == 1
    assert summary.counts["result"] == 2


def test_a_1_2_round_trip_gives_back_the_same_records_and_the_same_bytes(
    bundle_1_2: Path, source: ProviderStore, tmp_path: Path
) -> None:
    loaded = ProviderStore()
    load_bundle(loaded, bundle_1_2)
    assert _everything(loaded) == _everything(source)
    again = tmp_path / "again.zip"
    export_bundle(loaded, again, version="1.2")
    assert again.read_bytes() == bundle_1_2.read_bytes()


def test_a_1_1_bundle_round_trips_and_keeps_what_1_1_can_say(
    source: ProviderStore, tmp_path: Path
) -> None:
    first = tmp_path / "district-1.1.zip"
    export_bundle(source, first, version="1.1")
    with zipfile.ZipFile(first) as archive:
        header = archive.read("users.csv").decode().splitlines()[0]
        assert header == (
            "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,"
            "givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password"
        )
        assert "roles.csv" not in archive.namelist()
    loaded = ProviderStore()
    summary = load_bundle(loaded, first)
    assert summary.version == "1.1"
    teachers = [u for u in loaded.iter_all("user") if u["roles"][0]["role"] == "teacher"]
    assert len(teachers) == sum(
        1 for u in source.iter_all("user") if u["roles"][0]["role"] == "teacher"
    )
    # 1.2 wants a school on every lineItem: a 1.1 bundle gets the class's school.
    line_item = next(loaded.iter_all("lineItem"))
    assert line_item["school"]["sourcedId"] == "org-sch-001"
    for entity in ("org", "academicSession", "course", "class", "enrollment"):
        assert list(loaded.iter_all(entity)) == list(source.iter_all(entity))
    second = tmp_path / "again-1.1.zip"
    export_bundle(loaded, second, version="1.1")
    assert second.read_bytes() == first.read_bytes()


def test_loaded_records_are_complete_1_2_objects(bundle_1_2: Path) -> None:
    loaded = ProviderStore()
    load_bundle(loaded, bundle_1_2)
    user = next(loaded.iter_all("user"))
    assert user["roles"][0]["org"]["href"].endswith(
        "/rostering/v1p2/orgs/" + user["roles"][0]["org"]["sourcedId"]
    )
    klass = next(loaded.iter_all("class"))
    assert klass["terms"] and all(t["type"] == "academicSession" for t in klass["terms"])
    category = next(loaded.iter_all("category"))
    assert category["metadata"]["classSourcedId"].startswith("cls-")


def test_a_directory_bundle_loads_like_a_zip(bundle_1_2: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(bundle_1_2) as archive:
        archive.extractall(tmp_path)
    loaded = ProviderStore()
    summary = load_bundle(loaded, tmp_path)
    assert summary.counts["user"] > 0


def test_files_the_loader_does_not_read_are_listed_as_skipped(
    bundle_1_2: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(bundle_1_2) as archive:
        manifest = archive.read("manifest.csv").decode()
    manifest = manifest.replace("file.demographics,absent", "file.demographics,bulk")
    bundle = _rewrite(
        bundle_1_2,
        tmp_path / "demo.zip",
        {
            "manifest.csv": manifest,
            "demographics.csv": "sourcedId,status,dateLastModified,birthDate\r\n",
        },
    )
    summary = load_bundle(ProviderStore(), bundle)
    assert summary.skipped_files == ("demographics.csv",)


# ---- bad bundles: the message says where and what, and nothing is loaded ----------------------


def _refused(bundle: Path) -> tuple[CsvBundleError, ProviderStore]:
    store = ProviderStore()
    with pytest.raises(CsvBundleError) as caught:
        load_bundle(store, bundle)
    for entity in ENTITIES:
        assert store.count(entity) == 0, f"{entity} was half-loaded"
    return caught.value, store


def test_a_bundle_without_a_manifest_is_refused(bundle_1_2: Path, tmp_path: Path) -> None:
    error, _ = _refused(_rewrite(bundle_1_2, tmp_path / "b.zip", {"manifest.csv": None}))
    assert error.file == "manifest.csv"
    assert "no manifest.csv" in str(error)


def test_a_missing_required_column_names_file_header_row_and_column(
    bundle_1_2: Path, tmp_path: Path
) -> None:
    text = _drop_column(bundle_1_2, "users.csv", "givenName")
    error, _ = _refused(_rewrite(bundle_1_2, tmp_path / "b.zip", {"users.csv": text}))
    assert (error.file, error.row, error.column) == ("users.csv", 1, "givenName")
    assert str(error) == (
        "users.csv:1 givenName: the column is missing; add a givenName column to the header "
        "(the binding requires it)"
    )


def test_an_unknown_reference_names_the_row_and_the_missing_object(
    bundle_1_2: Path, tmp_path: Path
) -> None:
    text = _edit_cell(bundle_1_2, "enrollments.csv", 5, "classSourcedId", "cls-99999")
    error, _ = _refused(_rewrite(bundle_1_2, tmp_path / "b.zip", {"enrollments.csv": text}))
    assert (error.file, error.row, error.column) == ("enrollments.csv", 5, "classSourcedId")
    assert "no class with sourcedId 'cls-99999' in classes.csv" in str(error)


def test_a_bad_date_names_the_row_and_says_the_expected_form(
    bundle_1_2: Path, tmp_path: Path
) -> None:
    text = _edit_cell(bundle_1_2, "academicSessions.csv", 3, "startDate", "2025-13-01")
    error, _ = _refused(_rewrite(bundle_1_2, tmp_path / "b.zip", {"academicSessions.csv": text}))
    assert (error.file, error.row, error.column) == ("academicSessions.csv", 3, "startDate")
    assert "not a date on the calendar" in str(error)
    text = _edit_cell(bundle_1_2, "users.csv", 4, "dateLastModified", "yesterday")
    error, _ = _refused(_rewrite(bundle_1_2, tmp_path / "c.zip", {"users.csv": text}))
    assert (error.file, error.row, error.column) == ("users.csv", 4, "dateLastModified")
    assert "ISO 8601" in str(error)


def test_an_error_in_the_last_file_still_leaves_the_store_untouched(
    bundle_1_2: Path, tmp_path: Path
) -> None:
    text = _edit_cell(bundle_1_2, "results.csv", 2, "scoreDate", "09/02/2026")
    error, _ = _refused(_rewrite(bundle_1_2, tmp_path / "b.zip", {"results.csv": text}))
    assert (error.file, error.row, error.column) == ("results.csv", 2, "scoreDate")
    assert "YYYY-MM-DD" in str(error)


def test_an_empty_required_value_and_a_duplicate_id_are_refused(
    bundle_1_2: Path, tmp_path: Path
) -> None:
    text = _edit_cell(bundle_1_2, "classes.csv", 2, "title", "")
    error, _ = _refused(_rewrite(bundle_1_2, tmp_path / "b.zip", {"classes.csv": text}))
    assert (error.file, error.row, error.column) == ("classes.csv", 2, "title")
    assert "empty but required" in str(error)
    with zipfile.ZipFile(bundle_1_2) as archive:
        first_id = archive.read("courses.csv").decode().splitlines()[1].split(",")[0]
    text = _edit_cell(bundle_1_2, "courses.csv", 3, "sourcedId", first_id)
    error, _ = _refused(_rewrite(bundle_1_2, tmp_path / "c.zip", {"courses.csv": text}))
    assert (error.file, error.row, error.column) == ("courses.csv", 3, "sourcedId")
    assert "already used at row 2" in str(error)


def test_a_declared_file_that_is_missing_is_refused(bundle_1_2: Path, tmp_path: Path) -> None:
    error, _ = _refused(_rewrite(bundle_1_2, tmp_path / "b.zip", {"orgs.csv": None}))
    assert error.file == "orgs.csv"
    assert "declares file.orgs=bulk" in str(error)


def test_a_1_2_user_without_a_role_is_refused(bundle_1_2: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(bundle_1_2) as archive:
        lines = archive.read("roles.csv").decode().splitlines(keepends=True)
    lost_user = lines[1].split(",")[3]
    error, _ = _refused(
        _rewrite(bundle_1_2, tmp_path / "b.zip", {"roles.csv": "".join([lines[0], *lines[2:]])})
    )
    assert error.file == "users.csv"
    assert error.column == "sourcedId"
    assert f"user {lost_user!r} has no row in roles.csv" in str(error)


def test_something_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "roster.zip"
    path.write_text("sourcedId,name\n")
    error, _ = _refused(path)
    assert "not a zip file" in str(error)


def test_a_value_the_model_rejects_names_its_column(bundle_1_2: Path, tmp_path: Path) -> None:
    text = _edit_cell(bundle_1_2, "lineItems.csv", 2, "resultValueMax", "a hundred")
    error, _ = _refused(_rewrite(bundle_1_2, tmp_path / "b.zip", {"lineItems.csv": text}))
    assert (error.file, error.row, error.column) == ("lineItems.csv", 2, "resultValueMax")
    text = _edit_cell(bundle_1_2, "enrollments.csv", 2, "primary", "maybe")
    error, _ = _refused(_rewrite(bundle_1_2, tmp_path / "c.zip", {"enrollments.csv": text}))
    assert (error.file, error.row, error.column) == ("enrollments.csv", 2, "primary")


@pytest.mark.parametrize("written", ["١٢", "nan", "inf", "1_000", "1e3", "12,5", "0x10"])
def test_a_number_not_written_in_ascii_decimal_digits_is_refused_naming_its_cell(
    bundle_1_2: Path, tmp_path: Path, written: str
) -> None:
    text = _edit_cell(bundle_1_2, "results.csv", 2, "score", written)
    error, _ = _refused(_rewrite(bundle_1_2, tmp_path / "b.zip", {"results.csv": text}))
    assert str(error) == (
        f"results.csv:2 score: {written!r} is not a number; write it with the digits 0-9 and a "
        "point for decimals, e.g. 12.5"
    )


@pytest.mark.parametrize(("written", "read"), [("12", 12.0), ("-0.5", -0.5), (".5", 0.5)])
def test_ascii_decimal_numbers_are_read(
    bundle_1_2: Path, tmp_path: Path, written: str, read: float
) -> None:
    text = _edit_cell(bundle_1_2, "results.csv", 2, "score", written)
    store = ProviderStore()
    load_bundle(store, _rewrite(bundle_1_2, tmp_path / "b.zip", {"results.csv": text}))
    with zipfile.ZipFile(bundle_1_2) as archive:
        result_id = archive.read("results.csv").decode().splitlines()[1].split(",")[0]
    result = store.get("result", result_id)
    assert result is not None and result["score"] == read


def _with_org_row(bundle: Path, **values: str) -> str:
    """The text of orgs.csv with one more org."""
    with zipfile.ZipFile(bundle) as archive:
        rows = list(csv.reader(io.StringIO(archive.read("orgs.csv").decode("utf-8"))))
    rows.append([values.get(column, "") for column in rows[0]])
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def test_a_1_2_line_item_naming_a_department_or_district_gets_the_nearest_school_with_a_warning(
    bundle_1_2: Path, tmp_path: Path
) -> None:
    with zipfile.ZipFile(bundle_1_2) as archive:
        orgs = list(csv.DictReader(io.StringIO(archive.read("orgs.csv").decode("utf-8"))))
    district_id = next(org["sourcedId"] for org in orgs if org["type"] == "district")
    orgs_text = _with_org_row(
        bundle_1_2,
        sourcedId="dept-sci",
        name="Science",
        type="department",
        parentSourcedId="org-sch-001",
    )
    for named, school in (("dept-sci", "org-sch-001"), (district_id, "org-sch-001")):
        line_items = _edit_cell(bundle_1_2, "lineItems.csv", 2, "schoolSourcedId", named)
        store = ProviderStore()
        summary = load_bundle(
            store,
            _rewrite(
                bundle_1_2,
                tmp_path / f"{named}.zip",
                {"orgs.csv": orgs_text, "lineItems.csv": line_items},
            ),
        )
        line_item = store.get("lineItem", "li-1")
        assert line_item is not None and line_item["school"]["sourcedId"] == school
        warning = next(p for p in summary.problems if p.file == "lineItems.csv")
        assert (warning.severity, warning.row, warning.column) == (
            "warning",
            2,
            "schoolSourcedId",
        )
        assert warning.problem.startswith(f"lineItems name {named} (")
