"""`sislink sis serve --csv` serves bundles as other systems write them, printing each problem
once; `sislink sis check-csv` reads them without serving (text or JSON, exit status 0, 3 or 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
from typer.testing import CliRunner

from csv_bundle_shapes import EVERY_BULK_SHAPE, delta_on_top, district, org_with_missing_parent
from sislink.cli import app

SECRET = "csv-test-secret"


def _bundles(folder: Path) -> tuple[Path, Path]:
    full = district()
    for shape in EVERY_BULK_SHAPE:
        shape(full)
    return full.write(folder / "full.zip"), delta_on_top().write(folder / "delta.zip")


def _read_report(lines: list[str], read: Callable[[], str]) -> None:
    """Append one bundle's report (as `BundleSummary.lines` prints it) to `lines`."""
    head = read()
    assert head.startswith("loaded "), head
    lines.append(head)
    counts = read()
    lines.append(counts)
    if counts == "no problems":
        return
    warnings, notes = (int(part.split()[0]) for part in counts.rstrip(":").split(", "))
    lines += [read() for _ in range(warnings + notes)]


def test_sis_serve_loads_a_bundle_of_every_shape_and_a_delta_and_reports_each_problem_once(
    tmp_path: Path,
) -> None:
    full, delta = _bundles(tmp_path)
    process = subprocess.Popen(
        [
            *(sys.executable, "-c", "from sislink.cli import main; main()", "sis", "serve"),
            *("--port", "0", "--client-id", "csv-test", "--csv", str(full), "--csv", str(delta)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "SISLINK_SIS_CLIENT_SECRET": SECRET},
    )
    try:
        assert process.stdout is not None
        stdout = process.stdout

        def read() -> str:
            return stdout.readline().rstrip("\n")

        values = dict(read().split(": ", 1) for _ in range(5))
        report: list[str] = []
        _read_report(report, read)
        _read_report(report, read)
        roster = _read_back(values)
    finally:
        process.terminate()
        process.communicate(timeout=10)

    problems = [line.strip() for line in report if line.startswith("  ")]
    assert len(problems) == len(set(problems)), "\n".join(report)
    expected = [
        "warning: orgs.csv:4 parentSourcedId: the parent of sch-south, dist-gone, is not in",
        "warning: classes.csv:3 schoolSourcedId: classes name dept-sci (department “Science”)",
        "warning: classes.csv:4 schoolSourcedId: classes name dist-1 (district “Lakeside "
        "District”) as their school, and no org above it is a school; classes skipped: 1 "
        "(cls-online-1), and with them 2 enrolments",
        "warning: classes.csv:5 termSourcedIds: classes have the semester sem-spring",
        "warning: classes.csv:6 courseSourcedId: course crs-music is not in courses.csv",
        "warning: users.csv:2 (and 1 more row): rows end with empty values beyond the header",
        "warning: manifest.csv:2 value: manifest.version is empty: read as 1.0",
        "warning: manifest.csv:14 value: file.resources has no value: read as absent",
        "note: demographics.csv: not read",
        "note: README.txt: not read",
        "warning: users.csv:5 email: students without an email: 1 (stu-3)",
        "warning: users.csv:6 email: teachers without an email: 1 (tch-2)",
        "warning: enrollments.csv:5 schoolSourcedId: enrolments name dept-sci",
        "warning: enrollments.csv:3 status: rows of this delta file have no status",
        "note: users.csv:3: rows say tobedeleted for records the SIS does not hold: 1 (stu-ghost)",
    ]
    for text in expected:
        assert sum(line.startswith(text) for line in problems) == 1, (text, report)
    assert len(problems) == len(expected), "\n".join(report)
    assert report[0].startswith("loaded full.zip (OneRoster 1.1): org 4, academicSession 3")
    delta_head = next(line for line in report if line.startswith("loaded delta.zip"))
    assert delta_head.endswith("user 2, enrollment 1; marked tobedeleted: user 1, enrollment 1")

    # What was loaded, read back over OneRoster.
    assert roster["schools"] == {"sch-north", "sch-south"}
    assert roster["chemistry_school"] == "sch-north"
    assert roster["online_class"] == 404
    assert roster["music_course"] == ("Choir", "sch-north")
    assert roster["stu-2"] == "tobedeleted"
    assert "stu-4" in roster["biology_students"]


def _read_back(values: dict[str, str]) -> dict[str, object]:
    token = _token(values["token_url"])
    root = values["base_url"] + "/rostering/v1p2"
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as http:
        schools = http.get(f"{root}/schools").json()["orgs"]
        chemistry = http.get(f"{root}/classes/cls-chem-1").json()["class"]
        course = http.get(f"{root}/courses/crs-music").json()["course"]
        students = http.get(f"{root}/classes/cls-bio-1/students").json()["users"]
        return {
            "schools": {s["sourcedId"] for s in schools},
            "chemistry_school": chemistry["school"]["sourcedId"],
            "online_class": http.get(f"{root}/classes/cls-online-1").status_code,
            "music_course": (course["title"], course["org"]["sourcedId"]),
            "stu-2": http.get(f"{root}/users/stu-2").json()["user"]["status"],
            "biology_students": {s["sourcedId"] for s in students},
        }


def _token(token_url: str) -> str:
    for _ in range(50):
        try:
            response = httpx.post(
                token_url, auth=("csv-test", SECRET), data={"grant_type": "client_credentials"}
            )
        except httpx.ConnectError:
            time.sleep(0.1)  # the server prints its URLs and report just before it listens
            continue
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])
    raise AssertionError(f"the SIS never answered at {token_url}")


def test_sis_serve_refuses_a_bundle_with_errors_listing_every_error_and_warning(
    tmp_path: Path,
) -> None:
    bundle = district()
    bundle.rows["users.csv"][0]["givenName"] = ""
    bundle.rows["enrollments.csv"][1]["userSourcedId"] = "stu-nobody"
    org_with_missing_parent(bundle)
    result = CliRunner().invoke(
        app,
        ["sis", "serve", "--port", "0", "--csv", str(bundle.write(tmp_path / "b.zip"))],
        env={"SISLINK_SIS_CLIENT_SECRET": SECRET},
    )
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert lines[:2] == [
        "error: refused b.zip: nothing was loaded from it",
        "2 errors, 1 warning, 0 notes:",
    ]
    assert lines[2].startswith("  error: users.csv:2 givenName: the value is empty but required")
    assert lines[3].startswith("  error: enrollments.csv:3 userSourcedId: no user with sourcedId")
    assert lines[4].startswith("  warning: orgs.csv:4 parentSourcedId: the parent of sch-south")
    assert "Traceback" not in result.output


def test_sis_check_csv_prints_the_warnings_of_the_bundles_before_a_refused_one_and_its_own(
    tmp_path: Path,
) -> None:
    first = district()
    org_with_missing_parent(first)
    second = delta_on_top()
    second.rows["enrollments.csv"][1]["classSourcedId"] = "cls-nowhere"
    paths = [str(first.write(tmp_path / "full.zip")), str(second.write(tmp_path / "delta.zip"))]
    result = CliRunner().invoke(app, ["sis", "check-csv", *paths])
    assert result.exit_code == 1, result.output
    output = result.output
    assert output.index("loaded full.zip") < output.index("warning: orgs.csv:4 parentSourcedId")
    assert "error: refused delta.zip: nothing was loaded from it" in output
    assert "  error: enrollments.csv:3 classSourcedId: no class with sourcedId" in output
    assert "  warning: enrollments.csv:3 status: rows of this delta file have no status" in output
    assert "  note: users.csv:3: rows say tobedeleted for records the SIS does not hold" in output
    report = json.loads(CliRunner().invoke(app, ["sis", "check-csv", *paths, "--json"]).output)
    assert (report["loaded"], report["bundle"]) == (False, "delta.zip")
    assert [b["bundle"] for b in report["bundles"]] == ["full.zip"]
    assert report["bundles"][0]["problems"][0]["column"] == "parentSourcedId"


def test_sis_check_csv_reports_as_json_and_exits_3_when_it_warns(tmp_path: Path) -> None:
    full, delta = _bundles(tmp_path)
    result = CliRunner().invoke(app, ["sis", "check-csv", str(full), str(delta), "--json"])
    assert result.exit_code == 3, result.output
    report = json.loads(result.output)
    assert report["loaded"] is True
    assert [b["bundle"] for b in report["bundles"]] == ["full.zip", "delta.zip"]
    severities = Counter(p["severity"] for b in report["bundles"] for p in b["problems"])
    assert severities == {"warning": 12, "note": 3}
    first = report["bundles"][0]["problems"][0]
    assert set(first) >= {"file", "row", "column", "problem", "action", "text"}


def test_sis_check_csv_exits_0_for_a_clean_bundle_and_1_for_a_refused_one(
    tmp_path: Path,
) -> None:
    clean = district().write(tmp_path / "clean.zip")
    result = CliRunner().invoke(app, ["sis", "check-csv", str(clean)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1] == "no problems"
    broken = district()
    broken.rows["orgs.csv"][1]["type"] = ""
    result = CliRunner().invoke(app, ["sis", "check-csv", str(broken.write(tmp_path / "b.zip"))])
    assert result.exit_code == 1
    assert "orgs.csv:3 type: the value is empty but required" in result.output
