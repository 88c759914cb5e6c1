"""`sislink demo` (the function behind it): the whole flow runs against the built-in SIS, the
SIS's lineItem and result counts printed after each export are equal and non-zero, and the
demo exits 0; counts that differ make it exit non-zero. The local Google Classroom starts beside
the SIS and is connected and authorised as an administrator would, its key never printed; then
the Google Classroom story: roster in (courses PROVISIONED, accepted by the teacher), coursework
and grades made in Classroom, pulled and exported, both sides disconnected and reconnected, and
again: Classroom's course count and the SIS's counts equal after every run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sislink.classroom import open_classroom
from sislink.demo import (
    CLASSROOM_WORK,
    GoogleRun,
    SisCounts,
    google_runs_held,
    nothing_duplicated,
    run_demo,
)
from sislink.settings import Settings
from sislink.sync import google_connection

COUNT_LINE = re.compile(
    r"^  (?P<label>[^:]+):\s+(?P<items>\d+) lineItems\s+(?P<results>\d+) results$"
)
GOOGLE_LINE = re.compile(
    r"^  (?P<label>[^:]+):\s+(?P<items>\d+) lineItems\s+(?P<results>\d+) results\s+"
    r"(?P<courses>\d+) courses$"
)


def printed_counts(lines: list[str]) -> list[tuple[str, int, int]]:
    start = lines.index("The SIS's lineItems and results after each export:")
    found = []
    for line in lines[start + 1 :]:
        match = COUNT_LINE.match(line)
        if match is None:
            break
        found.append((match["label"], int(match["items"]), int(match["results"])))
    return found


@pytest.mark.parametrize("profile", ["generic-1.2", "skyward"])
def test_the_demo_exports_reconnects_and_exports_again_without_duplicates(
    profile: str, tmp_path: Path
) -> None:
    printed: list[str] = []
    status = run_demo(printed.append, students=60, profile=profile, home=tmp_path)
    text = "\n".join(printed)
    assert status == 0, text
    assert f"SISLINK_HOME={tmp_path}" in text
    counts = printed_counts(printed)
    assert [label for label, _, _ in counts] == [
        "first export",
        "after the reconnect",
        "after the ledger was forgotten",
    ]
    assert len({(items, results) for _, items, results in counts}) == 1
    _, items, results = counts[0]
    assert items == 3 * 3 and results > 0  # three classes, three coursework each
    resumed = re.search(r"Class links resumed: (\d+); set aside: 0\.", text)
    imported = re.search(r"(\d+) imported classes came linked to their SIS class", text)
    assert resumed and imported and int(resumed.group(1)) == int(imported.group(1)) >= 3
    assert "A teacher's export now is refused before anything is sent" in text
    assert "1 write (PUT/DELETE)" in text  # the one changed mark, and nothing else
    assert ("Every step held." in text) is (profile == "generic-1.2")
    assert_google_classroom_connected_without_the_key(text, tmp_path)
    assert_google_story_without_duplicates(printed, items, results)


def assert_google_classroom_connected_without_the_key(text: str, home: Path) -> None:
    key = json.loads((home / "google-service-account.json").read_text("utf-8"))
    assert "The local Google Classroom is up" in text
    connected = re.search(r"Google Classroom connected and authorised \((\S+)\)\.", text)
    assert connected, text
    assert "ok token:" in text and "ok list courses:" in text
    assert "PRIVATE KEY" not in text
    assert key["private_key_id"] not in text
    classroom = open_classroom(Settings.for_home(home))
    try:
        stored = google_connection.status(classroom)
    finally:
        classroom.close()
    assert stored is not None and stored.status == "authorised"
    assert stored.domain == connected.group(1)
    assert stored.client_email == key["client_email"]


def google_counts(lines: list[str]) -> list[tuple[str, int, int, int]]:
    start = lines.index(
        "The SIS's lineItems and results, and Google Classroom's courses, after each Google run:"
    )
    found = []
    for line in lines[start + 1 :]:
        match = GOOGLE_LINE.match(line)
        if match is None:
            break
        found.append(
            (match["label"], int(match["items"]), int(match["results"]), int(match["courses"]))
        )
    return found


def assert_google_story_without_duplicates(lines: list[str], items: int, results: int) -> None:
    text = "\n".join(lines)
    runs = google_counts(lines)
    assert [label for label, *_ in runs] == [
        "roster sync",
        "pull and export",
        "roster sync after the reconnect",
        "pull and export again",
        "pull and export, one grade changed",
    ]
    created = re.search(r"Job \d+ \w+: courses (\d+) created;", text)
    assert created, text
    assert {courses for *_, courses in runs} == {int(created.group(1))}
    # Before any pull the SIS holds what the classroom exported; after, the Classroom work too.
    assert runs[0][1:3] == (items, results)
    accepted = re.search(r"accepts (\d+) courses sislink made \(PROVISIONED -> ACTIVE", text)
    made = re.search(r"makes (\d+) courseWork and grades \d+ submissions: (\d+) returned", text)
    assert accepted and made, text
    classes = 3
    assert int(made.group(1)) == classes * len(CLASSROOM_WORK)
    returned = int(made.group(2))
    assert {run[1:3] for run in runs[1:]} == {(items + int(made.group(1)), results + returned)}
    assert "courses 0 created" not in text  # the unchanged sync says only what it did
    assert re.search(r"courses \d+ unchanged; .* students \d+ unchanged\.", text)
    assert "0 writes (API calls)" in text
    assert "The export sent 0 writes (PUT/DELETE) to the SIS." in text
    assert "The export sent 1 write (PUT/DELETE) to the SIS." in text
    assert "A roster sync now is refused" in text and "A grade pull now is refused" in text
    assert "Equal after every run" in text


def test_google_runs_that_duplicate_a_course_or_a_result_mean_something_went_wrong() -> None:
    before, after = SisCounts(9, 300), SisCounts(15, 400)
    held = [
        GoogleRun("roster sync", before, 48, pulled=False),
        GoogleRun("pull and export", after, 48, pulled=True),
        GoogleRun("roster sync again", after, 48, pulled=True),
    ]
    assert google_runs_held(held)
    assert google_runs_held(held, before)
    assert not google_runs_held(held, SisCounts(10, 300))  # the roster sync changed the SIS
    assert not google_runs_held([*held, GoogleRun("roster sync", after, 49, pulled=True)])
    assert not google_runs_held([*held, GoogleRun("pull", SisCounts(15, 401), 48, pulled=True)])
    assert not google_runs_held(held[:1])  # no grade ever reached the SIS
    assert not google_runs_held([GoogleRun("roster sync", after, 0, pulled=True)])


def test_counts_that_differ_or_stay_zero_mean_something_went_wrong() -> None:
    same = SisCounts(9, 300)
    assert nothing_duplicated([same, SisCounts(9, 300), SisCounts(9, 300)])
    assert not nothing_duplicated([same, SisCounts(18, 300)])
    assert not nothing_duplicated([same, SisCounts(9, 301)])
    assert not nothing_duplicated([SisCounts(0, 0), SisCounts(0, 0)])
    assert not nothing_duplicated([])
