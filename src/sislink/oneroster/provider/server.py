"""Run the built-in SIS: uvicorn on 127.0.0.1 in a background thread (tests, demo) or in front (CLI).

`running_provider(...)` seeds a district (or uses a given store), starts the server on a free
port and yields a `RunningProvider` with everything a consumer needs to connect: the Host URL
an administrator would type, the OneRoster root, the token URL, credentials and a teacher.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from sislink.oneroster.filters import parse
from sislink.oneroster.provider.app import ProviderConfig, create_app
from sislink.oneroster.provider.auth import ALL_SCOPES, Authenticator, Client, scope_short_name
from sislink.oneroster.provider.csv_bundle import BundleSummary, load_bundles
from sislink.oneroster.provider.faults import FaultConfig, FaultMiddleware
from sislink.oneroster.provider.profiles import (
    CLIENT_AUTH_METHODS,
    VendorProfile,
    profile_named,
)
from sislink.oneroster.provider.seed import seed_district
from sislink.oneroster.provider.store import ProviderStore
from sislink.oneroster.versions import VERSIONS


@dataclass
class RunningProvider:
    """A built-in SIS that is up: where it is and how to get in."""

    profile: str
    version: str
    host_url: str  # what an administrator types as Host URL for this SIS
    base_url: str  # the OneRoster root, e.g. http://127.0.0.1:PORT/ims/oneroster
    token_url: str  # empty for OAuth 1.0a-only profiles
    client_id: str
    client_secret: str = field(repr=False)
    teacher_email: str
    store: ProviderStore
    origin: str  # http://127.0.0.1:PORT
    auth_kinds: tuple[str, ...]
    extra_headers: dict[str, str] = field(default_factory=dict, repr=False)
    scope_required: bool = False
    affinity_cookie: str | None = None
    client_auth: tuple[str, ...] = CLIENT_AUTH_METHODS  # how its token endpoint takes credentials
    update_status: int = 201  # what a PUT that updates answers (201, or 200 where the SIS does)
    # Faults injected so far by (HTTP method, kind), e.g. faults_met["PUT", "drop_after"].
    faults_met: Counter[tuple[str, str]] = field(default_factory=Counter, repr=False)

    def url(self, path: str) -> str:
        """An absolute URL below the OneRoster root, e.g. `url("rostering/v1p2/teachers")`."""
        return f"{self.base_url}/{path.lstrip('/')}"


def build_config(
    profile: VendorProfile,
    *,
    client_id: str,
    client_secret: str,
    seed: int = 7,
    latency_ms: float = 0,
    jitter_ms: float = 0,
    fault_rate: float = 0,
    rate_429: float = 0,
    drop_rate: float = 0,
    rate_500: float = 0,
    rate_503: float = 0,
    drop_after_rate: float = 0,
    token_ttl_s: int = 3600,
    scopes: Sequence[str] | None = None,
    client_auth: Sequence[str] | None = None,
    vendor_key: str | None = None,
) -> ProviderConfig:
    """The server configuration for one client. `scopes` (short names or URIs) limits what the
    client may be granted; None grants everything. `client_auth` ("basic", "post") limits how
    the token endpoint takes the client's credentials (None: as the profile says).
    `vendor_key` (key:secret) is what a profile with a gradebook header expects in it."""
    accepted = tuple(dict.fromkeys(client_auth)) if client_auth is not None else None
    if accepted is not None and (not accepted or set(accepted) - set(CLIENT_AUTH_METHODS)):
        raise ValueError(
            f"client_auth is basic, post or both, not {', '.join(accepted) or 'nothing'}"
        )
    if vendor_key is not None:
        key, colon, vendor_secret = vendor_key.partition(":")
        if not key or not colon or not vendor_secret:
            raise ValueError("vendor_key is key:secret, both parts given")
    allowed: list[str] = []
    for text in scopes if scopes is not None else ALL_SCOPES:
        name = scope_short_name(text)
        if name is None:
            raise ValueError(f"Unknown scope {text!r}; known: {', '.join(ALL_SCOPES)}")
        allowed.append(name)
    authenticator = Authenticator(
        [Client(client_id, client_secret, frozenset(allowed))], token_ttl_s=token_ttl_s
    )
    faults = FaultConfig(
        seed=seed,
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        fault_rate=fault_rate,
        rate_429=rate_429,
        drop_rate=drop_rate,
        rate_500=rate_500,
        rate_503=rate_503,
        drop_after_rate=drop_after_rate,
    )
    config = ProviderConfig(
        profile=profile, authenticator=authenticator, faults=faults, client_auth=accepted
    )
    if vendor_key is not None:
        config.vendor_key, config.vendor_secret = key, vendor_secret
    return config


def find_teacher_email(store: ProviderStore) -> str:
    """The email of a teacher who teaches a class (the first teacher enrolment's user)."""
    page = store.query("enrollment", filter=parse("role='teacher'"), limit=50)
    for enrollment in page.records:
        user = store.get("user", str(enrollment["user"]["sourcedId"]))
        if user and user.get("email"):
            return str(user["email"])
    return ""


def bind_socket(host: str, port: int) -> socket.socket:
    # Naming IPPROTO_TCP matters: asyncio turns Nagle off (TCP_NODELAY) only on sockets whose
    # proto says TCP, and accepted sockets inherit it. With proto 0 every keep-alive call
    # waited ~40 ms for delayed ACKs.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def describe(profile: VendorProfile, origin: str) -> dict[str, str]:
    """host_url, base_url and token_url of a profile served at `origin`."""
    return {
        "host_url": profile.host_url(origin),
        "base_url": profile.base_url(origin),
        "token_url": profile.token_url(origin),
    }


@contextlib.contextmanager
def running_provider(
    *,
    profile: str = "generic-1.2",
    seed: int = 7,
    students: int = 200,
    schools: int | None = None,
    client_id: str = "sislink-test",
    client_secret: str = "s3cret-test",  # noqa: S107 (the sandbox's test credential)
    store: ProviderStore | None = None,
    latency_ms: float = 0,
    jitter_ms: float = 0,
    fault_rate: float = 0,
    rate_429: float = 0,
    drop_rate: float = 0,
    rate_500: float = 0,
    rate_503: float = 0,
    drop_after_rate: float = 0,
    token_ttl_s: int = 3600,
    scopes: Sequence[str] | None = None,
    client_auth: Sequence[str] | None = None,
    without_endpoints: Sequence[str] = (),
) -> Iterator[RunningProvider]:
    """A built-in SIS on 127.0.0.1 (a free port), seeded unless a store is given; stopped on exit.
    `without_endpoints` (endpoint names, e.g. "class_categories") are not served: they answer
    404 as on a SIS that does not have them."""
    chosen = profile_named(profile)
    own_store = store is None
    if store is None:
        store = ProviderStore()
        summary = seed_district(
            store,
            seed=seed,
            schools=schools,
            students=students,
            staff_id_prefix=chosen.staff_id_prefix,
        )
        teacher_email = summary.teacher_email
    else:
        teacher_email = find_teacher_email(store)
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
        scopes=scopes,
        client_auth=client_auth,
    )
    known = {name for version in chosen.versions for name in VERSIONS[version].endpoints}
    if unknown := set(without_endpoints) - known:
        raise ValueError(f"No such endpoint to leave out: {', '.join(sorted(unknown))}")
    config.without_endpoints = frozenset(without_endpoints)
    app = create_app(store, config)
    faults_met = app.met if isinstance(app, FaultMiddleware) else Counter()
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"sis-{port}"
    )
    thread.start()
    try:
        _wait_started(server, thread)
        urls = describe(chosen, origin)
        extra: dict[str, str] = {}
        if chosen.gradebook_header:
            extra[chosen.gradebook_header] = config.vendor_header_value
        yield RunningProvider(
            profile=chosen.name,
            version=str(chosen.version),
            host_url=urls["host_url"],
            base_url=urls["base_url"],
            token_url=urls["token_url"],
            client_id=client_id,
            client_secret=client_secret,
            teacher_email=teacher_email,
            store=store,
            origin=origin,
            auth_kinds=chosen.auth_kinds,
            extra_headers=extra,
            scope_required=chosen.scope_required,
            affinity_cookie=chosen.affinity_cookie,
            client_auth=config.accepted_client_auth,
            update_status=chosen.update_status,
            faults_met=faults_met,
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        if own_store:
            store.close()


def _wait_started(server: Any, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("The built-in SIS stopped while starting; see the log above.")
        if time.monotonic() > deadline:
            raise RuntimeError("The built-in SIS did not start within 20 s.")
        time.sleep(0.01)


def open_store(
    *,
    profile: VendorProfile,
    seed: int = 7,
    students: int = 2000,
    schools: int | None = None,
    csv_paths: Sequence[str | Path] = (),
    db_path: str | None = None,
) -> tuple[ProviderStore, str, list[BundleSummary]]:
    """A store filled from CSV bundles (loaded one on top of another), or seeded (unless a file
    store already holds data); returns it with a teacher's email and what each bundle's load
    found. Raises CsvBundleError (a ValueError; the store closed) at the first bundle with
    errors."""
    store = ProviderStore(db_path)
    try:
        if csv_paths:
            summaries = load_bundles(store, csv_paths)
            return store, find_teacher_email(store), summaries
        if db_path and store.count("user"):
            return store, find_teacher_email(store), []
        seeded = seed_district(
            store,
            seed=seed,
            schools=schools,
            students=students,
            staff_id_prefix=profile.staff_id_prefix,
        )
    except BaseException:
        store.close()
        raise
    return store, seeded.teacher_email, []


def serve_forever(store: ProviderStore, config: ProviderConfig, sock: socket.socket) -> None:
    """Serve in the foreground with an access log until interrupted (`sislink sis serve`)."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(store, config), log_level="info", lifespan="off")
    )
    server.run(sockets=[sock])
