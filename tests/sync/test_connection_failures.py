"""Authorise answers one precise failure, with what to do, for each way a SIS connection goes
wrong; each case is produced for real (a provider configured to fail, or a loopback server that
is not OneRoster). Connect refuses bad details before any call."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from sislink.classroom import Actor, Classroom, open_classroom
from sislink.classroom.models import AuditEvent, ConnectionStatus, SisConnection
from sislink.classroom.secrets import SecretBox
from sislink.oneroster.consumer import SISUnreachable
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.sync import connection as sis_connection
from sislink.sync.connection_checks import _unreachable
from sislink.sync.errors import AuthorisationFailed, InvalidConnectionDetails

ADMIN = Actor.system()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def classroom(tmp_path: Path) -> Iterator[Classroom]:
    opened = open_classroom(
        f"sqlite:///{tmp_path / 'failures.db'}", secret_box=SecretBox.generate()
    )
    try:
        yield opened
    finally:
        opened.close()


def details(running: RunningProvider, **changes: Any) -> dict[str, Any]:
    typed: dict[str, Any] = {
        "sis": running.profile,
        "host_url": running.host_url,
        "access_key": running.client_id,
        "secret_code": running.client_secret,
    }
    if running.profile == "generic-1.2":
        typed["token_url"] = running.token_url
    if running.extra_headers:
        typed["extra_credentials"] = {"vendor_key": next(iter(running.extra_headers.values()))}
    typed.update(changes)
    return typed


async def authorise_failure(classroom: Classroom, **kwargs: Any) -> AuthorisationFailed:
    with pytest.raises(AuthorisationFailed) as caught:
        await sis_connection.authorise(classroom, ADMIN, **kwargs)
    with classroom.session() as session:
        current = session.scalars(select(SisConnection)).all()[-1]
        assert current.status == ConnectionStatus.DRAFT  # a failure authorises nothing
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "sis.authorise_failed")
        ).all()[-1]
        assert event.details["problem"] == caught.value.problem
    return caught.value


# ---- servers that are not a OneRoster SIS --------------------------------------------------


@contextmanager
def plain_http_server(body: bytes, content_type: str) -> Iterator[str]:
    """A loopback web server answering every GET and POST with `body` (200)."""

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers (a SIS that hangs)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


# ---- the failures ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_wrong_secret_says_the_key_or_secret_was_refused(classroom: Classroom) -> None:
    with running_provider(profile="generic-1.2", students=20) as sis:
        sis_connection.connect(classroom, ADMIN, **details(sis, secret_code="not-the-secret"))
        failure = await authorise_failure(classroom)
    assert failure.problem == "wrong_credentials"
    assert "refused the Access key or the Secret code" in failure.message
    assert "Copy both again" in failure.message


@pytest.mark.anyio
async def test_a_wrong_oauth1_secret_also_mentions_the_clock(classroom: Classroom) -> None:
    with running_provider(profile="generic-1.1", students=20) as sis:
        sis_connection.connect(classroom, ADMIN, **details(sis, secret_code="not-the-secret"))
        failure = await authorise_failure(classroom)
    assert failure.problem == "wrong_credentials"
    assert "401 on GET /ims/oneroster/v1p1/teachers" in failure.message
    assert "clock" in failure.message


@pytest.mark.anyio
async def test_a_wrong_campus_vendor_key_is_named(classroom: Classroom) -> None:
    with running_provider(profile="infinite-campus", students=20) as sis:
        wrong = details(sis, extra_credentials={"vendor_key": "wrong:key"})
        sis_connection.connect(classroom, ADMIN, **wrong)
        failure = await authorise_failure(classroom)
    assert failure.problem == "wrong_credentials"
    assert "refused the gradebook call" in failure.message
    assert "x-vendor-authorization" in failure.message
    assert "Consumer key" in failure.message  # the label Infinite Campus uses


@pytest.mark.anyio
async def test_a_missing_gradebook_scope_is_named_from_the_403(classroom: Classroom) -> None:
    scopes = ["roster.readonly", "gradebook.createput", "gradebook.delete"]
    with running_provider(profile="generic-1.2", students=20, scopes=scopes) as sis:
        sis_connection.connect(classroom, ADMIN, **details(sis))
        failure = await authorise_failure(classroom)
    assert failure.problem == "missing_scope"
    assert "lack the scope https://purl.imsglobal.org/spec/or/v1p2/scope/gradebook.readonly" in (
        failure.message
    )
    assert "403 on GET /ims/oneroster/gradebook/v1p2/lineItems" in failure.message


@pytest.mark.anyio
async def test_missing_write_scopes_are_named_from_the_token(classroom: Classroom) -> None:
    with running_provider(
        profile="generic-1.2", students=20, scopes=["roster.readonly", "gradebook.readonly"]
    ) as sis:
        sis_connection.connect(classroom, ADMIN, **details(sis))
        failure = await authorise_failure(classroom)
    assert failure.problem == "missing_scope"
    assert "gradebook.createput" in failure.message
    assert "gradebook.delete" in failure.message


@pytest.mark.anyio
async def test_a_wrong_base_path_says_which_host_url_works(classroom: Classroom) -> None:
    with running_provider(profile="generic-1.2", students=20) as sis:
        sis_connection.connect(classroom, ADMIN, **details(sis, host_url=sis.host_url + "/sis"))
        failure = await authorise_failure(classroom)
    assert failure.problem == "wrong_path"
    assert "404 on GET /sis/ims/oneroster/rostering/v1p2/teachers" in failure.message
    assert f"OneRoster answers with the Host URL {sis.host_url}: use it." in failure.message


@pytest.mark.anyio
async def test_a_1p1_sis_behind_a_1p2_profile_says_to_choose_1p1(classroom: Classroom) -> None:
    with running_provider(profile="generic-1.1", students=20) as sis:
        sis_connection.connect(
            classroom,
            ADMIN,
            **details(sis, sis="generic-1.2", token_url=sis.token_url),
        )
        failure = await authorise_failure(classroom)
    assert failure.problem == "wrong_version"
    assert "it speaks OneRoster 1.1" in failure.message
    assert "generic-1.1" in failure.message


@pytest.mark.anyio
async def test_a_port_with_nothing_listening_says_connection_refused(
    classroom: Classroom,
) -> None:
    host_url = f"http://127.0.0.1:{free_port()}"
    sis_connection.connect(
        classroom, ADMIN, sis="generic-1.1", host_url=host_url, access_key="k", secret_code="s"
    )
    failure = await authorise_failure(classroom)
    assert failure.problem == "refused"
    assert f"Nothing answers at 127.0.0.1:{host_url.rsplit(':', 1)[1]}" in failure.message
    assert "connection refused" in failure.message


@pytest.mark.anyio
async def test_a_web_page_instead_of_oneroster_is_named(classroom: Classroom) -> None:
    html = b"<!doctype html><html><body>District portal login</body></html>"
    with plain_http_server(html, "text/html") as origin:
        sis_connection.connect(
            classroom, ADMIN, sis="generic-1.1", host_url=origin, access_key="k", secret_code="s"
        )
        failure = await authorise_failure(classroom)
    assert failure.problem == "not_oneroster"
    assert "with a web page, not JSON: this is not a OneRoster SIS" in failure.message
    assert "points at the SIS's web site" in failure.message


@pytest.mark.anyio
async def test_json_without_the_oneroster_wrapping_key_is_named(classroom: Classroom) -> None:
    with plain_http_server(b'{"data": "hello"}', "application/json") as origin:
        sis_connection.connect(
            classroom, ADMIN, sis="generic-1.1", host_url=origin, access_key="k", secret_code="s"
        )
        failure = await authorise_failure(classroom)
    assert failure.problem == "not_oneroster"
    assert "JSON that is not OneRoster" in failure.message


@pytest.mark.anyio
async def test_a_token_url_that_is_a_web_page_is_named(classroom: Classroom) -> None:
    with plain_http_server(b"<html>hello</html>", "text/html") as origin:
        sis_connection.connect(
            classroom,
            ADMIN,
            sis="generic-1.2",
            host_url=origin,
            token_url=origin + "/login",
            access_key="k",
            secret_code="s",
        )
        failure = await authorise_failure(classroom)
    assert failure.problem == "wrong_token_url"
    assert "not with an OAuth 2 token" in failure.message


@pytest.mark.anyio
async def test_https_to_a_server_without_tls_is_a_tls_error(classroom: Classroom) -> None:
    with plain_http_server(b"{}", "application/json") as origin:
        https_origin = origin.replace("http://", "https://")
        sis_connection.connect(
            classroom,
            ADMIN,
            sis="generic-1.1",
            host_url=https_origin,
            access_key="k",
            secret_code="s",
        )
        failure = await authorise_failure(classroom)
    assert failure.problem == "tls"
    assert "secure (TLS) connection" in failure.message


@pytest.mark.anyio
async def test_a_sis_that_never_answers_is_a_timeout(classroom: Classroom) -> None:
    with silent_server() as origin:
        sis_connection.connect(
            classroom, ADMIN, sis="generic-1.1", host_url=origin, access_key="k", secret_code="s"
        )
        failure = await authorise_failure(classroom, timeout_s=0.3)
    assert failure.problem == "timeout"
    assert "did not answer in time (0.3 s)" in failure.message


def test_a_name_that_does_not_resolve_says_so() -> None:
    # Built as the consumer builds it: resolving a real unknown name would leave loopback.
    unreachable = SISUnreachable(
        "GET /ims/oneroster/v1p1/teachers: could not reach the SIS at https://sis.nowhere.example "
        "(the host name does not resolve). Is the SIS running, and is the URL right?",
        method="GET",
        path="/ims/oneroster/v1p1/teachers",
    )
    failure = _unreachable(unreachable, "sis.nowhere.example")
    assert failure.problem == "dns"
    assert "sis.nowhere.example was not found" in failure.message


# ---- refused before any call ---------------------------------------------------------------


def connect(classroom: Classroom, **typed: Any) -> None:
    values: dict[str, Any] = {"access_key": "k", "secret_code": "s"}
    values.update(typed)
    sis_connection.connect(classroom, ADMIN, **values)


def nothing_saved(classroom: Classroom) -> bool:
    with classroom.session() as session:
        return session.scalars(select(SisConnection)).first() is None


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (
            {"sis": "generic-1.1", "host_url": "http://sis.district.example"},
            "must use https: credentials and marks would otherwise cross the network "
            "unencrypted. Try: https://sis.district.example",
        ),
        (
            {"sis": "skyward", "host_url": "https://esdemo1.skyward.com/"},
            "A Skyward Host URL ends in /api/ims/oneroster/v1p1/",
        ),
        (
            {"sis": "generic-1.2", "host_url": "https://sis.example.org/ims/oneroster"},
            "already contains the OneRoster path",
        ),
        (
            {"sis": "generic-1.2", "host_url": "https://sis.example.org"},
            "OneRoster 1.2 SIS needs the token URL",
        ),
        (
            {"sis": "infinite-campus", "host_url": "https://d.infinitecampus.org/campus?appName=d"},
            "Infinite Campus also needs the vendor key",
        ),
        (
            {"sis": "generic-1.1", "host_url": "https://10.1.2.3"},
            "SISLINK_ALLOW_PRIVATE_SIS=1",
        ),
        ({"sis": "nosuchsis", "host_url": "https://sis.example.org"}, "There is no SIS named"),
        (
            {"sis": "generic-1.1", "host_url": "https://sis.example.org", "secret_code": " "},
            "Give both the Access key and the Secret code",
        ),
    ],
)
def test_connect_refuses_unusable_details_before_any_call(
    classroom: Classroom, typed: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidConnectionDetails) as caught:
        connect(classroom, **typed)
    assert message in caught.value.message
    assert nothing_saved(classroom)


def test_private_addresses_are_allowed_by_configuration(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SISLINK_ALLOW_PRIVATE_SIS", "1")
    connect(classroom, sis="generic-1.1", host_url="https://10.1.2.3/")
    assert not nothing_saved(classroom)


def test_plain_http_is_allowed_with_the_insecure_flag(classroom: Classroom) -> None:
    connect(classroom, sis="generic-1.1", host_url="http://sis.district.example", insecure=True)
    assert sis_connection.status(classroom).connection is not None
