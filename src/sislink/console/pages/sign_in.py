"""The administrator's sign-in page (issue 18): the OpenID Connect providers people may sign
in with (add, change, remove), the redirect URI to register at each, and password sign-in on
or off. Client secrets are sealed as they are saved and never shown again."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from sislink.classroom import Classroom, ClassroomError
from sislink.classroom.services import sign_in
from sislink.console.auth import get_classroom
from sislink.console.i18n import _
from sislink.console.pages.base import (
    Viewer,
    admin_viewer,
    as_page_errors,
    checked,
    checked_form,
    field,
    redirect,
    render,
)

router = APIRouter()


def _page(request: Request, classroom: Classroom, who: Viewer, **extra: object) -> Response:
    from sislink.console.oidc import apply_environment_once

    apply_environment_once(request, classroom)
    with classroom.session() as session:
        providers = [
            {
                "id": p.id,
                "name": p.name,
                "issuer": p.issuer,
                "client_id": p.client_id,
                "secret": "sealed in sislink"
                if p.client_secret_sealed
                else f"${p.client_secret_env}",
                "domain": p.domain or "",
                "admin_group": p.admin_group or "",
                "from_environment": p.from_environment,
                "last_sign_in_at": p.last_sign_in_at,
            }
            for p in sign_in.list_providers(session)
        ]
        password_enabled = sign_in.password_sign_in_enabled(session)
    context = {
        "providers": providers,
        "password_enabled": password_enabled,
        "redirect_uri": str(request.url_for("oidc_callback")),
        "form": {},
        "errors": {},
        **extra,
    }
    status_code = 400 if extra.get("problem") else 200
    return render(request, "sign_in.html", context, who=who, status_code=status_code)


@router.get("/admin/sign-in")
def sign_in_page(
    request: Request,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    return _page(request, classroom, who)


@router.post("/admin/sign-in/providers")
def add_provider(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    typed = {
        name: field(form, name)
        for name in ("name", "issuer", "client_id", "client_secret_env", "domain", "admin_group")
    }
    try:
        with classroom.transaction() as session:
            provider = sign_in.set_provider(
                session,
                classroom.secret_box,
                who.actor,
                issuer=typed["issuer"],
                client_id=typed["client_id"],
                client_secret=field(form, "client_secret") or None,
                client_secret_env=typed["client_secret_env"] or None,
                name=typed["name"] or None,
                domain=typed["domain"] or None,
                admin_group=typed["admin_group"] or None,
            )
            saved = provider.name
    except ClassroomError as exc:
        # What was typed comes back, except the secret (never echoed into a page).
        return _page(request, classroom, who, problem=exc.message, form=typed)
    return redirect(
        request,
        "/admin/sign-in",
        _(
            "{provider} is set. Sign in with it once (in another browser), then you may turn "
            "password sign-in off."
        ).format(provider=saved),
    )


@router.post("/admin/sign-in/providers/{provider_id}/remove")
def remove_provider(
    request: Request,
    provider_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with as_page_errors(), classroom.transaction() as session:
        removed = sign_in.remove_provider(session, who.actor, provider_id).name
    return redirect(
        request,
        "/admin/sign-in",
        _("{provider} is removed; its sessions ended.").format(provider=removed),
    )


@router.post("/admin/sign-in/password")
def password_sign_in(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    enabled = checked(form, "enabled")
    try:
        with classroom.transaction() as session:
            sign_in.set_password_sign_in(session, who.actor, enabled)
    except ClassroomError as exc:
        return _page(request, classroom, who, problem=exc.message)
    return redirect(
        request,
        "/admin/sign-in",
        _("Password sign-in is on.")
        if enabled
        else _("Password sign-in is off; people sign in with the providers below."),
    )
