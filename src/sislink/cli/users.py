"""`sislink users ...`: accounts (for now: the first administrator, and REST API tokens)."""

from __future__ import annotations

import typer

from sislink.classroom import Actor, ClassroomError
from sislink.classroom.models import Role
from sislink.classroom.services import people
from sislink.classroom.services.api_tokens import create_api_token
from sislink.cli.common import JSON_OPTION, fail, open_from_env, out, print_json

users_app = typer.Typer(help="Accounts: administrators and REST API tokens.", no_args_is_help=True)


@users_app.command("create-admin")
def create_admin(
    email: str = typer.Argument(..., help="The administrator's email."),
    name: str = typer.Option(..., "--name", help="Their name as people see it."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add an administrator (or give an existing person the admin role)."""
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
            shown = {"id": person.id, "email": person.email, "name": person.name, "admin": True}
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


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
    app.add_typer(users_app, name="users")
