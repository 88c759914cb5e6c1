"""`sislink sis ...`: run the built-in OneRoster SIS (a sandbox for demos, tests, benchmarks)."""

from __future__ import annotations

import re
from pathlib import Path

import typer

from sislink.cli.common import EXIT_FAILED, EXIT_NEEDS_ATTENTION, JSON_OPTION, print_json
from sislink.oneroster.provider.csv_bundle import CsvBundleError, load_bundles
from sislink.oneroster.provider.profiles import PROFILES, profile_named
from sislink.oneroster.provider.server import (
    bind_socket,
    build_config,
    describe,
    open_store,
    serve_forever,
)
from sislink.oneroster.provider.store import ProviderStore

sis_app = typer.Typer(
    help="The built-in OneRoster SIS: serve it, export its data, check CSV bundles.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(sis_app, name="sis")


def _profile(name: str) -> str:
    try:
        profile_named(name)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    return name


# The provider names its settings as Python does; the user typed options.
_SETTING = re.compile(
    r"\b(?:fault_rate|rate_429|rate_500|rate_503|drop_rate|drop_after_rate"
    r"|latency_ms|jitter_ms|client_auth|vendor_key)\b"
)


def _in_option_names(message: str) -> str:
    """The provider's message with its setting names as the options that set them."""
    return _SETTING.sub(lambda found: "--" + found.group().replace("_", "-"), message)


def _client_auth_methods(option: str | None) -> tuple[str, ...] | None:
    if option is None:
        return None
    choices = {"basic": ("basic",), "post": ("post",), "both": ("basic", "post")}
    if option not in choices:
        raise ValueError(f"--client-auth is basic, post or both, not {option!r}")
    return choices[option]


def _echo_refused(error: CsvBundleError) -> None:
    """A refused bundle's report on stderr: the bundles loaded before it, then every problem
    of the refused one (its warnings too: they are half of what the SIS has to fix)."""
    for summary in error.loaded:
        for line in summary.lines():
            typer.echo(line, err=True)
    first, *rest = error.lines()
    typer.echo(f"error: {first}", err=True)
    for line in rest:
        typer.echo(line, err=True)


@sis_app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8100, help="Port (0: any free port)."),
    profile: str = typer.Option(
        "generic-1.2", callback=_profile, help=f"SIS to imitate: {', '.join(PROFILES)}."
    ),
    seed: int = typer.Option(7, help="Seed of the synthetic district (and of injected faults)."),
    students: int = typer.Option(2000, help="Students in the synthetic district."),
    schools: int | None = typer.Option(None, help="Schools (default: one per ~1,000 students)."),
    client_id: str = typer.Option("sislink", help="The OAuth client id (consumer key)."),
    client_secret: str = typer.Option(
        ..., envvar="SISLINK_SIS_CLIENT_SECRET", help="The OAuth client secret (never printed)."
    ),
    csv: list[Path] | None = typer.Option(
        None,
        metavar="BUNDLE",
        help="Serve this OneRoster CSV bundle (zip or directory) instead of a seeded district. "
        "Repeat it to load bundles one on top of another (a bulk bundle, then its deltas). "
        "Every problem of a bundle is printed after the URLs; a bundle with errors is refused.",
    ),
    db: Path | None = typer.Option(
        None, help="Keep the data in this SQLite file (default: memory)."
    ),
    latency_ms: float = typer.Option(0, help="Added latency per API call, in ms."),
    jitter_ms: float = typer.Option(0, help="Random +/- jitter on the latency, in ms."),
    fault_rate: float = typer.Option(
        0, min=0.0, max=1.0, help="Share of API calls answered 500 or 503 (half each)."
    ),
    rate_429: float = typer.Option(
        0, min=0.0, max=1.0, help="Share of API calls answered 429 with Retry-After."
    ),
    drop_rate: float = typer.Option(
        0,
        min=0.0,
        max=1.0,
        help="Share of API calls whose connection is dropped before the SIS sees them.",
    ),
    rate_500: float = typer.Option(0, min=0.0, max=1.0, help="Share of API calls answered 500."),
    rate_503: float = typer.Option(0, min=0.0, max=1.0, help="Share of API calls answered 503."),
    drop_after_rate: float = typer.Option(
        0,
        min=0.0,
        max=1.0,
        help="Share of API calls the SIS carries out (a write is saved) and then drops the "
        "connection without answering.",
    ),
    token_ttl_s: int = typer.Option(3600, help="Lifetime of access tokens, in seconds."),
    client_auth: str | None = typer.Option(
        None,
        help="How the token endpoint takes the client id and secret: basic (HTTP Basic), post "
        "(in the form body) or both (default: as the profile's SIS does).",
    ),
    vendor_key: str | None = typer.Option(
        None,
        envvar="SISLINK_SIS_VENDOR_KEY",
        help="key:secret that gradebook calls must carry in the profile's vendor header "
        "(Infinite Campus's x-vendor-authorization); default: a sandbox key, printed.",
    ),
) -> None:
    """Serve the built-in SIS. Prints host_url, base_url, token_url, client_id and teacher_email
    first, one per line (and vendor_key where the profile's SIS needs one), then its log.

    The fault rates are shares of the same API calls, so together they must not exceed 1.
    """
    chosen = profile_named(profile)
    try:
        # The options first (quick), then the data (a district may take a while to build).
        config = build_config(
            chosen,
            client_id=client_id,
            client_secret=client_secret,
            seed=seed,
            latency_ms=latency_ms,
            jitter_ms=jitter_ms,
            fault_rate=fault_rate,
            rate_429=rate_429,
            drop_rate=drop_rate,
            rate_500=rate_500,
            rate_503=rate_503,
            drop_after_rate=drop_after_rate,
            token_ttl_s=token_ttl_s,
            client_auth=_client_auth_methods(client_auth),
            vendor_key=vendor_key,
        )
        store, teacher_email, summaries = open_store(
            profile=chosen,
            seed=seed,
            students=students,
            schools=schools,
            csv_paths=csv or (),
            db_path=str(db) if db else None,
        )
    except CsvBundleError as error:
        _echo_refused(error)
        raise typer.Exit(2) from None
    except ValueError as error:  # a bad option: the message names what to fix
        typer.echo(f"error: {_in_option_names(str(error))}", err=True)
        raise typer.Exit(2) from None
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    urls = describe(chosen, f"http://{host}:{bound_port}")
    for key in ("host_url", "base_url", "token_url"):
        typer.echo(f"{key}: {urls[key]}")
    typer.echo(f"client_id: {client_id}")
    typer.echo(f"teacher_email: {teacher_email}")
    if chosen.gradebook_header:
        # The sandbox's own key is shown whole; one the operator chose shows its key part only.
        shown = config.vendor_header_value if vendor_key is None else f"{config.vendor_key}:..."
        typer.echo(f"vendor_key: {shown} (in {chosen.gradebook_header} on gradebook calls)")
    for summary in summaries:
        for line in summary.lines():
            typer.echo(line)
    try:
        serve_forever(store, config, sock)
    finally:
        store.close()


@sis_app.command("export-csv")
def export_csv(
    out: Path = typer.Argument(..., help="The bundle to write (a .zip)."),
    version: str = typer.Option("1.2", help="OneRoster version of the bundle: 1.1 or 1.2."),
    db: Path | None = typer.Option(None, help="Export this SQLite store (from `serve --db`)."),
    profile: str = typer.Option("generic-1.2", callback=_profile, help="Profile (for staff ids)."),
    seed: int = typer.Option(7, help="Seed of the synthetic district, when there is no --db."),
    students: int = typer.Option(2000, help="Students in the synthetic district."),
    schools: int | None = typer.Option(None, help="Schools (default: one per ~1,000 students)."),
) -> None:
    """Write the SIS's data as a OneRoster CSV bundle."""
    from sislink.oneroster.provider.csv_bundle import export_bundle

    if db is not None and not db.exists():
        typer.echo(
            f"error: {db} does not exist; start `sislink sis serve --db {db}` first.", err=True
        )
        raise typer.Exit(2)
    store, _, _ = open_store(
        profile=profile_named(profile),
        seed=seed,
        students=students,
        schools=schools,
        db_path=str(db) if db else None,
    )
    try:
        counts = export_bundle(store, out, version)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    finally:
        store.close()
    typer.echo(f"wrote {out}: " + ", ".join(f"{name} {n}" for name, n in counts.items()))


@sis_app.command("check-csv")
def check_csv(
    bundles: list[Path] = typer.Argument(
        ...,
        metavar="BUNDLE",
        help="OneRoster CSV bundles (zip or directory), loaded in this order.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Read CSV bundles as `sis serve --csv` would (in memory; nothing is served or kept) and
    print every problem: file:row column: problem; what to do.

    Exit status: 0 no problem, 3 loaded with warnings, 1 refused (errors).
    """
    store = ProviderStore()
    try:
        summaries = load_bundles(store, bundles)
    except CsvBundleError as error:
        if as_json:
            print_json(
                {
                    "loaded": False,
                    "bundle": error.bundle,
                    "bundles": [s.as_dict() for s in error.loaded],
                    "problems": [p.as_dict() for p in error.problems],
                }
            )
        else:
            _echo_refused(error)
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        store.close()
    if as_json:
        print_json({"loaded": True, "bundles": [s.as_dict() for s in summaries]})
    else:
        for summary in summaries:
            for line in summary.lines():
                typer.echo(line)
    if any(summary.warnings for summary in summaries):
        raise typer.Exit(EXIT_NEEDS_ATTENTION)
