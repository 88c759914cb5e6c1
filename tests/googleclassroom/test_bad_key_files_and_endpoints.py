"""Bad input gets one clear sentence: key files that are not service account keys, a private key
Google does not know, an email outside the domain, a Classroom that answers HTML or nothing.
Nothing secret is ever in the sentence."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from googleclassroom.google_world import sislink_client
from sislink.googleclassroom import (
    ClassroomClient,
    ClassroomUnreachable,
    ClientSettings,
    KeyFileError,
    MalformedAnswer,
    ServiceAccountKey,
    TokenRefused,
)
from sislink.googleclassroom.emulator import RunningClassroom


def _write(tmp_path: Path, data: object, name: str = "key.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _info(running: RunningClassroom) -> dict[str, str]:
    info: dict[str, str] = json.loads(running.key_file.read_text())
    return info


def test_a_file_that_is_not_json_is_refused_with_where_to_get_a_key(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as caught:
        ServiceAccountKey.from_file(_write(tmp_path, "-----BEGIN PRIVATE KEY-----\nabc"))
    assert "is not JSON" in str(caught.value)
    assert "Service accounts > Keys" in str(caught.value)


def test_an_oauth_client_file_is_not_a_service_account_key(tmp_path: Path) -> None:
    client_secret = {
        "installed": {"client_id": "1.apps.googleusercontent.com", "client_secret": "x"}
    }
    with pytest.raises(KeyFileError) as caught:
        ServiceAccountKey.from_file(_write(tmp_path, client_secret))
    assert "not a service account key" in str(caught.value)
    authorized_user = {"type": "authorized_user", "refresh_token": "1//secret-refresh"}
    with pytest.raises(KeyFileError) as caught:
        ServiceAccountKey.from_file(_write(tmp_path, authorized_user))
    assert "'authorized_user' credential" in str(caught.value)
    assert "1//secret-refresh" not in str(caught.value)


def test_a_key_file_missing_fields_or_with_a_damaged_key_says_which(
    local_classroom: RunningClassroom, tmp_path: Path
) -> None:
    info = _info(local_classroom)
    partial = {k: v for k, v in info.items() if k not in ("client_email", "token_uri")}
    with pytest.raises(KeyFileError) as caught:
        ServiceAccountKey.from_file(_write(tmp_path, partial))
    assert "lacks client_email, token_uri" in str(caught.value)
    damaged = {**info, "private_key": info["private_key"][:200] + "\n-----END PRIVATE KEY-----\n"}
    with pytest.raises(KeyFileError) as caught:
        ServiceAccountKey.from_file(_write(tmp_path, damaged))
    assert "cannot be read" in str(caught.value)
    assert "PRIVATE KEY" not in str(caught.value)


def test_a_private_key_that_does_not_match_is_refused_by_the_token_endpoint(
    local_classroom: RunningClassroom, tmp_path: Path
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = stranger.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    key = ServiceAccountKey.from_file(
        _write(tmp_path, {**_info(local_classroom), "private_key": pem})
    )
    with (
        ClassroomClient(
            key, admin_email=local_classroom.admin_email, api_endpoint=local_classroom.api_url
        ) as client,
        pytest.raises(TokenRefused) as caught,
    ):
        client.execute(lambda s: s.courses().list())
    message = str(caught.value)
    assert "did not accept the key file's private key" in message
    assert "Create a new JSON key" in message
    assert "PRIVATE KEY" not in message and pem[40:80] not in message
    assert pem[40:80] not in repr(key)


def test_an_administrator_email_outside_the_domain_is_named(
    local_classroom: RunningClassroom,
) -> None:
    key = ServiceAccountKey.from_file(local_classroom.key_file)
    with (
        ClassroomClient(
            key, admin_email="visitor@elsewhere.example.net", api_endpoint=local_classroom.api_url
        ) as client,
        pytest.raises(TokenRefused) as caught,
    ):
        client.execute(lambda s: s.courses().list())
    assert "does not know visitor@elsewhere.example.net as a user of the domain" in str(
        caught.value
    )
    with pytest.raises(KeyFileError):
        ClassroomClient(key, admin_email="not-an-email", api_endpoint=local_classroom.api_url)


def test_a_delegation_missing_a_scope_names_the_client_id_and_the_scopes(tmp_path: Path) -> None:
    from sislink.googleclassroom.emulator import ClassroomConfig, running_classroom

    config = ClassroomConfig(
        delegated_scopes=frozenset({"https://www.googleapis.com/auth/classroom.courses"})
    )
    with running_classroom(students=5, config=config) as running, sislink_client(running) as client:
        with pytest.raises(TokenRefused) as caught:
            client.execute(lambda s: s.courses().list())
        key = ServiceAccountKey.from_file(running.key_file)
    message = str(caught.value)
    assert f"client id {key.client_id}" in message
    assert "Domain-wide delegation" in message
    assert "classroom.rosters" in message


class _Html(BaseHTTPRequestHandler):
    def _page(self) -> None:
        body = b"<!DOCTYPE html><html><body>Sign in to the school wifi</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _page

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def html_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Html)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_classroom_that_answers_html_is_named_with_the_endpoint_to_check(
    local_classroom: RunningClassroom, html_server: str
) -> None:
    key = ServiceAccountKey.from_file(local_classroom.key_file)
    with ClassroomClient(
        key, admin_email=local_classroom.admin_email, api_endpoint=html_server
    ) as client:
        with pytest.raises(MalformedAnswer) as caught:
            client.execute(lambda s: s.courses().list())
        assert "check the API endpoint" in str(caught.value)
        outcomes = client.execute_many([lambda s: s.courses().list()])
        assert isinstance(outcomes[0].error, MalformedAnswer)


def test_a_token_endpoint_that_answers_html_is_named(
    local_classroom: RunningClassroom, html_server: str, tmp_path: Path
) -> None:
    info = {**_info(local_classroom), "token_uri": html_server + "token"}
    key = ServiceAccountKey.from_file(_write(tmp_path, info))
    with (
        ClassroomClient(
            key, admin_email=local_classroom.admin_email, api_endpoint=local_classroom.api_url
        ) as client,
        pytest.raises(TokenRefused) as caught,
    ):
        client.execute(lambda s: s.courses().list())
    assert "token_uri" in str(caught.value)


def test_a_classroom_that_answers_nothing_is_unreachable_in_words(
    local_classroom: RunningClassroom,
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        settings = ClientSettings(timeout_s=0.3, max_retries=1, backoff_base_s=0.01)
        key = ServiceAccountKey.from_file(local_classroom.key_file)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with (
            ClassroomClient(
                key,
                admin_email=local_classroom.admin_email,
                api_endpoint=endpoint,
                settings=settings,
            ) as client,
            pytest.raises(ClassroomUnreachable) as caught,
        ):
            client.execute(lambda s: s.courses().list())
    finally:
        silent.close()
    assert "did not answer courses.list (no answer in time) after 2 tries" in str(caught.value)


def test_nothing_secret_in_reprs_or_errors(local_classroom: RunningClassroom) -> None:
    key = ServiceAccountKey.from_file(local_classroom.key_file)
    private = _info(local_classroom)["private_key"]
    with ClassroomClient(
        key, admin_email=local_classroom.admin_email, api_endpoint=local_classroom.api_url
    ) as client:
        client.execute(lambda s: s.courses().list())
        token = client._credentials[local_classroom.admin_email].token
        texts = [repr(key), repr(client), str(key)]
        with pytest.raises(Exception) as caught:
            client.execute(lambda s: s.courses().get(id="d:nothing"))
        texts.append(str(caught.value))
        texts.append(repr(caught.value))
    for text in texts:
        assert private[30:90] not in text
        assert token not in text
