"""The administrator's API tokens page: every live token (never the token itself), whose it is,
when it was made and last used, and a button that revokes it at once."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from sislink.classroom import Classroom
from sislink.classroom.services.api_tokens import list_api_tokens, revoke_api_token
from sislink.console.auth import get_classroom
from sislink.console.i18n import _
from sislink.console.pages.base import (
    PageError,
    Viewer,
    admin_viewer,
    as_page_errors,
    checked_form,
    redirect,
    render,
)
from sislink.console.routes.problems import storable

router = APIRouter()


@router.get("/admin/tokens")
def tokens_page(
    request: Request,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    with classroom.session() as session:
        found = list_api_tokens(session, who.actor)
    return render(request, "tokens.html", {"tokens": found}, who=who)


@router.post("/admin/tokens/{token_id}/revoke")
def revoke(
    request: Request,
    token_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    if not storable(token_id):
        raise PageError(404, _("There is no API token with id {id}.").format(id=token_id))
    with as_page_errors(), classroom.transaction() as session:
        revoked = revoke_api_token(session, who.actor, token_id)
    return redirect(
        request,
        "/admin/tokens",
        _("API token {id} of {email} is revoked.").format(id=revoked.id, email=revoked.email),
    )
