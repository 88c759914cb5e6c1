"""`sislink google ...`: the local Google Classroom (a sandbox for the demo, tests, benchmarks)."""

from __future__ import annotations

from pathlib import Path

import typer

from sislink.googleclassroom.emulator.app import ClassroomConfig
from sislink.googleclassroom.emulator.server import (
    bind_socket,
    describe,
    open_classroom,
    serve_forever,
)

google_app = typer.Typer(
    help="Google Classroom: the local Classroom to try sislink against.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    app.add_typer(google_app, name="google")


@google_app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8200, help="Port (0: any free port)."),
    seed: int = typer.Option(
        7, help="Seed of the district: the same people as `sislink sis serve --seed`."
    ),
    students: int = typer.Option(2000, help="Students in the district (as the built-in SIS)."),
    schools: int | None = typer.Option(None, help="Schools (default: one per ~1,000 students)."),
    db: Path | None = typer.Option(
        None, help="Keep the Classroom's state in this SQLite file (default: memory)."
    ),
    key_file: Path | None = typer.Option(
        None,
        help="Where to write the service account key (default: beside --db, or a new "
        "temporary folder).",
    ),
    latency_ms: float = typer.Option(0, min=0.0, help="Added latency per HTTP request, in ms."),
    jitter_ms: float = typer.Option(0, min=0.0, help="Random +/- jitter on the latency, in ms."),
    rate_429: float = typer.Option(
        0, min=0.0, max=1.0, help="Share of calls answered 429 RESOURCE_EXHAUSTED."
    ),
    rate_503: float = typer.Option(
        0, min=0.0, max=1.0, help="Share of calls answered 503 UNAVAILABLE."
    ),
    rate_500: float = typer.Option(0, min=0.0, max=1.0, help="Share of calls answered 500."),
    retry_after: int | None = typer.Option(
        None, min=0, help="Send Retry-After (seconds) with injected 429 and 503 answers."
    ),
    per_user_per_minute: int = typer.Option(
        1200, min=1, help="Quota: calls a minute per user (Google's: 1,200)."
    ),
    per_client_per_minute: int = typer.Option(
        3000, min=1, help="Quota: calls a minute per Cloud project (Google's: 3,000)."
    ),
    delegated_scope: list[str] | None = typer.Option(
        None,
        help="A scope the domain granted the service account (repeat; default: every "
        "Classroom scope). Asking for others is refused, as Google refuses it.",
    ),
    api_disabled: bool = typer.Option(
        False, help="Act as if the Classroom API were disabled in the Cloud project."
    ),
) -> None:
    """Serve a local Google Classroom. Prints api_url, key_file, admin_email, teacher_email and
    domain first, one per line, then its log.

    Reach it with Google's own client: build("classroom", "v1", credentials=...,
    client_options={"api_endpoint": API_URL}) with the service account key in key_file (its
    token_uri is this server). The key file holds a private key: keep it to yourself.
    """
    try:
        config = ClassroomConfig(
            seed=seed,
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            rate_429=rate_429,
            rate_503=rate_503,
            rate_500=rate_500,
            retry_after_s=retry_after,
            per_user_per_minute=per_user_per_minute,
            per_client_per_minute=per_client_per_minute,
            delegated_scopes=frozenset(delegated_scope) if delegated_scope else None,
            api_enabled=not api_disabled,
        )
    except ValueError as error:
        message = str(error)
        for name in ("rate_429", "rate_503", "rate_500"):
            message = message.replace(name, "--" + name.replace("_", "-"))
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2) from None
    if students < 1:
        typer.echo("error: --students must be at least 1.", err=True)
        raise typer.Exit(2)
    sock = bind_socket(host, port)
    origin = f"http://{host}:{sock.getsockname()[1]}"
    classroom, written = open_classroom(
        origin=origin,
        seed=seed,
        students=students,
        schools=schools,
        db_path=str(db) if db else None,
        key_file=key_file,
        config=config,
    )
    for line in describe(classroom, written, origin).lines():
        typer.echo(line)
    serve_forever(classroom, sock)
