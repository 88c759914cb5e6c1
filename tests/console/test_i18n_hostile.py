"""The console's language and time zone against what a browser or a client may send (issue 16):
hostile Accept-Language headers, language tags in capitals, other sites' cookies, redirects
that lead elsewhere, a REST client that is not an administrator; and a Spanish catalogue whose
placeholders would make a page fail when it is formatted."""

from __future__ import annotations

import re
import string
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import select

from console.console_world import ADMIN_EMAIL, PASSWORD, console
from sislink.classroom import Actor
from sislink.classroom.models import AuditEvent, Role
from sislink.classroom.services import people, time_zone
from sislink.classroom.services.api_tokens import create_api_token
from sislink.console import i18n

SPANISH_PO = i18n.LOCALES / "es" / "LC_MESSAGES" / "messages.po"


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        ("ES", "es"),  # language tags are case-insensitive (RFC 4647)
        ("ES-MX,en;q=0.5", "es"),
        ("Es-419", "es"),
        ("EN-us, es;q=0.9", "en"),
        ("es;q=nan, en;q=0.1", "en"),  # a q-value that is no number counts for nothing
        ("es;q=inf", "es"),
        ("es;q=-1", "en"),
        ("*", "en"),
        ("*;q=1, es;q=0.1", "es"),
        (";;;,,,=;q=;", "en"),
        ("es;q=0.5;q=x, en;q=0.4", "en"),
        ("\u00e9s, es", "es"),
    ],
)
def test_hostile_or_capitalised_accept_language_still_finds_the_language(
    accept_language: str, expected: str
) -> None:
    assert i18n.negotiate(accept_language) == expected


def test_a_page_answers_huge_and_garbled_accept_language_headers(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        reader = served.client()
        for header in (
            "x" * 10_000,
            ",".join(["zz-ZZ;q=0.5"] * 900) + ",es;q=0.4",
            "es;q=" + "9" * 5_000,
            "\u00ff\u00fe;q=1",  # Latin-1 bytes a browser would never send
        ):
            page = reader.get("/login", headers={"Accept-Language": header.encode("latin-1")})
            assert page.status_code == 200
            assert page.headers["content-language"] in ("en", "es")
        capital = reader.get("/login", headers={"Accept-Language": "ES-MX"})
        assert capital.headers["content-language"] == "es"
        assert '<html lang="es">' in capital.text and ">Iniciar sesión</h1>" in capital.text


def test_the_language_cookie_counts_beside_another_sites_odd_cookie(tmp_path: Path) -> None:
    """Another application on the same host may set a cookie Python's strict parser gives up
    on (a space in its value): the reader's choice is still read."""
    with console(tmp_path) as served:
        reader = served.client()
        for cookies in (
            "tracker=a b; sislink_language=es",
            'broken="unterminated; sislink_language=es',
            "sislink_language=es; other=[1,2]",
        ):
            page = reader.client.get(
                "/login", headers={"Cookie": cookies, "Accept-Language": "en-US"}
            )
            assert page.status_code == 200, cookies
            assert '<html lang="es">' in page.text, cookies


@pytest.mark.parametrize(
    "next_path",
    [
        "//evil.example/",
        "/\\evil.example/",
        "\\\\evil.example/",
        "/\t/evil.example/",
        "/%2F%2Fevil.example/",
        "https://evil.example/",
        "javascript:alert(1)",
        "/login\r\nSet-Cookie: owned=1",
        "",
    ],
    ids=[
        "slashes",
        "backslash",
        "two-backslashes",
        "tab",
        "encoded",
        "absolute",
        "js",
        "crlf",
        "empty",
    ],
)
def test_the_language_picker_never_leads_to_another_site(tmp_path: Path, next_path: str) -> None:
    with console(tmp_path) as served:
        reader = served.client()
        reader.get("/login")
        chosen = reader.client.post(
            "/language",
            data={"language": "es", "next": next_path, "csrf_token": reader.token},
            follow_redirects=False,
        )
        assert chosen.status_code == 303
        location = chosen.headers["location"]
        # A path on this site: one slash, then no slash, backslash or control character that
        # a browser would read as the start of another host.
        assert re.fullmatch(r"/(?![/\\])[^\s\\]*", location), location
        assert not any(c.startswith("owned") for c in chosen.headers.get_list("set-cookie"))
        cookie = chosen.headers["set-cookie"]
        assert "sislink_language=es" in cookie
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie


def test_the_language_picker_is_a_form_with_the_csrf_check(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        reader = served.client()
        forged = reader.post("/language", {"language": "es", "next": "/login"}, csrf=False)
        assert forged.status_code == 403
        assert "sislink_language" not in forged.headers.get("set-cookie", "")
        assert reader.client.get("/language").status_code == 405


def test_only_an_administrator_changes_the_time_zone_over_rest_and_it_is_audited(
    tmp_path: Path,
) -> None:
    with console(tmp_path) as served:
        teacher_id = served.person_with_password("tom@x.example", Role.TEACHER)
        with served.classroom.transaction() as session:
            ada = people.find_person_by_email(session, ADMIN_EMAIL)
            tom = people.find_person_by_email(session, "tom@x.example")
            assert ada is not None and tom is not None and tom.id == teacher_id
            _row, admin_token = create_api_token(session, Actor.system(), ada, label="admin")
            _row, teacher_token = create_api_token(session, Actor.system(), tom, label="tom")
        api = served.client().client
        refused = api.put(
            "/api/admin/time-zone",
            json={"time_zone": "Asia/Tokyo"},
            headers={"Authorization": f"Bearer {teacher_token}"},
        )
        assert refused.status_code == 403
        assert api.put("/api/admin/time-zone", json={"time_zone": "Asia/Tokyo"}).status_code == 401
        huge = api.put(
            "/api/admin/time-zone",
            json={"time_zone": "A" * 10_000},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert huge.status_code == 422
        done = api.put(
            "/api/admin/time-zone",
            json={"time_zone": "america/chicago"},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        assert done.json() == {"time_zone": "America/Chicago", "source": "setting"}
        with served.classroom.session() as session:
            events = session.scalars(
                select(AuditEvent).where(AuditEvent.action == "organisation.updated")
            ).all()
        assert [(e.actor_id, e.details) for e in events] == [
            (ada.id, {"time_zone": "America/Chicago"})
        ]
        # A teacher signed in to the console is refused the School page's form too.
        teacher = served.client()
        teacher.sign_in("tom@x.example", PASSWORD)
        assert (
            teacher.post(
                "/admin/school/time-zone", {"time_zone": "Asia/Tokyo", "action": "set"}
            ).status_code
            == 403
        )


def test_a_name_with_markup_in_a_translated_sentence_is_escaped(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        refused = admin.post(
            "/admin/school/time-zone",
            {"time_zone": "<script>alert(1)</script>", "action": "set"},
            headers={"Accept-Language": "es"},
        )
        assert refused.status_code == 400
        assert "<script>alert(1)</script>" not in refused.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in refused.text


def _format_names(text: str) -> set[str] | None:
    """The {name} fields of a str.format() sentence; None when it is no format string."""
    try:
        return {
            name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name is not None
        }
    except ValueError:
        return None


def _percent_names(text: str) -> set[str] | None:
    """The %(name)s fields of a %-formatted sentence; None when `%` formatting fails on it."""
    names = set(re.findall(r"%\(([a-z_]+)\)", text))
    try:
        text % {name: 1 for name in names}
    except (KeyError, ValueError, TypeError):
        return None
    return names


def test_every_spanish_sentence_formats_as_its_english_one_does() -> None:
    """A page formats a sentence one of two ways: `_("...{name}...").format(name=...)` in Python,
    or `%` with its variables in a template ({% trans %}, newstyle gettext: even with none).
    Whatever way the English works, the Spanish must work the same way with the same names, or
    the page fails (a stray brace or %, `{nombre}` for `{name}`, an empty `{}`)."""
    with SPANISH_PO.open("rb") as po_file:
        spanish = read_po(po_file, locale="es")
    wrong: list[tuple[str, str]] = []
    for message in spanish:
        if not message.id:
            continue
        originals = [message.id] if isinstance(message.id, str) else list(message.id)
        translations = [message.string] if isinstance(message.string, str) else list(message.string)
        english_format = [_format_names(original) for original in originals]
        english_percent = [_percent_names(original) for original in originals]
        for text in translations:
            if not text:
                continue
            if all(names is not None for names in english_format):
                wanted = set().union(*(names or set() for names in english_format))
                if _format_names(text) != wanted:
                    wrong.append((originals[0], text))
            if all(names is not None for names in english_percent):
                wanted = set().union(*(names or set() for names in english_percent))
                found = _percent_names(text)
                if found is None or not found <= wanted:
                    wrong.append((originals[0], text))
    assert wrong == []


def test_a_moment_near_midnight_is_on_the_schools_day_whatever_its_form() -> None:
    """03:00 UTC on 10 March is 22:00 on 9 March in Chicago: `day` and `when` agree on the 9th
    whether the moment came aware, naive (SQLite keeps UTC without its zone) or as ISO text; a
    date alone ("2026-03-10", as JSON reports keep days) is that day, not UTC's midnight."""
    chicago = ZoneInfo("America/Chicago")
    with i18n.in_time_zone(chicago), i18n.speaking("en"):
        for moment in (
            datetime(2026, 3, 10, 3, 0, tzinfo=UTC),
            datetime(2026, 3, 10, 3, 0),
            "2026-03-10T03:00:00",
            "2026-03-10T03:00:00Z",
        ):
            assert i18n.day(moment) == "Mar 9, 2026", moment
            assert i18n.when(moment) == "Mar 9, 2026, 10:00\u202fPM CDT", moment
        assert i18n.day("2026-03-10") == i18n.day(date(2026, 3, 10)) == "Mar 10, 2026"
        assert i18n.when("2026-03-10") == "Mar 10, 2026"


BROKEN_PO = r"""
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=2; plural=(n != 1);\n"

msgid "The school's time zone is now {zone}."
msgstr "La zona horaria de la escuela es ahora {zona}."

msgid "Job {job} is cancelled."
msgstr "El trabajo {} está cancelado."

msgid "Every time is in the school's zone."
msgstr "Cada hora está en la zona de la escuela (100%)."

msgid "Hello %(name)s"
msgstr "Hola %(nombre)s"

msgid "%(count)s class"
msgid_plural "%(count)s classes"
msgstr[0] "%(count)s clase"
msgstr[1] "%(cuenta)s clases"

msgid "Sign out"
msgstr "Cerrar sesión"
"""


def test_a_translation_that_would_fail_where_it_is_formatted_is_left_out(tmp_path: Path) -> None:
    """Should a translation with a wrong placeholder reach a server (a .po edited there, a test
    not run), the page says that sentence in English: never a KeyError or a 500."""
    po_path = tmp_path / "messages.po"
    po_path.write_text(BROKEN_PO, encoding="utf-8")
    spanish = i18n.compile_catalogue(po_path, "es")
    assert spanish.gettext("Sign out") == "Cerrar sesión"
    zone = spanish.gettext("The school's time zone is now {zone}.").format(zone="UTC")
    assert zone == "The school's time zone is now UTC."
    assert spanish.gettext("Job {job} is cancelled.").format(job=3) == "Job 3 is cancelled."
    # A {% trans %} sentence is %-formatted (newstyle gettext), even with no variables.
    assert spanish.gettext("Every time is in the school's zone.") % {} == (
        "Every time is in the school's zone."
    )
    assert spanish.gettext("Hello %(name)s") % {"name": "Ana"} == "Hello Ana"
    assert spanish.ngettext("%(count)s class", "%(count)s classes", 2) % {"count": 2} == (
        "2 classes"
    )


def test_a_page_says_it_varies_with_the_language_cookie_too(tmp_path: Path) -> None:
    """The page's language comes from the picker's cookie before Accept-Language: a cache
    between the school and sislink must key on both, or it hands one reader's Spanish page to
    the next."""
    with console(tmp_path) as served:
        page = served.client().client.get("/login", headers={"Cookie": "sislink_language=es"})
        varies = {
            name.strip().lower()
            for header in page.headers.get_list("vary")
            for name in header.split(",")
        }
        assert {"accept-language", "cookie"} <= varies


def test_a_time_a_pages_python_words_is_in_the_school_zone_and_languages_stay_apart(
    tmp_path: Path,
) -> None:
    """A page may word a time in its Python, before its template renders (the gradebook's
    'Sent to the SIS {when}'): it is in the school's zone too, not UTC. And readers asking at
    the same moment in different languages each get their own."""
    with console(tmp_path) as served:
        with served.classroom.transaction() as session:
            time_zone.set_school_time_zone(session, Actor.system(), "America/Chicago")

        @served.app.get("/worded-in-python")
        def worded() -> dict[str, str]:
            moment = datetime(2026, 7, 4, 18, 30, tzinfo=UTC)
            return {"when": i18n.when(moment), "language": i18n.current_language()}

        reader = served.client().client
        english = reader.get("/worded-in-python").json()
        assert english == {"when": "Jul 4, 2026, 1:30\u202fPM CDT", "language": "en"}

        def ask(language: str) -> tuple[str, dict[str, str]]:
            answer = reader.get("/worded-in-python", headers={"Accept-Language": language})
            return language, answer.json()

        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(ask, ["es", "en"] * 20))
        for asked, answer in answers:
            assert answer["language"] == asked
            assert answer["when"] == (
                "4 jul 2026, 13:30 CDT" if asked == "es" else "Jul 4, 2026, 1:30\u202fPM CDT"
            )
        # Outside any request: English, UTC.
        assert i18n.current_language() == "en"
        assert i18n.when(datetime(2026, 7, 4, 18, 30, tzinfo=UTC)).endswith("6:30\u202fPM UTC")
