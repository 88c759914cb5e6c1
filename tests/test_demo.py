"""`sislink demo` (the function behind it): the whole flow runs against the built-in SIS, the
SIS's lineItem and result counts printed after each export are equal and non-zero, and the
demo exits 0; counts that differ make it exit non-zero. The local Google Classroom starts beside
the SIS and is connected and authorised as an administrator would, its key never printed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sislink.classroom import open_classroom
from sislink.demo import SisCounts, nothing_duplicated, run_demo
from sislink.settings import Settings
from sislink.sync import google_connection

COUNT_LINE = re.compile(
    r"^  (?P<label>[^:]+):\s+(?P<items>\d+) lineItems\s+(?P<results>\d+) results$"
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


def test_counts_that_differ_or_stay_zero_mean_something_went_wrong() -> None:
    same = SisCounts(9, 300)
    assert nothing_duplicated([same, SisCounts(9, 300), SisCounts(9, 300)])
    assert not nothing_duplicated([same, SisCounts(18, 300)])
    assert not nothing_duplicated([same, SisCounts(9, 301)])
    assert not nothing_duplicated([SisCounts(0, 0), SisCounts(0, 0)])
    assert not nothing_duplicated([])
