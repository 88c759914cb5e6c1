"""The administrator's People, Classes and Accounts pages: the district's people and classes,
searched, filtered and paged; one person's classes and console account (a set-password link to
invite or reset, roles, disable, API tokens). The reading is `classroom.services.directory`'s,
the changes the account, people and token services'.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.datastructures import FormData
from starlette.responses import Response

from sislink.classroom import Classroom, ClassroomError, NotFound
from sislink.classroom.models import Role
from sislink.classroom.services import accounts, api_tokens, directory, people
from sislink.console.auth import get_classroom
from sislink.console.i18n import _, status_words
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
    row_id,
)

router = APIRouter(prefix="/admin")


def _after(request: Request) -> tuple[str, int] | None:
    """The keyset of the page to show (`after` and `after_id`), when the link gave one."""
    name = request.query_params.get("after")
    after_id = row_id(request.query_params.get("after_id", ""))
    if name is None or after_id is None:
        return None  # no keyset, or one no row can have: the first page
    return name, after_id


def _next_link(path: str, keep: dict[str, str], after: tuple[str, int] | None) -> str | None:
    if after is None:
        return None
    return f"{path}?{urlencode({**keep, 'after': after[0], 'after_id': str(after[1])})}"


# ---- people ---------------------------------------------------------------------------------


@router.get("/people")
def people_list(
    request: Request,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    role = request.query_params.get("role", "")
    role = role if role in directory.ROLES else ""
    query = request.query_params.get("q", "")[:200]
    no_email = request.query_params.get("no_email") in ("on", "1")
    with as_page_errors(), classroom.session() as session:
        page = directory.people_page(
            session,
            who.actor,
            role=role or None,
            query=query,
            no_email=no_email,
            after=_after(request),
        )
    keep = {"role": role, "q": query, **({"no_email": "on"} if no_email else {})}
    return render(
        request,
        "people.html",
        {
            "page": page,
            "role": role,
            "query": query,
            "no_email": no_email,
            "first_page": _after(request) is not None,
            "next_link": _next_link("/admin/people", keep, page.next_after),
            "no_email_link": "/admin/people?"
            + urlencode({"role": role, "q": query, "no_email": "on"}),
        },
        who=who,
    )


def _person_page(
    request: Request,
    who: Viewer,
    classroom: Classroom,
    person_id: int,
    extra: dict[str, Any] | None = None,
) -> Response:
    with as_page_errors(), classroom.session() as session:
        detail = directory.person_detail(session, who.actor, person_id)
        tokens = api_tokens.list_api_tokens(session, who.actor, person_id=person_id)
    return render(
        request,
        "person.html",
        {"person": detail.row, "account": detail.account, "tokens": tokens, **(extra or {})},
        who=who,
    )


@router.get("/people/{person_id}")
def person_page(
    request: Request,
    person_id: int,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    return _person_page(request, who, classroom, person_id)


@router.post("/people/{person_id}/invite")
def invite_person(
    request: Request,
    person_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """A set-password link (an invitation, or a password reset): shown once, on this page."""
    with as_page_errors(), classroom.transaction() as session:
        person = people.get_person(session, person_id)
        if not person.email:
            raise PageError(
                409,
                f"{person.name} has no email, so cannot sign in; give them one in the SIS "
                "and import the roster again.",
            )
        _, token = accounts.invite(session, who.actor, person.email)
    link = str(request.base_url).rstrip("/") + f"/set-password?token={token}"
    return _person_page(request, who, classroom, person_id, {"invite_link": link})


@router.post("/people/{person_id}/roles")
def change_roles(
    request: Request,
    person_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    roles = [role for role in (Role.ADMIN, Role.TEACHER, Role.STUDENT) if checked(form, role)]
    if person_id == who.person_id and Role.ADMIN not in roles:
        raise PageError(
            409,
            _("You cannot take away your own administrator role; another administrator can."),
        )
    with as_page_errors(), classroom.transaction() as session:
        person = people.set_roles(session, who.actor, person_id, roles)
        if not accounts.may_sign_in(person):
            accounts.end_sessions_if_not_allowed(session, person_id)
        said = ", ".join(sorted(status_words(r) for r in roles)) or _("none")
        name = person.name
    return redirect(
        request,
        f"/admin/people/{person_id}",
        _("{name}'s roles are now: {roles}.").format(name=name, roles=said),
    )


@router.post("/people/{person_id}/disable")
def disable(
    request: Request,
    person_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    if person_id == who.person_id:
        raise PageError(409, _("You cannot disable your own account; another administrator can."))
    with as_page_errors(), classroom.transaction() as session:
        done = accounts.disable_account(session, who.actor, person_id)
        name = people.get_person(session, person_id).name
    return redirect(
        request,
        f"/admin/people/{person_id}",
        _(
            "{name}'s account is disabled: password removed ({password_removed}), "
            "{sessions} sessions ended, {tokens} API tokens revoked. "
            "A new set-password link lets them in again."
        ).format(
            name=name,
            password_removed=_("yes") if done["password_removed"] else _("no"),
            sessions=done["sessions_ended"],
            tokens=done["tokens_revoked"],
        ),
    )


@router.post("/people/{person_id}/tokens")
def make_token(
    request: Request,
    person_id: int,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """A new API token for the person, shown once on the page that answers."""
    with as_page_errors(), classroom.transaction() as session:
        person = people.get_person(session, person_id)
        row, token = api_tokens.create_api_token(
            session, who.actor, person, label=field(form, "label")
        )
        made = {"id": row.id, "token": token}
    return _person_page(request, who, classroom, person_id, {"new_token": made})


# ---- accounts -------------------------------------------------------------------------------


@router.get("/accounts")
def accounts_page(
    request: Request,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    return _accounts(request, who, classroom)


def _accounts(
    request: Request,
    who: Viewer,
    classroom: Classroom,
    extra: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    with as_page_errors(), classroom.session() as session:
        admins = directory.people_page(session, who.actor, role="admin", limit=200)
        teachers = directory.people_page(session, who.actor, role="teacher", limit=1)
    return render(
        request,
        "accounts.html",
        {"admins": admins, "teachers": teachers.total, **(extra or {})},
        who=who,
        status_code=status_code,
    )


@router.post("/accounts/invite")
def invite_by_email(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    email = field(form, "email").strip()
    if not email:
        return _accounts(
            request, who, classroom, {"problem": _("Give the email of the person to invite.")}, 400
        )
    try:
        with classroom.transaction() as session:
            invitation, token = accounts.invite(session, who.actor, email)
            person_id = invitation.person_id
    except NotFound:
        problem = _(
            "No person has the email {email!r}; teachers arrive with the roster import "
            "(the Roster page), and every person is on the People page."
        ).format(email=email)
        return _accounts(request, who, classroom, {"problem": problem, "typed": email}, 400)
    except ClassroomError as exc:
        return _accounts(request, who, classroom, {"problem": exc.message, "typed": email}, 400)
    link = str(request.base_url).rstrip("/") + f"/set-password?token={token}"
    return _person_page(request, who, classroom, person_id, {"invite_link": link})


@router.post("/tokens/new")
def make_token_by_email(
    request: Request,
    form: FormData = Depends(checked_form),
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    """A new API token for the person with this email, shown once on their page."""
    email = field(form, "email").strip()
    with as_page_errors(), classroom.transaction() as session:
        person = people.find_person_by_email(session, email) if email else None
        if person is None:
            raise PageError(
                404,
                _("No person has the email {email!r}; check it on the People page.").format(
                    email=email
                )
                if email
                else _("Give the email of the person the token is for."),
            )
        row, token = api_tokens.create_api_token(
            session, who.actor, person, label=field(form, "label")
        )
        made = {"id": row.id, "token": token}
        person_id = person.id
    return _person_page(request, who, classroom, person_id, {"new_token": made})


# ---- classes --------------------------------------------------------------------------------


@router.get("/classes")
def classes_list(
    request: Request,
    who: Viewer = Depends(admin_viewer),
    classroom: Classroom = Depends(get_classroom),
) -> Response:
    link = request.query_params.get("link", "")
    link = link if link in ("linked", "unlinked") else ""
    query = request.query_params.get("q", "")[:200]
    with as_page_errors(), classroom.session() as session:
        page = directory.classes_page(
            session, who.actor, query=query, link=link or None, after=_after(request)
        )
    return render(
        request,
        "admin_classes.html",
        {
            "page": page,
            "link": link,
            "query": query,
            "first_page": _after(request) is not None,
            "next_link": _next_link("/admin/classes", {"link": link, "q": query}, page.next_after),
        },
        who=who,
    )
