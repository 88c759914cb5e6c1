"""Signing in and out, and setting a password from an invitation link."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from sislink.classroom import Actor, Classroom, ClassroomError
from sislink.classroom.services import accounts, sign_in
from sislink.console.auth import get_classroom, session_actor
from sislink.console.i18n import _
from sislink.console.pages.base import (
    checked_form,
    current_session,
    field,
    redirect,
    render,
    set_session,
)
from sislink.console.sessions import SessionData, clear_session

router = APIRouter()


def _safe_next(value: str) -> str:
    """Only a path on this site (never //elsewhere or a full URL)."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


safe_next = _safe_next


def login_context(request: Request, classroom: Classroom, next_path: str) -> dict[str, Any]:
    """What the sign-in page offers: the providers' buttons, and the password form unless an
    administrator turned it off (issue 18)."""
    from sislink.console.oidc import apply_environment_once

    apply_environment_once(request, classroom)
    with classroom.session() as session:
        providers = [
            {"id": provider.id, "name": provider.name}
            for provider in sign_in.list_providers(session)
        ]
        password_enabled = sign_in.password_sign_in_enabled(session)
    return {
        "next": next_path,
        "email": "",
        "providers": providers,
        "password_enabled": password_enabled or not providers,
    }


@router.get("/")
def start(
    request: Request,
    classroom: Classroom = Depends(get_classroom),
    actor: Actor | None = Depends(session_actor),
) -> Response:
    """Administrators start at SIS setup, teachers at their classes."""
    if actor is None:
        return redirect(request, "/login")
    return redirect(request, "/admin/sis" if actor.is_admin else "/classes")


@router.get("/login")
def login_page(
    request: Request,
    next: str = "/",
    signed_out: int = 0,
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    current_session(request, classroom)
    context = login_context(request, classroom, _safe_next(next))
    if signed_out:
        with classroom.session() as session:
            try:
                provider = sign_in.get_provider(session, signed_out)
            except ClassroomError:
                provider = None
        if provider is not None:
            from sislink.console.oidc import protocol_of

            context["end_session"] = {
                "name": provider.name,
                "url": protocol_of(request).end_session_url(
                    provider, str(request.url_for("login_page"))
                ),
            }
    return render(request, "login.html", context)


@router.post("/login")
def login(
    request: Request,
    form: FormData = Depends(checked_form),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    email, password = field(form, "email").strip(), field(form, "password")
    next_path = _safe_next(field(form, "next") or "/")
    errors: dict[str, str] = {}
    if not email:
        errors["email"] = _("Type your email.")
    if not password:
        errors["password"] = _("Type your password.")
    result: accounts.SignInResult | None = None
    context = login_context(request, classroom, next_path)
    if not context["password_enabled"]:
        return render(
            request,
            "login.html",
            {
                **context,
                "problem": _(
                    "Password sign-in is turned off here; sign in with your school account "
                    "(the button below)."
                ),
            },
            status_code=403,
        )
    if not errors:
        guard = getattr(request.app.state, "sign_in_guard", None)
        result = accounts.attempt_sign_in(
            classroom,
            email,
            password,
            request.client.host if request.client else "",
            guard if isinstance(guard, accounts.SignInGuard) else accounts.DEFAULT_GUARD,
        )
    if result is None or result.session_key is None:
        if errors:
            problem, code = None, 400
        elif result is not None and result.refused:
            problem, code = result.message, 429 if result.throttled_until else 503
        else:
            problem, code = (
                _(
                    "That email and password do not match an administrator or teacher "
                    "account. Check both; if you have no password yet, ask an administrator "
                    "for a set-password link."
                ),
                401,
            )
        answer = render(
            request,
            "login.html",
            {**context, "email": email, "errors": errors, "problem": problem},
            status_code=code,
        )
        if result is not None and result.refused:
            answer.headers["Retry-After"] = str(result.retry_after_s)
        return answer
    set_session(request, current_session(request, classroom).signed_in_with(result.session_key))
    return redirect(request, next_path)


@router.post("/logout")
def logout(
    request: Request,
    form: FormData = Depends(checked_form),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    # Every session of this person ends, here and in any other browser (or a copied cookie).
    with classroom.transaction() as session:
        key = current_session(request, classroom).session_key
        provider = sign_in.session_provider(session, key)
        accounts.sign_out(session, key)
    set_session(request, SessionData())
    if provider is not None:
        # Signed in with a provider: the sign-in page offers signing out there too.
        return redirect(
            request, f"/login?signed_out={provider.id}", _("You are signed out of sislink.")
        )
    return redirect(request, "/login", _("You are signed out."))


@router.get("/set-password")
def set_password_page(
    request: Request, token: str = "", classroom: Classroom = Depends(get_classroom)
) -> Response:
    current_session(request, classroom)
    try:
        with classroom.session() as session:
            email = accounts.invited_person(session, token).email
    except ClassroomError as exc:
        return render(request, "set_password.html", {"problem": exc.message}, status_code=400)
    return render(request, "set_password.html", {"token": token, "email": email})


@router.post("/set-password")
def set_password(
    request: Request,
    form: FormData = Depends(checked_form),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    token, password, confirm = field(form, "token"), field(form, "password"), field(form, "confirm")
    email = ""
    errors: dict[str, str] = {}
    try:
        with classroom.session() as session:
            email = accounts.invited_person(session, token).email or ""
    except ClassroomError as exc:
        return render(request, "set_password.html", {"problem": exc.message}, status_code=400)
    if password != confirm:
        errors["confirm"] = _("The two passwords differ; type the same password twice.")
    else:
        try:
            accounts.check_new_password(password)
        except ClassroomError as exc:
            errors["password"] = exc.message
    if errors:
        return render(
            request,
            "set_password.html",
            {"token": token, "email": email, "errors": errors},
            status_code=400,
        )
    with classroom.transaction() as session:
        person = accounts.accept_invitation(session, token, password)
        key = accounts.start_console_session(session, person.id)
    set_session(request, current_session(request, classroom).signed_in_with(key))
    return redirect(request, "/", _("Your password is set; you are signed in."))


__all__ = ["clear_session", "router"]
