"""The school's time zone (issue 16): set by an administrator (School page, `sislink time-zone`),
SISLINK_TIME_ZONE or else the server's zone by default, a wrong name refused in words, every
time in the console shown in it, and the morning summary's hour in it too."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from console.console_world import ADMIN_EMAIL, console
from sislink.classroom import Actor, PermissionDenied, open_classroom
from sislink.classroom.models import ApiToken, Role
from sislink.classroom.services import people, time_zone
from sislink.classroom.services.api_tokens import create_api_token
from sislink.cli import app as cli
from sislink.operations.summary import SummaryNotConfigured, SummaryTime, school_summary_time
from sislink.settings import Settings


def test_the_default_is_sislink_time_zone_else_the_servers_own() -> None:
    assert time_zone.default_time_zone({"SISLINK_TIME_ZONE": "America/Chicago"}) == (
        time_zone.SchoolTimeZone("America/Chicago", time_zone.FROM_ENVIRONMENT)
    )
    server = time_zone.default_time_zone({})
    assert server.source == time_zone.FROM_SERVER
    assert server.name == time_zone.server_time_zone_name()
    ZoneInfo(server.name)  # an IANA name this server knows
    # A wrong SISLINK_TIME_ZONE does not stop the console: the server's zone instead.
    assert time_zone.default_time_zone({"SISLINK_TIME_ZONE": "Mars/Base"}) == server


def test_a_name_that_is_no_time_zone_is_refused_in_one_sentence() -> None:
    for wrong in ("Mars/Base", "", "../../etc/passwd", "/etc/localtime", "Chicago"):
        with pytest.raises(time_zone.NotATimeZone, match="is not a time zone: give the school's"):
            time_zone.zone_named(wrong)
    assert time_zone.zone_named("america/new york").key == "America/New_York"
    assert time_zone.zone_named("utc").key == "UTC"
    assert "America/Chicago" in time_zone.time_zone_names()


def test_only_an_administrator_sets_it_and_clearing_it_goes_back_to_the_default(
    tmp_path: Path,
) -> None:
    classroom = open_classroom(Settings.for_home(tmp_path))
    environ = {"SISLINK_TIME_ZONE": "Europe/London"}
    try:
        with classroom.transaction() as session:
            teacher = people.create_person(
                session, Actor.system(), name="Tom", email="tom@x.example", roles=[Role.TEACHER]
            )
            with pytest.raises(PermissionDenied):
                time_zone.set_school_time_zone(session, Actor.of(teacher), "Asia/Tokyo")
        with classroom.session() as session:
            assert time_zone.school_time_zone(session, environ).name == "Europe/London"
        with classroom.transaction() as session:
            set_to = time_zone.set_school_time_zone(session, Actor.system(), "Asia/Tokyo")
        assert set_to == time_zone.SchoolTimeZone("Asia/Tokyo", time_zone.FROM_SETTING)
        with classroom.session() as session:
            assert time_zone.school_time_zone(session, environ).name == "Asia/Tokyo"
        with classroom.transaction() as session:
            time_zone.set_school_time_zone(session, Actor.system(), None)
        with classroom.session() as session:
            assert time_zone.school_time_zone(session, environ).source == "environment"
    finally:
        classroom.close()


def test_the_morning_summary_goes_at_its_hour_in_the_school_zone(tmp_path: Path) -> None:
    classroom = open_classroom(Settings.for_home(tmp_path))
    environ = {"SISLINK_SUMMARY_HOUR": "7", "SISLINK_TIME_ZONE": "America/Chicago"}
    try:
        assert school_summary_time(classroom, environ).zone == ZoneInfo("America/Chicago")
        with pytest.raises(SummaryNotConfigured, match="SISLINK_TIME_ZONE is 'Mars/Base'"):
            school_summary_time(classroom, {"SISLINK_TIME_ZONE": "Mars/Base"})
        with classroom.transaction() as session:
            time_zone.set_school_time_zone(session, Actor.system(), "Asia/Tokyo")
        # The administrator's zone wins over the environment's (even a wrong one).
        when = school_summary_time(classroom, environ)
        assert when.zone == ZoneInfo("Asia/Tokyo") and when.at == time(7, 0)
        assert when.due_day(datetime(2026, 3, 1, 21, 59, tzinfo=UTC)) is None  # 06:59 in Tokyo
        assert str(when.due_day(datetime(2026, 3, 1, 22, 0, tzinfo=UTC))) == "2026-03-02"
        assert school_summary_time(classroom, {"SISLINK_TIME_ZONE": "Mars/Base"}).zone == ZoneInfo(
            "Asia/Tokyo"
        )
    finally:
        classroom.close()


def test_the_command_line_shows_and_sets_it(tmp_path: Path) -> None:
    env = {"SISLINK_HOME": str(tmp_path), "SISLINK_TIME_ZONE": "America/Denver"}
    runner = CliRunner()
    shown = runner.invoke(cli, ["time-zone"], env=env)
    assert shown.exit_code == 0 and "America/Denver (from SISLINK_TIME_ZONE)" in shown.output
    refused = runner.invoke(cli, ["time-zone", "Mars/Base"], env=env)
    assert refused.exit_code == 1 and "'Mars/Base' is not a time zone" in refused.output
    set_to = runner.invoke(cli, ["time-zone", "Pacific/Auckland"], env=env)
    assert set_to.exit_code == 0
    assert "Pacific/Auckland (set by an administrator)" in set_to.output
    back = runner.invoke(cli, ["time-zone", "--default", "--json"], env=env)
    assert back.exit_code == 0
    assert (
        '"time_zone": "America/Denver"' in back.output and '"source": "environment"' in back.output
    )


def test_the_school_page_sets_it_and_every_time_shown_follows(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        with served.classroom.transaction() as session:
            ada = people.find_person_by_email(session, ADMIN_EMAIL)
            assert ada is not None
            row, _token = create_api_token(session, Actor.system(), ada, label="sync")
            row.created_at = datetime(2026, 7, 4, 18, 30, tzinfo=UTC)  # a known moment
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        page = admin.get("/admin/school")
        assert page.status_code == 200 and 'id="current-zone"' in page.text
        assert 'href="/admin/school" aria-current="page"' in page.text
        assert "Jul 4, 2026, 6:30\u202fPM UTC" in admin.get("/admin/tokens").text

        refused = admin.post("/admin/school/time-zone", {"time_zone": "Mars/Base", "action": "set"})
        assert refused.status_code == 400
        assert "“Mars/Base” is not a time zone" in refused.text
        assert 'value="Mars/Base"' in refused.text and 'aria-invalid="true"' in refused.text

        saved = admin.post(
            "/admin/school/time-zone", {"time_zone": "America/Chicago", "action": "set"}
        )
        assert "The school&#39;s time zone is now America/Chicago." in saved.text
        assert re.search(r'id="current-zone">America/Chicago<', saved.text)
        tokens = admin.get("/admin/tokens").text
        assert "Jul 4, 2026, 1:30\u202fPM CDT" in tokens and "6:30\u202fPM" not in tokens
        spanish = admin.get("/admin/tokens", headers={"Accept-Language": "es"}).text
        assert "4 jul 2026, 13:30 CDT" in spanish

        back = admin.post("/admin/school/time-zone", {"time_zone": "", "action": "default"})
        assert "back to the default" in back.text
        with served.classroom.session() as session:
            assert time_zone.school_time_zone(session).source != time_zone.FROM_SETTING
            assert session.query(ApiToken).count() == 1

        # Only an administrator opens or changes it.
        served.person_with_password("tom@x.example", Role.TEACHER)
        teacher = served.client()
        teacher.sign_in("tom@x.example")
        assert teacher.get("/admin/school").status_code == 403
        assert (
            teacher.post("/admin/school/time-zone", {"time_zone": "Asia/Tokyo"}).status_code == 403
        )


def test_the_rest_api_shows_and_sets_it(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        with served.classroom.transaction() as session:
            ada = people.find_person_by_email(session, ADMIN_EMAIL)
            assert ada is not None
            _row, token = create_api_token(session, Actor.system(), ada, label="api")
        api = served.client().client
        headers = {"Authorization": f"Bearer {token}"}
        shown = api.get("/api/admin/time-zone", headers=headers)
        assert shown.status_code == 200 and shown.json()["source"] in ("environment", "server")
        refused = api.put("/api/admin/time-zone", json={"time_zone": "Mars/Base"}, headers=headers)
        assert refused.status_code == 422
        assert "'Mars/Base' is not a time zone" in refused.json()["detail"]["message"]
        set_to = api.put("/api/admin/time-zone", json={"time_zone": "Asia/Tokyo"}, headers=headers)
        assert set_to.json() == {"time_zone": "Asia/Tokyo", "source": "setting"}
        assert api.get("/api/admin/time-zone", headers=headers).json()["time_zone"] == "Asia/Tokyo"
        cleared = api.put("/api/admin/time-zone", json={"time_zone": None}, headers=headers)
        assert cleared.json()["source"] != "setting"
        assert api.get("/api/admin/time-zone").status_code == 401


def _zone_file(name: str) -> Path:
    found = time_zone._zone_file(name)
    assert found is not None, name
    return found


def test_the_servers_zone_is_read_as_the_c_library_reads_it(tmp_path: Path) -> None:
    """TZ first (a container's usual way: TZ=America/Chicago over an image's UTC
    /etc/localtime), then /etc/localtime as a link, or as a copy of a zone's file."""
    utc_link = tmp_path / "utc-link"
    utc_link.symlink_to(_zone_file("Etc/UTC"))
    chicago_link = tmp_path / "chicago-link"
    chicago_link.symlink_to(_zone_file("America/Chicago"))
    chicago_copy = tmp_path / "chicago-copy"
    chicago_copy.write_bytes(_zone_file("America/Chicago").read_bytes())
    nothing = tmp_path / "absent"

    def server(tz: str | None, localtime: Path, timezone_file: Path = nothing) -> str:
        environ = {} if tz is None else {"TZ": tz}
        return time_zone.server_time_zone_name(
            environ, localtime=localtime, timezone_file=timezone_file
        )

    assert server(None, utc_link) == "UTC"
    assert server(None, chicago_link) == "America/Chicago"
    assert server("America/Denver", utc_link) == "America/Denver"
    assert server(":America/Denver", utc_link) == "America/Denver"
    assert server(str(_zone_file("America/Denver")), utc_link) == "America/Denver"
    # A POSIX rule names no zone: /etc/localtime says which.
    assert server("EST5EDT,M3.2.0,M11.1.0", chicago_link) == "America/Chicago"
    # /etc/localtime copied, not linked (some images): its bytes say which zone it is.
    assert server(None, chicago_copy) == "America/Chicago"
    debian_name = tmp_path / "timezone"
    debian_name.write_text("US/Central\n")  # the same rules by another name: that name
    assert server(None, chicago_copy, debian_name) == "US/Central"
    debian_name.write_text("Europe/London\n")  # out of date: the file's own zone wins
    assert server(None, chicago_copy, debian_name) == "America/Chicago"
    assert server(None, nothing, debian_name) == "Europe/London"
    assert server(None, nothing) == "UTC"
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a tz file")
    assert server("nonsense", garbage) == "UTC"


def test_sislink_time_zone_as_typed_is_the_summarys_zone_too(tmp_path: Path) -> None:
    """The console takes SISLINK_TIME_ZONE=america/chicago (as it takes it typed); the morning
    summary went silent on it ('not a time zone') while every page said America/Chicago."""
    classroom = open_classroom(Settings.for_home(tmp_path))
    try:
        for typed in ("america/chicago", "America/Chicago ", "US/central"):
            environ = {"SISLINK_SUMMARY_HOUR": "7", "SISLINK_TIME_ZONE": typed}
            with classroom.session() as session:
                shown = time_zone.school_time_zone(session, environ)
            assert shown.source == time_zone.FROM_ENVIRONMENT
            assert school_summary_time(classroom, environ).zone == ZoneInfo(shown.name)
    finally:
        classroom.close()


def test_a_summary_hour_that_daylight_saving_skips_or_repeats_is_due_once_that_day(
    tmp_path: Path,
) -> None:
    """02:30 does not happen in Chicago on 8 March 2026 (02:00 CST -> 03:00 CDT): the summary
    is due from 03:00. 01:30 happens twice on 1 November 2026: due from the first, and the
    second is the same school day (one row a day: sent once)."""
    skipped = _summary_time(tmp_path / "spring", "2:30")
    assert skipped.due_day(datetime(2026, 3, 8, 7, 59, tzinfo=UTC)) is None  # 01:59 CST
    assert str(skipped.due_day(datetime(2026, 3, 8, 8, 0, tzinfo=UTC))) == "2026-03-08"  # 03:00
    repeated = _summary_time(tmp_path / "autumn", "1:30")
    assert repeated.due_day(datetime(2026, 11, 1, 6, 29, tzinfo=UTC)) is None  # 01:29 CDT
    first = repeated.due_day(datetime(2026, 11, 1, 6, 30, tzinfo=UTC))  # 01:30 CDT
    again = repeated.due_day(datetime(2026, 11, 1, 7, 30, tzinfo=UTC))  # 01:30 CST
    assert str(first) == str(again) == "2026-11-01"
    assert repeated.due_day(datetime(2026, 11, 2, 7, 29, tzinfo=UTC)) is None  # 01:29 CST


def _summary_time(home: Path, hour: str) -> SummaryTime:
    home.mkdir()
    classroom = open_classroom(Settings.for_home(home))
    try:
        return school_summary_time(
            classroom, {"SISLINK_SUMMARY_HOUR": hour, "SISLINK_TIME_ZONE": "America/Chicago"}
        )
    finally:
        classroom.close()


def test_the_command_line_says_when_sislink_time_zone_is_no_zone(tmp_path: Path) -> None:
    """The console then keeps the server's zone and the morning summary is not sent: the
    command that shows the zone says why, and how to put it right."""
    env = {"SISLINK_HOME": str(tmp_path), "SISLINK_TIME_ZONE": "Mars/Base"}
    runner = CliRunner()
    shown = runner.invoke(cli, ["time-zone"], env=env)
    assert shown.exit_code == 0
    assert "(the server's own zone)" in shown.output
    assert "SISLINK_TIME_ZONE is 'Mars/Base', which is not a time zone" in shown.output
    set_here = runner.invoke(cli, ["time-zone", "Europe/London"], env=env)
    assert set_here.exit_code == 0 and "SISLINK_TIME_ZONE" not in set_here.output


def test_the_school_page_says_when_sislink_time_zone_is_no_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SISLINK_TIME_ZONE", "Mars/Base")
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        page = admin.get("/admin/school")
        assert 'id="zone-environment-problem"' in page.text
        assert "SISLINK_TIME_ZONE is &#39;Mars/Base&#39;, which is not a time zone" in page.text
        assert "sislink time-zone" not in page.text  # a page says where, not a command
        saved = admin.post(
            "/admin/school/time-zone", {"time_zone": "America/Chicago", "action": "set"}
        )
        assert "zone-environment-problem" not in saved.text
