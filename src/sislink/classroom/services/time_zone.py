"""The school's time zone: every time the console shows, and the morning summary's hour, are in it.

An administrator sets it (console, `sislink time-zone`, REST); it is kept in the organisation's
settings as an IANA name ("America/Chicago"). Until then it is SISLINK_TIME_ZONE when that is
set (and a time zone), else the server's own zone (/etc/localtime), else UTC.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

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


def server_time_zone_name() -> str:
    """The server's own zone by its IANA name: where /etc/localtime points, else TZ, else UTC."""
    try:
        target = str(LOCALTIME.resolve())
    except OSError:
        target = ""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    if "/zoneinfo/" in target:
        name = target.split("/zoneinfo/", 1)[1]
        candidates.insert(
            0, name.split("/", 1)[1] if name.startswith(("posix/", "right/")) else name
        )
    for name in candidates:
        if not name:
            continue
        try:
            key = zone_named(name).key
        except NotATimeZone:
            continue
        return "UTC" if key in _UTC_ALIASES else key
    return "UTC"


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
