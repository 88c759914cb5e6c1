"""The console in the reader's language, and its times in the school's time zone.

- Languages: English (the source: every msgid is the English sentence) and Spanish. The reader's
  is their choice (the language picker's cookie), else the best of Accept-Language, else English.
  `Languages` (an ASGI middleware) chooses it once per request and keeps it in a context
  variable, so `_()` in a page's Python and `{% trans %}` / `_()` in a template both read it.
- The catalogue: `locales/messages.pot` (extracted with `babel.cfg`, see docs/translating.md)
  and `locales/<lang>/LC_MESSAGES/messages.po`. The .po files are the source of truth: they are
  compiled into memory when this module is first imported (no .mo files to forget).
- Times: `when()` formats a moment in the school's time zone (a setting,
  `classroom.services.time_zone`) in the reader's locale with Babel (CLDR).
"""

from __future__ import annotations

import gettext as gettext_module
import io
import re
import string
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, tzinfo
from pathlib import Path

from babel.core import Locale, negotiate_locale
from babel.dates import format_date, format_time, get_datetime_format
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LOCALES = Path(__file__).resolve().parent / "locales"
DOMAIN = "messages"
DEFAULT_LANGUAGE = "en"
# Each language in its own words, as the picker offers it.
LANGUAGES: dict[str, str] = {"en": "English", "es": "Español"}
LANGUAGE_COOKIE = "sislink_language"
LANGUAGE_COOKIE_AGE_S = 365 * 24 * 3600


def _load(language: str) -> gettext_module.NullTranslations:
    """The language's .po compiled in memory; English is the source."""
    po_path = LOCALES / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == DEFAULT_LANGUAGE or not po_path.exists():
        return gettext_module.NullTranslations()
    return compile_catalogue(po_path, language)


def compile_catalogue(po_path: Path, language: str) -> gettext_module.GNUTranslations:
    """A .po compiled in memory: fuzzy entries, and any translation that would fail where its
    sentence is formatted (a placeholder renamed, lost or added; a stray brace or %), are left
    out, so that sentence is said in English rather than a page failing. (The tests refuse such
    a catalogue; this is for one edited on a server.)"""
    with po_path.open("rb") as po_file:
        catalog = read_po(po_file, locale=language, domain=DOMAIN)
    for message in list(catalog):
        if message.id and not _formats_alike(message.id, message.string or ""):
            catalog.delete(message.id, context=message.context)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext_module.GNUTranslations(compiled)


def _format_fields(text: str) -> frozenset[str] | None:
    """A str.format() sentence's {fields}; None when it is not one (a lone brace)."""
    try:
        return frozenset(
            name for _text, name, _spec, _conv in string.Formatter().parse(text) if name is not None
        )
    except ValueError:
        return None


def _percent_fields(text: str) -> frozenset[str] | None:
    """A %-formatted sentence's %(fields)s; None when `%` formatting fails on it."""
    names = frozenset(re.findall(r"%\(([^)]*)\)", text))
    try:
        text % dict.fromkeys(names, 1)
    except (KeyError, ValueError, TypeError):
        return None
    return names


def _formats_alike(
    original: str | tuple[str, ...] | list[str], translated: str | tuple[str, ...] | list[str]
) -> bool:
    """Whichever way the English is formatted (Python's `.format()`, a template's `%`), each of
    the translation's forms is formatted that way too without failing (no field the English
    does not give; a form may leave one out, as a singular does its count)."""
    originals = [original] if isinstance(original, str) else list(original)
    translations = [translated] if isinstance(translated, str) else list(translated)
    for fields in (_format_fields, _percent_fields):
        english = [fields(text) for text in originals]
        if any(names is None for names in english):
            continue  # the English is not formatted this way
        wanted = frozenset().union(*(names or frozenset() for names in english))
        for text in translations:
            if not text:
                continue  # untranslated: English anyway
            found = fields(text)
            if found is None or not found <= wanted:
                return False
    return True


TRANSLATIONS: dict[str, gettext_module.NullTranslations] = {
    language: _load(language) for language in LANGUAGES
}

_language: ContextVar[str] = ContextVar("sislink_language", default=DEFAULT_LANGUAGE)
_time_zone: ContextVar[tzinfo | None] = ContextVar("sislink_time_zone", default=None)


class _RequestTimeZone:
    """The school's zone for one request, read from its app's classroom the first time a time
    is worded (a page's Python may word one before its template renders: the gradebook's
    'Sent to the SIS {when}'), then kept. One object per request: the endpoint's thread sees
    it through its copy of the request's context, and the zone it reads is kept for all."""

    def __init__(self, app: object) -> None:
        self.app = app
        self.zone: tzinfo | None = None

    def get(self) -> tzinfo:
        if self.zone is None:
            # Imported here: the console's app and auth import this module.
            from sislink.classroom.services.time_zone import school_time_zone
            from sislink.console.app import classroom_of

            with classroom_of(self.app).session() as session:  # type: ignore[arg-type]
                self.zone = school_time_zone(session).zone
        return self.zone


_request_time_zone: ContextVar[_RequestTimeZone | None] = ContextVar(
    "sislink_request_time_zone", default=None
)


def current_language() -> str:
    return _language.get()


def current_time_zone() -> tzinfo:
    """The zone times are worded in: the one a block asked for (`in_time_zone`), else the
    school's for the request being answered, else UTC (outside any request)."""
    chosen = _time_zone.get()
    if chosen is not None:
        return chosen
    request_zone = _request_time_zone.get()
    return request_zone.get() if request_zone is not None else UTC


@contextmanager
def speaking(language: str) -> Iterator[None]:
    """Run a block in `language` (tests, and anything outside a request)."""
    token = _language.set(language if language in LANGUAGES else DEFAULT_LANGUAGE)
    try:
        yield
    finally:
        _language.reset(token)


def forget_reader() -> None:
    """Put the language and time zone of this context back to their defaults. Work handed
    from a request to the background loop runs in a copy of the request's context: without
    this, a job started from a Spanish page would run speaking Spanish (and carry the
    request's zone lookup)."""
    _language.set(DEFAULT_LANGUAGE)
    _time_zone.set(None)
    _request_time_zone.set(None)


@contextmanager
def in_time_zone(zone: tzinfo) -> Iterator[None]:
    """Times formatted in the block are shown in `zone` (the school's)."""
    token = _time_zone.set(zone)
    try:
        yield
    finally:
        _time_zone.reset(token)


def gettext(message: str) -> str:
    """`message` (English) in the reader's language."""
    return TRANSLATIONS[_language.get()].gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return TRANSLATIONS[_language.get()].ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Marks a message for the catalogue where it is defined; `_()` translates it where it is
    shown (module constants are made before any reader's language is known)."""
    return message


# Statuses, outcomes, roles and roster records as pages say them (a badge's word); anything
# else is said as it is.
STATUS_WORDS: dict[str, str] = {
    "queued": N_("queued"),
    "running": N_("running"),
    "succeeded": N_("succeeded"),
    "needs_attention": N_("needs attention"),
    "failed": N_("failed"),
    "on_hold": N_("on hold"),
    "cancelled": N_("cancelled"),
    "partial": N_("partial"),
    "refused": N_("refused"),
    "stopped": N_("stopped"),
    "dry_run": N_("dry run"),
    "draft": N_("draft"),
    "authorised": N_("authorised"),
    "disconnected": N_("disconnected"),
    "published": N_("published"),
    "returned": N_("returned"),
    "deleted": N_("deleted"),
    "linked": N_("linked"),
    "skipped": N_("skipped"),
    "created": N_("created"),
    "updated": N_("updated"),
    "unchanged": N_("unchanged"),
    "deactivated": N_("deactivated"),
    "sent": N_("sent"),
    "would_delete": N_("would delete"),
    "removed": N_("removed"),
    "held": N_("held"),
    "approved": N_("approved"),
    "discarded": N_("discarded"),
    # Roles.
    "admin": N_("admin"),
    "teacher": N_("teacher"),
    "student": N_("student"),
    # What a roster import reads.
    "schools": N_("schools"),
    "terms": N_("terms"),
    "grading_periods": N_("grading periods"),
    "courses": N_("courses"),
    "classes": N_("classes"),
    "enrolments": N_("enrolments"),
    "people": N_("people"),
    "users": N_("users"),
}


def status_words(value: object) -> str:
    """A status ("needs_attention") in the reader's words ("needs attention")."""
    text = str(value or "")
    found = STATUS_WORDS.get(text)
    return gettext(found) if found is not None else text.replace("_", " ")


def status_words_map() -> dict[str, str]:
    """Every status in the reader's words, for a page's script (progress.js)."""
    return {status: gettext(words) for status, words in STATUS_WORDS.items()}


def _accepted(header: str) -> list[str]:
    """Accept-Language's languages, best first ("es-MX,es;q=0.9,en;q=0.5")."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        name, _sep, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _eq, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name and name != "*" and quality > 0:
            # Language tags are case-insensitive (RFC 4647): "ES-MX" reads Spanish too, and
            # what we answer (Content-Language, <html lang>) is always our own spelling.
            weighted.append((-quality, position, name.replace("_", "-").lower()))
    return [name for _q, _p, name in sorted(weighted)]


def negotiate(accept_language: str | None, chosen: str | None = None) -> str:
    """The reader's language: their choice if we speak it, else Accept-Language's best that we
    speak (es-MX reads Spanish), else English."""
    if chosen in LANGUAGES:
        return str(chosen)
    found = negotiate_locale(_accepted(accept_language or ""), list(LANGUAGES), sep="-")
    if found is None:
        # negotiate_locale matches "es-MX" only to an "es-MX" it knows: try each language alone.
        for name in _accepted(accept_language or ""):
            base = name.split("-")[0].lower()
            if base in LANGUAGES:
                return base
        return DEFAULT_LANGUAGE
    return found.lower() if found.lower() in LANGUAGES else DEFAULT_LANGUAGE


class Languages:
    """Chooses each request's language (cookie, then Accept-Language) for everything the
    request runs: a plain ASGI middleware, so the endpoint (and its thread) sees the choice."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        # Starlette's lenient parser (as request.cookies): SimpleCookie stops at the first
        # cookie it finds malformed (another site's "a=b c"), and the choice after it was lost.
        cookies = cookie_parser(headers.get(b"cookie", b"").decode("latin-1"))
        chosen = cookies.get(LANGUAGE_COOKIE)
        language = negotiate(headers.get(b"accept-language", b"").decode("latin-1"), chosen)

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The picker's cookie chooses before Accept-Language: a cache keys on both.
                extra = [
                    (b"content-language", language.encode()),
                    (b"vary", b"Accept-Language, Cookie"),
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        zone_token = _request_time_zone.set(
            _RequestTimeZone(scope["app"]) if "app" in scope else None
        )
        try:
            with speaking(language):
                await self.app(scope, receive, send_with_language)
        finally:
            _request_time_zone.reset(zone_token)


def _as_moment(value: datetime | date | str | None) -> datetime | date | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if len(value) == 10:  # "2026-03-10": a day, not UTC's midnight of it
            return date.fromisoformat(value)
        moment: datetime | date = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        moment = value
    if isinstance(moment, datetime) and moment.tzinfo is None:
        # Stored naive: sislink keeps every timestamp in UTC (SQLite forgets the zone).
        moment = moment.replace(tzinfo=UTC)
    return moment


def when(value: datetime | date | str | None) -> str:
    """A moment as the reader reads it: in the school's time zone, in their language, to the
    minute, with the zone's abbreviation ("Mar 10, 2026, 2:00 AM CDT"; "10 mar 2026, 2:00 CDT").
    A date alone is a date ("Mar 10, 2026")."""
    try:
        moment = _as_moment(value)
    except ValueError:
        return str(value)
    if moment is None:
        return ""
    locale = Locale.parse(_language.get())
    if not isinstance(moment, datetime):
        return format_date(moment, "medium", locale=locale)
    local = moment.astimezone(current_time_zone())
    pattern = str(get_datetime_format("medium", locale=locale))
    text = pattern.replace("{1}", format_date(local, "medium", locale=locale)).replace(
        "{0}", format_time(local, "short", locale=locale)
    )
    return f"{text} {local.tzname() or ''}".rstrip()


def day(value: date | datetime | str | None) -> str:
    """A calendar day in the reader's language ("Mar 10, 2026"; "10 mar 2026")."""
    try:
        moment = _as_moment(value)
    except ValueError:
        return str(value)
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        moment = moment.astimezone(current_time_zone())
    return format_date(moment, "medium", locale=Locale.parse(_language.get()))
