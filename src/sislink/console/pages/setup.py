"""The administrator's SIS setup page: choose the SIS, eligibility, setup steps, credentials under
that SIS's own labels, Connect, Authorise, the teacher permission, Disconnect.

Every action calls `sislink.sync.connection`, as the command line and the REST API do.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from sislink.classroom import Classroom
from sislink.console.auth import get_classroom
from sislink.console.i18n import N_, _
from sislink.console.pages.base import (
    PageError,
    Viewer,
    admin_viewer,
    as_page_errors,
    checked,
    checked_form,
    field,
    redirect,
    render,
)
from sislink.partners import catalogue
from sislink.sync import connection as service
from sislink.sync.errors import (
    AuthorisationFailed,
    ConfirmationRequired,
    InvalidConnectionDetails,
    NotConnected,
)

router = APIRouter(prefix="/admin/sis")

NO_SECRET_TYPED = N_("Type the secret your SIS gave for sislink (it is stored sealed).")

# Which form field a problem found by `connect` belongs next to.
_FIELD_OF_WORDS = (
    ("Token URL", "token_url"),
    ("vendor key", "vendor_key"),
    ("Host URL", "host_url"),
    ("web address", "host_url"),
)


def _answer(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


def _hosting(value: str) -> Literal["vendor", "self"] | None:
    if value == "vendor":
        return "vendor"
    if value == "self":
        return "self"
    return None


def _page(
    request: Request,
    who: Viewer,
    classroom: Classroom,
    *,
    chosen_name: str | None,
    answers: dict[str, str] | None = None,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    connect_problem: str | None = None,
    confirm_needed: str | None = None,
    authorised: dict[str, Any] | None = None,
    authorise_problem: AuthorisationFailed | None = None,
    status_code: int = 200,
) -> Response:
    state = service.status(classroom)
    current = state.connection
    partners = {entry.name: entry for entry in service.partners()}
    if chosen_name is None and current is not None:
        chosen_name = current.partner
    if chosen_name is not None and chosen_name not in partners:
        raise PageError(
            404,
            _("sislink knows no SIS called {name!r}; choose one below.").format(name=chosen_name),
        )
    chosen = partners.get(chosen_name) if chosen_name else None
    questions: dict[str, Any] = {}
    verdict = None
    if chosen is not None:
        rules = catalogue()[chosen.name].eligibility
        questions = {
            "minimum_version": rules.minimum_version,
            "licence": rules.licence,
            "vendor_hosted": rules.vendor_hosted,
        }
        given = answers or {}
        verdict = service.eligibility(
            chosen.name,
            version=given.get("version") or None,
            has_licence=_answer(given.get("licence", "")),
            hosting=_hosting(given.get("hosting", "")),
        )
    same_partner = current is not None and chosen is not None and current.partner == chosen.name
    defaults: dict[str, str] = {}
    if same_partner and current is not None:
        defaults = {"host_url": current.host_url, "access_key": current.access_key}
        if current.token_url:
            defaults["token_url"] = current.token_url
    return render(
        request,
        "setup.html",
        {
            "partners": list(partners.values()),
            "current": current,
            "chosen": chosen,
            "questions": questions,
            "answers": answers or {},
            "verdict": verdict,
            "typed": {**defaults, **(typed or {})},
            "errors": errors or {},
            "connect_problem": connect_problem,
            "confirm_needed": confirm_needed,
            "authorised": authorised,
            "authorise_problem": authorise_problem,
            "same_partner": same_partner,
        },
        who=who,
        status_code=status_code,
    )


@router.get("")
def setup_page(
    request: Request,
    sis: str | None = None,
    version: str = "",
    licence: str = "",
    hosting: str = "",
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    answers = {"version": version.strip(), "licence": licence, "hosting": hosting}
    return _page(request, who, classroom, chosen_name=sis or None, answers=answers)


@router.post("/connect")
def connect(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    sis = field(form, "sis")
    typed = {
        name: field(form, name).strip()
        for name in ("host_url", "access_key", "token_url", "client_auth")
    }
    secret = field(form, "secret_code")
    vendor_key = field(form, "vendor_key")
    errors: dict[str, str] = {}
    if not typed["host_url"]:
        errors["host_url"] = _("Type the address of your SIS.")
    if not typed["access_key"]:
        errors["access_key"] = _("Type the key your SIS gave for sislink.")
    if not secret:
        errors["secret_code"] = _(NO_SECRET_TYPED)
    if errors:
        return _page(
            request, who, classroom, chosen_name=sis, typed=typed, errors=errors, status_code=400
        )
    try:
        service.connect(
            classroom,
            who.actor,
            sis=sis,
            host_url=typed["host_url"],
            access_key=typed["access_key"],
            secret_code=secret,
            token_url=typed["token_url"] or None,
            extra_credentials={"vendor_key": vendor_key} if vendor_key else None,
            insecure=checked(form, "insecure"),
            allow_private=request.app.state.allow_private_sis,
            confirm_different_sis=checked(form, "confirm_different_sis"),
            client_auth=typed["client_auth"] or None,
        )
    except InvalidConnectionDetails as exc:
        where = next((name for words, name in _FIELD_OF_WORDS if words in exc.message), None)
        message = exc.message + (
            _(" Did you mean {suggestion}?").format(suggestion=exc.suggestion)
            if exc.suggestion
            else ""
        )
        return _page(
            request,
            who,
            classroom,
            chosen_name=sis,
            typed=typed,
            errors={where: message} if where else {},
            connect_problem=None if where else message,
            status_code=400,
        )
    except ConfirmationRequired as exc:
        return _page(
            request,
            who,
            classroom,
            chosen_name=sis,
            typed=typed,
            confirm_needed=exc.message.replace(" (--confirm-different-sis)", ""),
            status_code=409,
        )
    return redirect(
        request,
        "/admin/sis",
        _(
            "Saved. The secret code is stored sealed; now click Authorise to check the "
            "connection with your SIS."
        ),
    )


@router.post("/authorise")
async def authorise(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    try:
        report = await service.authorise(
            classroom, who.actor, confirm_different_sis=checked(form, "confirm_different_sis")
        )
    except AuthorisationFailed as failed:
        return _page(
            request, who, classroom, chosen_name=None, authorise_problem=failed, status_code=422
        )
    except ConfirmationRequired as exc:
        return _page(
            request,
            who,
            classroom,
            chosen_name=None,
            confirm_needed=exc.message.replace(" (--confirm-different-sis)", ""),
            status_code=409,
        )
    except NotConnected as exc:
        return _page(
            request, who, classroom, chosen_name=None, connect_problem=exc.message, status_code=409
        )
    return _page(request, who, classroom, chosen_name=None, authorised=report.as_dict())


@router.post("/permission")
def permission(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    enabled = checked(form, "teacher_export")
    with as_page_errors():
        service.set_teacher_export(classroom, who.actor, enabled)
    return redirect(
        request,
        "/admin/sis",
        _("Saved: teachers may now export classwork and marks.")
        if enabled
        else _("Saved: classwork and mark exporting is off for teachers."),
    )


@router.get("/disconnect")
def disconnect_page(
    request: Request,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    current = service.status(classroom).connection
    if current is None or current.status == "disconnected":
        return redirect(request, "/admin/sis", _("sislink is not connected to a SIS."))
    return render(request, "disconnect.html", {"current": current}, who=who)


@router.post("/disconnect")
def disconnect(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with as_page_errors():
        view = service.disconnect(classroom, who.actor)
    return redirect(
        request,
        "/admin/sis",
        _(
            "Disconnected from {sis}. Exports have stopped; what was exported stays in the SIS."
        ).format(sis=view.display_name),
    )
