"""The school's time zone: every time the console shows, and the morning summary's hour, are in it.

An administrator sets it (console, `sislink time-zone`, REST); it is kept in the organisation's
settings as an IANA name ("America/Chicago"). Until then it is SISLINK_TIME_ZONE when that is
set (and a time zone), else the server's own zone (TZ, else /etc/localtime), else UTC.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import TZPATH, ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session

from sislink.classroom.errors import InvalidInput
from sislink.classroom.models import Organisation
from sislink.classroom.services.access import Actor, require_admin
from sislink.classroom.services.audit import record_event
from sislink.classroom.services.organisation import organisation

SETTING = "time_zone"
ENVIRONMENT_VARIABLE = "SISLINK_TIME_ZONE"
LOCALTIME = Path("/etc/localtime")
ETC_TIMEZONE = Path("/etc/timezone")  # Debian's name of the zone /etc/localtime is
# The administrator's setting, SISLINK_TIME_ZONE, or the server's: where the zone came from.
FROM_SETTING, FROM_ENVIRONMENT, FROM_SERVER = "setting", "environment", "server"


class NotATimeZone(InvalidInput):
    """A name that is not an IANA time zone."""


@dataclass(frozen=True)
class SchoolTimeZone:
    """The zone in use and where it came from (the setting, SISLINK_TIME_ZONE, the server)."""

    name: str
    source: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.name)


def zone_named(name: str) -> ZoneInfo:
    """The IANA zone called `name`; a name that is none is refused in one sentence."""
    # "america/chicago" or "America/New York" as typed: the zone's own spelling. Only the tz
    # database's names: never a path, a directory or the system's "localtime".
    cleaned = _known_zones().get(name.strip().replace(" ", "_").lower(), "")
    try:
        if not cleaned:
            raise ValueError(name)
        return ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError):
        raise NotATimeZone(
            f"{name.strip()!r} is not a time zone: give the school's IANA name, such as "
            "America/Chicago, America/New_York or Europe/London."
        ) from None


@cache
def _known_zones() -> dict[str, str]:
    """Every zone name the tz database has, by its lower case."""
    return {
        known.lower(): known
        for known in available_timezones()
        if known not in ("Factory", "localtime", "posixrules")
    }


def server_time_zone_name(
    environ: Mapping[str, str] | None = None,
    *,
    localtime: Path | None = None,
    timezone_file: Path | None = None,
) -> str:
    """The server's own zone by its IANA name, as the C library reads it: TZ when it names a
    zone (":America/Chicago" too; a POSIX rule such as "EST5EDT,M3.2.0,M11.1.0" names none),
    else /etc/localtime: where it points, or, when it is a copy, /etc/timezone if that names
    the same rules, else the tz database's zone with the same bytes; else UTC."""
    env = os.environ if environ is None else environ
    localtime = LOCALTIME if localtime is None else localtime
    timezone_file = ETC_TIMEZONE if timezone_file is None else timezone_file
    found = _named(_after_zoneinfo(env.get("TZ", "").strip().lstrip(":")))
    if found is None and localtime.is_symlink():
        try:
            found = _named(_after_zoneinfo(str(localtime.resolve())))
        except OSError:
            found = None
    if found is None:
        found = _copied_zone(localtime, _named(_read_text(timezone_file)))
    if found is None:
        return "UTC"
    return "UTC" if found in _UTC_ALIASES else found


def _after_zoneinfo(path_or_name: str) -> str:
    """The zone's name from a tz file's path: ".../zoneinfo/America/Chicago" (or
    ".../zoneinfo/posix/America/Chicago") is America/Chicago; a name is itself."""
    if "/zoneinfo/" not in path_or_name:
        return path_or_name
    name = path_or_name.split("/zoneinfo/", 1)[1]
    return name.split("/", 1)[1] if name.startswith(("posix/", "right/")) else name


def _named(name: str) -> str | None:
    if not name:
        return None
    try:
        return zone_named(name).key
    except NotATimeZone:
        return None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()[:200]
    except OSError:
        return ""


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _zone_file(name: str) -> Path | None:
    for directory in TZPATH:
        candidate = Path(directory) / name
        if candidate.is_file():
            return candidate
    return None


def _copied_zone(localtime: Path, hinted: str | None) -> str | None:
    """The zone whose tz file /etc/localtime is a copy of (Debian's /etc/timezone names it;
    some images copy the file and name nothing): `hinted` when its bytes are the same, else the
    tz database's zone with the same bytes. None when there is no /etc/localtime."""
    copied = _read_bytes(localtime)
    if copied is None:
        return hinted
    if hinted is not None:
        hinted_file = _zone_file(hinted)
        if hinted_file is None or _read_bytes(hinted_file) == copied:
            return hinted
    return _zone_with_bytes(copied)


_CITY_AREAS = (
    "Africa/",
    "America/",
    "Antarctica/",
    "Asia/",
    "Atlantic/",
    "Australia/",
    "Europe/",
    "Indian/",
    "Pacific/",
)


@lru_cache(maxsize=8)  # every page asks; the search reads the tz database's ~600 files
def _zone_with_bytes(copied: bytes) -> str | None:
    """The zone whose tz file is `copied`: UTC first, then an Area/City name (America/Chicago
    over its alias US/Central), alphabetically."""
    same = [
        name
        for name in _known_zones().values()
        if (found := _zone_file(name)) is not None and _read_bytes(found) == copied
    ]
    if not same:
        return None
    return min(same, key=lambda name: (name != "UTC", not name.startswith(_CITY_AREAS), name))


_UTC_ALIASES = frozenset(
    {"Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Zulu", "Etc/Zulu"}
)


def default_time_zone(environ: Mapping[str, str] | None = None) -> SchoolTimeZone:
    """The zone before an administrator sets one: SISLINK_TIME_ZONE if it is a zone, else the
    server's."""
    env = os.environ if environ is None else environ
    given = env.get(ENVIRONMENT_VARIABLE, "").strip()
    if given:
        try:
            return SchoolTimeZone(zone_named(given).key, FROM_ENVIRONMENT)
        except NotATimeZone:
            pass  # said where it is read for the summary; the console keeps the server's
    return SchoolTimeZone(server_time_zone_name(), FROM_SERVER)


def environment_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """The sentence to say when SISLINK_TIME_ZONE is set but names no zone (the console keeps
    the server's zone; the morning summary is not sent until a zone is set), else None."""
    env = os.environ if environ is None else environ
    given = env.get(ENVIRONMENT_VARIABLE, "").strip()
    if not given or _named(given) is not None:
        return None
    return (
        f"{ENVIRONMENT_VARIABLE} is {given!r}, which is not a time zone: the server's own zone "
        "is used and the morning summary is not sent; set it to the school's IANA name, such "
        "as America/Chicago, or set the zone here (sislink time-zone ZONE)."
    )


def school_time_zone(session: Session, environ: Mapping[str, str] | None = None) -> SchoolTimeZone:
    """The school's zone: the administrator's setting, else the default."""
    found = session.scalars(select(Organisation).order_by(Organisation.id)).first()
    stored = (found.settings or {}).get(SETTING) if found is not None else None
    if isinstance(stored, str) and stored:
        try:
            return SchoolTimeZone(zone_named(stored).key, FROM_SETTING)
        except NotATimeZone:
            pass  # a zone this server's tz database no longer has: the default instead
    return default_time_zone(environ)


def due_at_noon(session: Session, day: date) -> datetime:
    """A due date given as a day (a form's date picker, `2026-10-01` in the REST API or on the
    command line): noon of that day in the school's time zone, in UTC. It is then that day for
    the school, which is the day the export's grading period and the class page go by: noon
    UTC would be the next day in New Zealand (UTC+12/13)."""
    noon = datetime.combine(day, time(12), tzinfo=school_time_zone(session).zone)
    return noon.astimezone(UTC)


def set_school_time_zone(session: Session, actor: Actor, name: str | None) -> SchoolTimeZone:
    """Set the school's zone (an IANA name); None or "" goes back to the default."""
    require_admin(actor, "change the school's time zone")
    found = organisation(session)
    settings = dict(found.settings or {})
    if name is None or not name.strip():
        settings.pop(SETTING, None)
        chosen = None
    else:
        chosen = zone_named(name).key
        settings[SETTING] = chosen
    found.settings = settings
    record_event(
        session,
        actor,
        "organisation.updated",
        f"organisation:{found.id}",
        {"time_zone": chosen or "default"},
    )
    session.flush()
    return school_time_zone(session)


def time_zone_names() -> list[str]:
    """Every zone this server knows, for a list to choose from (Area/City names first)."""
    names = sorted(
        name
        for name in available_timezones()
        if "/" in name and not name.startswith(("Etc/", "SystemV/", "posix", "right"))
    )
    return ["UTC", *names]
