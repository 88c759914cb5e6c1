"""`sislink users ...`: accounts: administrators (with a console password), set-password
invitations for teachers, REST API tokens (make, list, revoke), and disabling an account."""

from __future__ import annotations

import os
from datetime import datetime

import typer
from rich.table import Table

from sislink.classroom import Actor, ClassroomError
from sislink.classroom.models import Role
from sislink.classroom.services import accounts, people
from sislink.classroom.services.api_tokens import (
    create_api_token,
    list_api_tokens,
    revoke_api_token,
)
from sislink.cli.common import JSON_OPTION, fail, open_from_env, out, print_json

users_app = typer.Typer(
    help="Accounts: administrators, invitations, REST API tokens, disabling an account.",
    no_args_is_help=True,
)


@users_app.command("create-admin")
def create_admin(
    email: str = typer.Argument(..., help="The administrator's email."),
    name: str = typer.Option(..., "--name", help="Their name as people see it."),
    password_env: str | None = typer.Option(
        None, "--password-env", metavar="VAR", help="Set their console password from $VAR."
    ),
    ask_password: bool = typer.Option(
        False, "--password", help="Ask for their console password (hidden, typed twice)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add an administrator (or give an existing person the admin role), optionally with a
    console password (otherwise: sislink users invite EMAIL)."""
    password: str | None = None
    if password_env is not None:
        password = os.environ.get(password_env)
        if not password:
            fail(f"${password_env} is empty or not set; put the password in it, or use --password.")
    elif ask_password:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    classroom = open_from_env()
    try:
        with classroom.transaction() as session:
            operator = Actor.system()
            person = people.find_person_by_email(session, email)
            if person is None:
                person = people.create_person(
                    session, operator, name=name, email=email, roles=[Role.ADMIN]
                )
            else:
                people.set_roles(session, operator, person.id, person.roles | {Role.ADMIN})
            if password is not None:
                accounts.set_password(session, operator, person.id, password)
            shown = {
                "id": person.id,
                "email": person.email,
                "name": person.name,
                "admin": True,
                "password_set": accounts.has_password(session, person.id),
            }
    except ClassroomError as exc:
        fail(exc.message)
    finally:
        classroom.close()
    if as_json:
        print_json(shown)
    else:
        out.print(f"{shown['email']} is an administrator.")


@users_app.command("token")
def token(
    email: str = typer.Argument(..., help="Whose token: they act through the API as themselves."),
    label: str = typer.Option("", "--label", help="What the token is for (shown in lists)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make a REST API token and print it ONCE (only its hash is kept)."""
    classroom = open_from_env()
    try:
        with classroom.transaction() as session:
            person = people.find_person_by_email(session, email)
            if person is None:
                fail(f"No person has the email {email!r}; add them first (sislink users ...).")
            _, made = create_api_token(session, Actor.system(), person, label=label)
            person_email = person.email
    except ClassroomError as exc:
        fail(exc.message)
    finally:
        classroom.close()
    if as_json:
        print_json({"email": person_email, "token": made})
    else:
        out.print(made)
        typer.echo(
            "Keep this token safe: it is shown only now. Send it as "
            "'Authorization: Bearer <token>'.",
            err=True,
        )


@users_app.command("invite")
def invite(
    email: str = typer.Argument(..., help="A teacher (from the roster import) or administrator."),
    base_url: str = typer.Option(
        "",
        "--base-url",
        help="The console's address as people reach it (default $SISLINK_CONSOLE_URL, "
        "else http://127.0.0.1:8000).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Print a one-time set-password link (valid 7 days; only its hash is kept)."""
    root = (base_url or os.environ.get("SISLINK_CONSOLE_URL") or "http://127.0.0.1:8000").rstrip(
        "/"
    )
    classroom = open_from_env()
    try:
        with classroom.transaction() as session:
            invitation, made = accounts.invite(session, Actor.system(), email)
            expires = invitation.expires_at.isoformat()
    except ClassroomError as exc:
        fail(exc.message)
    finally:
        classroom.close()
    link = f"{root}/set-password?token={made}"
    if as_json:
        print_json({"email": email.strip(), "link": link, "expires_at": expires})
    else:
        out.print(link, soft_wrap=True)
        typer.echo(
            f"Send this link to {email.strip()} yourself; it works once, until {expires}.",
            err=True,
        )


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


@users_app.command("tokens")
def tokens(
    email: str | None = typer.Argument(None, help="Only this person's tokens (default: all)."),
    include_revoked: bool = typer.Option(
        False, "--revoked", help="Show revoked tokens too (with when they were revoked)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """List REST API tokens: id, whose, label, when made and last used (never the token)."""
    classroom = open_from_env()
    try:
        with classroom.session() as session:
            person_id = None
            if email is not None:
                person = people.find_person_by_email(session, email)
                if person is None:
                    fail(f"No person has the email {email!r}.")
                person_id = person.id
            found = list_api_tokens(
                session, Actor.system(), person_id=person_id, include_revoked=include_revoked
            )
    finally:
        classroom.close()
    if as_json:
        print_json([token.as_json() for token in found])
        return
    if not found:
        out.print("No API tokens." if include_revoked else "No live API tokens.")
        return
    table = Table("Id", "Person", "Label", "Made", "Last used", "Revoked")
    for token in found:
        table.add_row(
            str(token.id),
            token.email,
            token.label,
            _when(token.created_at),
            _when(token.last_used_at),
            _when(token.revoked_at) if token.revoked_at else "",
        )
    out.print(table)


@users_app.command("revoke-token")
def revoke_token(
    token_id: int = typer.Argument(..., help="The token's id, from `sislink users tokens`."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Revoke one REST API token: it stops working at once."""
    classroom = open_from_env()
    try:
        with classroom.transaction() as session:
            revoked = revoke_api_token(session, Actor.system(), token_id)
    except ClassroomError as exc:
        fail(exc.message)
    finally:
        classroom.close()
    if as_json:
        print_json(revoked.as_json())
    else:
        out.print(f"API token {revoked.id} of {revoked.email} is revoked.")


@users_app.command("disable")
def disable(
    email: str = typer.Argument(..., help="The administrator or teacher to stop."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Stop a person using the console and the API (invite them to let them in again).

    Their password goes, every console session ends, their API tokens and set-password links
    stop working; their data stays.
    """
    classroom = open_from_env()
    try:
        with classroom.transaction() as session:
            person = people.find_person_by_email(session, email)
            if person is None:
                fail(f"No person has the email {email!r}.")
            summary = accounts.disable_account(session, Actor.system(), person.id)
    except ClassroomError as exc:
        fail(exc.message)
    finally:
        classroom.close()
    if as_json:
        print_json({"email": email.strip(), **summary})
    else:
        out.print(
            f"{email.strip()} can no longer sign in: {summary['sessions_ended']} console "
            f"session(s) ended, {summary['tokens_revoked']} API token(s) revoked."
        )


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
    app.add_typer(users_app, name="users")
