"""`sislink sign-in ...`: how people sign in to the console (issue 18): the OpenID Connect
providers of the school's accounts (Google Workspace, Microsoft Entra ID, any other), and
password sign-in on or off. A client secret is never typed on the command line: it is read
from the environment variable named by --client-secret-env, where the console runs."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from sislink.classroom import Actor
from sislink.classroom.services import sign_in
from sislink.cli.common import JSON_OPTION, classroom_errors, fail, open_from_env, out, print_json

sign_in_app = typer.Typer(
    help="How people sign in to the console: school accounts (OpenID Connect), passwords.",
    no_args_is_help=True,
)
password_app = typer.Typer(help="Offer the password form on the sign-in page, or not.")


def _shown(provider: Any) -> dict[str, Any]:
    return {
        "id": provider.id,
        "name": provider.name,
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "client_secret": "sealed"
        if provider.client_secret_sealed
        else f"${provider.client_secret_env}",
        "domain": provider.domain,
        "admin_group": provider.admin_group,
        "from_environment": provider.from_environment,
        "last_sign_in_at": provider.last_sign_in_at,
    }


@sign_in_app.command("oidc")
def add_oidc(
    issuer: str = typer.Option(..., "--issuer", metavar="URL", help="The provider's issuer URL."),
    client_id: str = typer.Option(..., "--client-id", metavar="ID", help="sislink's client ID."),
    client_secret_env: str = typer.Option(
        ...,
        "--client-secret-env",
        metavar="VAR",
        help="The environment variable that holds the client secret where the console runs.",
    ),
    domain: str | None = typer.Option(
        None, "--domain", metavar="D", help="Only accounts of this email domain (Google: hd)."
    ),
    name: str | None = typer.Option(
        None, "--name", metavar="NAME", help="The sign-in button's name (default: from issuer)."
    ),
    admin_group: str | None = typer.Option(
        None, "--admin-group", metavar="G", help="A groups claim value that makes administrators."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Let people sign in with an OpenID Connect provider (or change the one with this issuer).
    Register sislink there first, with the redirect URI https://YOUR-CONSOLE/login/oidc/callback
    and the scopes openid email profile."""
    classroom = open_from_env()
    try:
        with classroom_errors(), classroom.transaction() as session:
            provider = sign_in.set_provider(
                session,
                classroom.secret_box,
                Actor.system(),
                issuer=issuer,
                client_id=client_id,
                client_secret_env=client_secret_env,
                name=name,
                domain=domain,
                admin_group=admin_group,
            )
            shown = _shown(provider)
    finally:
        classroom.close()
    if as_json:
        print_json(shown)
    else:
        out.print(
            f"{shown['name']} is set (provider {shown['id']}); the console reads the client "
            f"secret from ${client_secret_env}. Sign in with it once, then you may turn "
            "passwords off (sislink sign-in password off)."
        )


@sign_in_app.command("list")
def list_providers(as_json: bool = JSON_OPTION) -> None:
    """The providers people may sign in with, and whether password sign-in is on."""
    classroom = open_from_env()
    try:
        with classroom.session() as session:
            shown = [_shown(p) for p in sign_in.list_providers(session)]
            password = sign_in.password_sign_in_enabled(session)
    finally:
        classroom.close()
    if as_json:
        print_json({"providers": shown, "password_sign_in": password})
        return
    table = Table(
        "Id", "Name", "Issuer", "Client ID", "Secret", "Domain", "Admin group", "Last sign-in"
    )
    for p in shown:
        table.add_row(
            str(p["id"]),
            p["name"],
            p["issuer"],
            p["client_id"],
            p["client_secret"],
            p["domain"] or "",
            p["admin_group"] or "",
            str(p["last_sign_in_at"] or "never"),
        )
    if shown:
        out.print(table)
    else:
        out.print("No sign-in provider is set.")
    out.print(f"Password sign-in is {'on' if password else 'off'}.")


@sign_in_app.command("remove")
def remove(
    provider: str = typer.Argument(..., help="The provider's id, issuer or name."),
) -> None:
    """Stop signing in with a provider; the sessions started with it end."""
    classroom = open_from_env()
    try:
        with classroom_errors(), classroom.transaction() as session:
            name = sign_in.remove_provider(session, Actor.system(), provider).name
    finally:
        classroom.close()
    out.print(f"{name} is removed; its sessions ended.")


def _password(enabled: bool) -> None:
    classroom = open_from_env()
    try:
        with classroom_errors(), classroom.transaction() as session:
            sign_in.set_password_sign_in(session, Actor.system(), enabled)
    finally:
        classroom.close()
    out.print(f"Password sign-in is {'on' if enabled else 'off'}.")


@password_app.command("on")
def password_on() -> None:
    """Offer the password form again."""
    _password(True)


@password_app.command("off")
def password_off() -> None:
    """Hide the password form (refused until an administrator has signed in with a provider)."""
    _password(False)


def register(app: typer.Typer) -> None:
    """Adds this module's commands to `app`."""
    sign_in_app.add_typer(password_app, name="password")
    app.add_typer(sign_in_app, name="sign-in")


__all__ = ["fail", "register"]
