"""The console in the reader's language (issue 16): the catalogue is complete and up to date,
a page asked for in Spanish is in Spanish (its dates too), English stays the default, and the
footer's language picker wins over what the browser asks for."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from console.console_world import (
    ADMIN_EMAIL,
    connect_and_authorise,
    console,
    import_roster,
    invite_and_sign_in,
)
from sislink.classroom import Actor
from sislink.classroom.services import coursework as coursework_service
from sislink.classroom.services import people
from sislink.classroom.services.api_tokens import create_api_token
from sislink.console import i18n
from sislink.oneroster.provider.server import running_provider

REPO = Path(__file__).resolve().parents[2]
POT = i18n.LOCALES / "messages.pot"
SPANISH_PO = i18n.LOCALES / "es" / "LC_MESSAGES" / "messages.po"
BRACES = re.compile(r"\{[a-z_]+(?:![rs])?\}")
SPANISH_MONTH = r"(?:ene|feb|mar|abr|may|jun|jul|ago|sept?|oct|nov|dic)"


def message_ids(path: Path) -> set[str | tuple[str, ...]]:
    with path.open("rb") as po_file:
        catalog = read_po(po_file)
    return {
        message.id if isinstance(message.id, str) else tuple(message.id)
        for message in catalog
        if message.id
    }


def test_the_template_is_what_extraction_finds_in_the_console_now() -> None:
    """Run `pybabel extract -F babel.cfg -k N_` in the test: a wrapped message missing from
    messages.pot (or one left there that no page says any more) fails here."""
    with (REPO / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    keywords = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
    found: set[str | tuple[str, ...]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(REPO), method_map, options_map, keywords=keywords
    ):
        found.add(message if isinstance(message, str) else tuple(message))
    committed = message_ids(POT)
    assert found - committed == set(), "run the extraction in docs/translating.md"
    assert committed - found == set(), "messages.pot has messages no page says any more"
    assert len(committed) > 400


def test_every_message_has_a_spanish_translation_with_the_same_placeholders() -> None:
    with SPANISH_PO.open("rb") as po_file:
        spanish = read_po(po_file, locale="es")
    assert message_ids(SPANISH_PO) == message_ids(POT)
    for message in spanish:
        if not message.id:
            continue
        assert not message.fuzzy, message.id
        originals = [message.id] if isinstance(message.id, str) else list(message.id)
        translations = [message.string] if isinstance(message.string, str) else list(message.string)
        assert translations and all(text.strip() for text in translations), message.id
        for text in translations:
            # %(name)s and {name} placeholders: the same ones, or a value would be lost.
            assert set(re.findall(r"%\([a-z_]+\)s", text)) <= set(
                re.findall(r"%\([a-z_]+\)s", " ".join(originals))
            ), (message.id, text)
            assert set(BRACES.findall(text)) == set(BRACES.findall(originals[0])), message.id
    assert list(spanish.check()) == []  # Babel's own checks (python-format placeholders)


@pytest.mark.parametrize(
    ("accept_language", "expected"),
    [
        (None, "en"),
        ("en-US,en;q=0.9", "en"),  # Playwright's Chromium
        ("es", "es"),
        ("es-MX,es;q=0.9,en;q=0.5", "es"),
        ("fr-FR, es;q=0.5, en;q=0.2", "es"),
        ("fr, de", "en"),
        ("en;q=0.4, es;q=0.8", "es"),
        ("es;q=0", "en"),
    ],
)
def test_the_language_is_negotiated_from_accept_language(
    accept_language: str | None, expected: str
) -> None:
    assert i18n.negotiate(accept_language) == expected


def test_times_are_in_the_school_zone_and_the_readers_words() -> None:
    moment = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
    with i18n.in_time_zone(ZoneInfo("America/Chicago")):
        with i18n.speaking("en"):
            # CLDR puts a narrow no-break space before AM.
            assert i18n.when(moment) == "Mar 10, 2026, 2:00\u202fAM CDT"
            assert i18n.when("2026-03-10T07:00:00Z") == "Mar 10, 2026, 2:00\u202fAM CDT"
            assert i18n.status_words("needs_attention") == "needs attention"
        with i18n.speaking("es"):
            assert i18n.when(moment) == "10 mar 2026, 2:00 CDT"
            assert i18n.day(moment.date()) == "10 mar 2026"
            assert i18n.status_words("needs_attention") == "requiere atención"
            assert i18n.gettext("Sign out") == "Cerrar sesión"
            assert i18n.status_words_map()["running"] == "en curso"  # progress.js's words
    assert i18n.when(None) == "" and i18n.when("not a time") == "not a time"


def test_a_page_asked_for_in_spanish_is_in_spanish_and_english_is_the_default(
    tmp_path: Path,
) -> None:
    with console(tmp_path) as served:
        reader = served.client()
        english = reader.get("/login")
        assert '<html lang="en">' in english.text and ">Sign in</h1>" in english.text
        assert english.headers["content-language"] == "en"
        spanish = reader.get("/login", headers={"Accept-Language": "es-MX,es;q=0.9"})
        assert '<html lang="es">' in spanish.text
        assert ">Iniciar sesión</h1>" in spanish.text and "Sign in" not in spanish.text
        assert "Correo electrónico" in spanish.text and "Contraseña" in spanish.text
        assert spanish.headers["content-language"] == "es"
        # A message made in a page's Python (run on a worker thread) is in Spanish too.
        refused = reader.post(
            "/login", {"email": "", "password": ""}, headers={"Accept-Language": "es"}
        )
        assert refused.status_code == 400
        assert "Escriba su correo electrónico." in refused.text
        stale = reader.post("/login", {}, csrf=False, headers={"Accept-Language": "es"})
        assert stale.status_code == 403 and "Este formulario está desactualizado" in stale.text


def test_an_administrators_pages_and_their_dates_in_spanish(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        with served.classroom.transaction() as session:
            ada = people.find_person_by_email(session, ADMIN_EMAIL)
            assert ada is not None
            create_api_token(session, Actor.system(), ada, label="gradebook sync")
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        spanish = admin.get("/admin/tokens", headers={"Accept-Language": "es"})
        assert spanish.status_code == 200
        assert "<h1>Tokens de API</h1>" in spanish.text and "Cerrar sesión" in spanish.text
        assert "Configuración del SIS" in spanish.text  # the menu
        made = re.search(
            rf"<td>(\d{{1,2}} {SPANISH_MONTH} \d{{4}}, \d{{1,2}}:\d\d [A-Z+\-0-9]+)</td>",
            spanish.text,
        )
        assert made is not None, spanish.text
        english = admin.get("/admin/tokens", headers={"Accept-Language": "en-US"})
        assert "<h1>API tokens</h1>" in english.text
        assert re.search(
            r"<td>[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d\s[AP]M [A-Z+\-0-9]+</td>", english.text
        )
        people_page = admin.get("/admin/people", headers={"Accept-Language": "es"})
        assert "1 persona." in people_page.text
        assert "<td>administrador</td>" in people_page.text  # the role, in words


def test_the_language_picker_wins_over_the_browser_and_stays(tmp_path: Path) -> None:
    with console(tmp_path) as served:
        reader = served.client()
        page = reader.get("/login?next=/admin/people")
        assert 'id="language-choice"' in page.text and 'action="/language"' in page.text
        chosen = reader.post(
            "/language",
            {"language": "es", "next": "/login?next=/admin/people"},
            headers={"Accept-Language": "en-US"},
        )
        assert chosen.url.path == "/login" and chosen.url.query == b"next=/admin/people"
        assert '<html lang="es">' in chosen.text
        again = reader.get("/login", headers={"Accept-Language": "en-US"})
        assert ">Iniciar sesión</h1>" in again.text
        assert '<option value="es" lang="es" selected>' in again.text
        # Elsewhere than a path here is not followed; a language we lack is refused in words.
        away = reader.post("/language", {"language": "en", "next": "//evil.example/"})
        assert away.url.path == "/" or away.url.path == "/login"
        assert away.url.host == "testserver"
        unknown = reader.post("/language", {"language": "xx", "next": "/login"})
        assert unknown.status_code == 400
        assert "Choose one of the languages offered: English, Español." in unknown.text
        english = reader.get("/login", headers={"Accept-Language": "es"})
        assert ">Sign in</h1>" in english.text  # the choice (English) over the browser's


def test_the_gradebook_class_activity_and_roster_pages_in_spanish_and_english(
    tmp_path: Path,
) -> None:
    """The teacher's and the administrator's busiest pages (gradebook, class, Activity, Roster
    with its chart) read in Spanish when asked, words made in the pages' Python and in
    gradebook.js's sentences too; without Accept-Language they stay English."""
    with running_provider(profile="generic-1.2", students=3) as sis, console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        connect_and_authorise(admin, sis)
        import_roster(served, admin)
        teacher = invite_and_sign_in(served, sis.teacher_email)
        listed = teacher.get("/classes")
        class_id = int(re.findall(r'href="/classes/(\d+)"', listed.text)[0])
        with served.classroom.transaction() as session:
            me = people.find_person_by_email(session, sis.teacher_email)
            assert me is not None
            coursework_service.create_coursework(
                session, Actor.of(me), class_id, title="Quiz", max_points=10, publish=True
            )
        spanish = {"Accept-Language": "es-MX,es;q=0.9"}

        grid = teacher.get(f"/classes/{class_id}/gradebook", headers=spanish)
        assert grid.status_code == 200
        assert "<h1>Libro de calificaciones</h1>" in grid.text
        assert "Guardar calificaciones" in grid.text and "Estudiante" in grid.text
        assert "puntos obtenidos sobre puntos posibles" in grid.text  # TOTAL_RULE
        assert "ninguna todavía" in grid.text  # a total with no mark yet
        script_words = re.search(r'data-words="([^"]+)"', grid.text)  # gradebook.js's words
        assert script_words is not None
        said = json.loads(html.unescape(script_words.group(1)))
        assert said["other"] == "{n} celdas sin guardar todavía."
        assert said["no_mark"] == "todavía sin calificación."
        assert "Save marks" not in grid.text and "none yet" not in grid.text
        cell = re.findall(r'<input name="(m\d+_\d+)"', grid.text)[0]
        saved = teacher.post(f"/classes/{class_id}/gradebook", {cell: "8"}, headers=spanish)
        assert "Se guardó 1 calificación como borrador" in saved.text, saved.text
        bad = teacher.post(f"/classes/{class_id}/gradebook", {cell: "lots"}, headers=spanish)
        assert bad.status_code == 400 and "Estas celdas no se guardaron" in bad.text
        assert "escriba un número, EX (justificada) o M (faltante)" in bad.text

        page = teacher.get(f"/classes/{class_id}", headers=spanish)
        assert (
            "Exportar calificaciones al SIS" in page.text and "Opciones de exportación" in page.text
        )
        assert (
            re.search(r"<h2[^>]*>Estudiantes \(\d+\)</h2>", page.text)
            and "Nueva tarea" in page.text
        )
        assert "Export marks" not in page.text

        roster = admin.get("/admin/roster", headers=spanish)
        assert "<h1>Lista escolar</h1>" in roster.text and "Importar ahora" in roster.text
        assert "Lo que cambió cada importación" in roster.text
        assert "Mostrar las cifras" in roster.text and "registros" in roster.text  # the chart
        assert "Import now" not in roster.text and "Show the numbers" not in roster.text

        activity = admin.get("/admin/activity", headers=spanish)
        assert "<h1>Actividad</h1>" in activity.text and "Quién hizo qué" in activity.text
        assert "Los últimos 30 días" in activity.text
        assert "Who did what" not in activity.text

        # English by default: the same pages say what they always said.
        english_grid = teacher.get(f"/classes/{class_id}/gradebook")
        assert "<h1>Gradebook</h1>" in english_grid.text and "Save marks" in english_grid.text
        assert "Libro de calificaciones" not in english_grid.text
        assert "Export marks to the SIS" in teacher.get(f"/classes/{class_id}").text
        assert "Import now" in admin.get("/admin/roster").text
        assert "Who did what" in admin.get("/admin/activity").text
