"""The console's background loop runs jobs started from pages: a job is nobody's page, so it
does not carry the reader's language or time zone with it."""

from __future__ import annotations

from datetime import tzinfo
from zoneinfo import ZoneInfo

from sislink.console.background import BackgroundWork
from sislink.console.i18n import current_language, current_time_zone, in_time_zone, speaking


async def _language_and_zone() -> tuple[str, tzinfo]:
    return current_language(), current_time_zone()


def test_work_handed_over_from_a_spanish_page_runs_in_the_default_language_and_utc() -> None:
    work = BackgroundWork()
    try:
        with speaking("es"), in_time_zone(ZoneInfo("America/Chicago")):
            future = work.submit(_language_and_zone())
            # The caller itself keeps its reader's language and zone.
            assert current_language() == "es"
        language, zone = future.result(timeout=10)
    finally:
        work.stop()
    assert language == "en"
    assert str(zone) == "UTC"
