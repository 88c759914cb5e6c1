"""What every console page shares: templates (autoescaped), who is looking (role checks), the
CSRF check on every form, rendering with the session cookie, redirects with a one-time notice,
and service errors turned into pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import Depends, Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from sislink.classroom import Actor, Classroom, ClassroomError, NotFound, PermissionDenied
from sislink.classroom.models import MAX_ROW_ID, Person
from sislink.classroom.services.time_zone import school_time_zone
from sislink.console import i18n
from sislink.console.auth import get_classroom, session_actor
from sislink.console.i18n import _
from sislink.console.sessions import (
    COOKIE_NAME,
    CSRF_FIELD,
    FLASH_COOKIE,
    SessionData,
    session_codec,
    write_flash,
    write_session,
)
from sislink.sync.errors import SyncError

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    # Everything a person typed is escaped, in every template (.html or not).
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
    # {% trans %} and _() in templates, in the reader's language (console/i18n.py).
    extensions=["jinja2.ext.i18n"],
)
# A {% trans %} block's msgid is its text with the template's line breaks and indents folded
# (babel.cfg extracts it the same way).
environment.policies["ext.i18n.trimmed"] = True
environment.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True
)


def _when(value: datetime | date | str | None) -> str:
    """A timestamp as a person reads it: the school's time zone, the reader's language."""
    return i18n.when(value)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


# (Service sentences are English, so the words that replace their hints are English too.)
# A command-line hint in a service's sentence, "(sislink roster approve JOB)": a page says
# where in the web that is done instead ("(the SIS setup page)"), or leaves the hint out when
# the page itself offers the action (Approve and Discard next to a held import's reason).
_COMMAND_HINT = re.compile(r"\s*\(`?(sislink [a-z][^()]*)\)")
_WEB_WORDS = (
    ("sislink connect, then sislink authorise", "Connect, then Authorise, on the SIS setup page"),
    ("sislink connect", "on the SIS setup page"),
    ("sislink authorise", "Authorise, on the SIS setup page"),
    ("sislink classes list --sis", "the list on the class's Link page"),
    ("sislink classes link", "Link, on the class's page"),
    ("sislink users invite", "Invite, on the administrator's Accounts page"),
    ("sislink users create-admin", "on the Accounts page"),
    ("sislink roster history", "on the Roster page"),
    ("sislink roster import", "on the Roster page"),
    ("sislink sign-in password on", "on the Sign-in page"),
    ("sislink status", "on the SIS setup page"),
)


def _web_hint(match: re.Match[str]) -> str:
    command = match.group(1).strip("` ")
    for start, words in _WEB_WORDS:
        if command.startswith(start):
            return f" ({words})"
    return ""


def _web(text: str | None) -> str:
    """A service's sentence as a page says it: command-line hints in brackets become where the
    web does it, or go when the page offers the action itself."""
    return _COMMAND_HINT.sub(_web_hint, text or "")


def _finalize(value: Any) -> Any:
    """Every value a template prints (a service's error, a job's message, a notice) goes
    through `_web`, so no page tells a person to run a command; template text is not a value."""
    if isinstance(value, str) and not isinstance(value, Markup) and "sislink " in value:
        return _web(value)
    return value


environment.filters["when"] = _when
environment.filters["day"] = i18n.day
environment.filters["status"] = i18n.status_words
environment.filters["role"] = i18n.status_words
environment.filters["entity"] = i18n.status_words
environment.globals["status_words_map"] = i18n.status_words_map
environment.filters["number"] = _number
environment.filters["web"] = _web
environment.finalize = _finalize


class PageError(Exception):
    """Stop and show an error page (403, 404, 409...) with one plain sentence."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class LoginRequired(Exception):
    """Nobody is signed in: go to the sign-in page, then come back."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass(frozen=True)
class Viewer:
    """The signed-in person looking at a page."""

    actor: Actor
    person_id: int
    name: str
    email: str

    @property
    def is_admin(self) -> bool:
        return self.actor.is_admin

    @property
    def is_teacher(self) -> bool:
        from sislink.classroom.models import Role

        return Role.TEACHER in self.actor.roles


def row_id(text: str) -> int | None:
    """A row's id typed in a query or a form field (`after_id`, a category), or None when the
    text can name no row: not plain ASCII digits ("²" is a digit to Python, not to int), or
    past MAX_ROW_ID (SQLite cannot take a number past 64 bits, PostgreSQL's ids are 32-bit)."""
    cleaned = text.strip()
    if not (cleaned.isascii() and cleaned.isdigit()) or len(cleaned) > len(str(MAX_ROW_ID)):
        return None
    number = int(cleaned)
    return number if 1 <= number <= MAX_ROW_ID else None


def ids_that_name_rows(request: Request) -> None:
    """Every page's ids in its path (a class, coursework, job, report, person, token...) name
    rows: one past what a row can have (MAX_ROW_ID) names nothing, and is a 404 here before the
    database is asked (SQLite cannot take a number past 64 bits, PostgreSQL's ids are 32-bit:
    a guessed or mistyped number in an address was a 500). Run before every page's own work."""
    for name, value in request.path_params.items():
        if not (name.endswith("_id") and isinstance(value, str) and value.isascii()):
            continue
        if value.isdigit() and (len(value) > len(str(MAX_ROW_ID)) or int(value) > MAX_ROW_ID):
            raise PageError(
                404,
                _("There is nothing numbered {number} here; it may have been deleted.").format(
                    number=value[:20]
                ),
            )


def current_session(request: Request, classroom: Classroom) -> SessionData:
    """This browser's session (a new anonymous one when it has none), kept on request.state."""
    found = getattr(request.state, "console_session", None)
    if isinstance(found, SessionData):
        return found
    codec = session_codec(request.app, classroom)
    data = codec.loads(request.cookies.get(COOKIE_NAME))
    if data is None:
        data = SessionData()
        request.state.session_changed = True
    request.state.console_session = data
    return data


def set_session(request: Request, data: SessionData) -> None:
    request.state.console_session = data
    request.state.session_changed = True


def viewer(
    request: Request,
    classroom: Classroom = Depends(get_classroom),
    actor: Actor | None = Depends(session_actor),
) -> Viewer:
    """The signed-in person; anyone else is sent to the sign-in page."""
    current_session(request, classroom)
    if actor is None or actor.person_id is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(path)
    with classroom.session() as session:
        person = session.get(Person, actor.person_id)
        assert person is not None
        return Viewer(actor, person.id, person.name, person.email or "")


def admin_viewer(who: Viewer = Depends(viewer)) -> Viewer:
    if not who.is_admin:
        raise PageError(403, _("Only an administrator may open this page."))
    return who


def teacher_viewer(who: Viewer = Depends(viewer)) -> Viewer:
    """Teachers (and administrators, who may act on any class)."""
    if not (who.is_teacher or who.is_admin):
        raise PageError(403, _("Only teachers may open this page."))
    return who


async def checked_form(request: Request, classroom: Classroom = Depends(get_classroom)) -> FormData:
    """The submitted form, if its CSRF token is this session's; 403 otherwise."""
    form = await request.form()
    data = current_session(request, classroom)
    submitted = form.get(CSRF_FIELD)
    if not data.csrf_matches(submitted if isinstance(submitted, str) else None):
        raise PageError(
            403,
            _(
                "This form is out of date or did not come from sislink; go back, reload the "
                "page and send it again."
            ),
        )
    return form


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def checked(form: FormData, name: str) -> bool:
    return field(form, name) in ("on", "true", "1", "yes")


# No page is shown inside another site's frame. SameSite=Lax keeps the session cookie out of a
# frame on another site, but not on a site that shares the console's domain (another
# district.example host): there a framed page, signed in, could be clicked through unseen
# (Export, Disconnect, Revoke).
NOT_IN_FRAMES = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    who: Viewer | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page with the common context (who, csrf token, notice), writing the session."""
    classroom: Classroom = get_classroom(request)
    data = current_session(request, classroom)
    codec = session_codec(request.app, classroom)
    notice = codec.unsign_text(request.cookies.get(FLASH_COOKIE))
    values = {
        "request": request,
        "who": who,
        "csrf_field": CSRF_FIELD,
        "csrf_token": data.csrf_token,
        "notice": notice,
        "path": request.url.path,
        "lang": i18n.current_language(),
        "languages": i18n.LANGUAGES,
        **(context or {}),
    }
    with classroom.session() as session:
        zone = school_time_zone(session).zone
    with i18n.in_time_zone(zone):
        page = environment.get_template(template).render(values)
    response = HTMLResponse(page, status_code, headers=NOT_IN_FRAMES)
    if notice is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    _finish(request, response, classroom, data)
    return response


def redirect(request: Request, url: str, notice: str | None = None) -> RedirectResponse:
    """See-other to `url` (after a form), with a one-time notice for the next page."""
    classroom: Classroom = get_classroom(request)
    response = RedirectResponse(url, status_code=303)
    if notice:
        write_flash(request, response, session_codec(request.app, classroom), notice)
    _finish(request, response, classroom, current_session(request, classroom))
    return response


def _finish(request: Request, response: Response, classroom: Classroom, data: SessionData) -> None:
    if getattr(request.state, "session_changed", False):
        write_session(request, response, session_codec(request.app, classroom), data)


@contextmanager
def as_page_errors() -> Iterator[None]:
    """Service refusals as error pages: not allowed 403, not found 404, anything else 409."""
    try:
        yield
    except PermissionDenied as exc:
        raise PageError(403, exc.message) from None
    except NotFound as exc:
        raise PageError(404, exc.message) from None
    except ClassroomError as exc:
        raise PageError(409, exc.message) from None
    except SyncError as exc:
        raise PageError(409, exc.message) from None


def error_page(request: Request, problem: PageError) -> HTMLResponse:
    who: Viewer | None = None
    return render(
        request,
        "error.html",
        {"status_code": problem.status_code, "message": problem.message},
        who=who,
        status_code=problem.status_code,
    )
