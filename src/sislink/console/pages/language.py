"""The language picker at the foot of every page: the reader's choice, kept in a cookie for a
year (signed in or not), over what their browser asks for."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from sislink.console import i18n
from sislink.console.i18n import _
from sislink.console.pages.base import PageError, checked_form, field, redirect

router = APIRouter()


def _local_path(value: str) -> str:
    """Back to the page the picker was on; anything not a path on this site goes home."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@router.post("/language")
def choose_language(request: Request, form: FormData = Depends(checked_form)) -> Response:
    language = field(form, "language")
    if language not in i18n.LANGUAGES:
        raise PageError(
            400,
            _("Choose one of the languages offered: {languages}.").format(
                languages=", ".join(i18n.LANGUAGES.values())
            ),
        )
    response = redirect(request, _local_path(field(form, "next")))
    response.set_cookie(
        i18n.LANGUAGE_COOKIE,
        language,
        max_age=i18n.LANGUAGE_COOKIE_AGE_S,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response
