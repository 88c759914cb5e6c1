"""The summary's SMTP connection: STARTTLS (and implicit TLS) check the server's certificate,
the password is sent only over an encrypted connection (or to this machine), and is never in
the settings' repr or a failure's words. A local aiosmtpd server with a certificate made here."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from operations.smtp_inbox import Inbox, free_port
from sislink.operations.summary import (
    SmtpSettings,
    SummaryNotConfigured,
    compose_summary,
    configured_settings,
    deliver,
)

PASSWORD = "Zq7-smtp-password-5521"  # the test server's


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1, trusted by nobody unless told."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    made = Certificate(folder / "cert.pem", folder / "key.pem")
    made.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    made.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return made


class Signins:
    """An aiosmtpd authenticator that accepts the test's user and password, and keeps tries."""

    def __init__(self) -> None:
        self.tried: list[tuple[str, str]] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            login, password = data.login.decode(), data.password.decode()
            self.tried.append((login, password))
            return AuthResult(success=login == "sislink" and password == PASSWORD)
        return AuthResult(success=False)


@contextmanager
def tls_inbox(
    certificate: Certificate, *, implicit: bool = False
) -> Iterator[tuple[Inbox, Signins, int]]:
    """An SMTP server on 127.0.0.1 with STARTTLS required (or TLS from the start) and AUTH."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate.cert, certificate.key)
    inbox, signins, port = Inbox(), Signins(), free_port()
    options: dict[str, Any] = {"authenticator": signins, "auth_require_tls": True}
    if implicit:
        # aiosmtpd sees only STARTTLS as TLS; this connection is TLS from its first byte.
        options["auth_require_tls"] = False
        controller = Controller(
            inbox, hostname="127.0.0.1", port=port, ssl_context=context, **options
        )
    else:
        controller = Controller(
            inbox,
            hostname="127.0.0.1",
            port=port,
            tls_context=context,
            require_starttls=True,
            **options,
        )
    controller.start()
    try:
        yield inbox, signins, port
    finally:
        controller.stop()


def settings(port: int, **extra: str) -> SmtpSettings:
    env = {
        "SISLINK_SMTP_HOST": "127.0.0.1",
        "SISLINK_SMTP_PORT": str(port),
        "SISLINK_SUMMARY_TO": "it@district.example",
        "SISLINK_SMTP_USERNAME": "sislink",
        "SISLINK_SMTP_PASSWORD": PASSWORD,
        **extra,
    }
    return SmtpSettings.from_env(env)


def message(chosen: SmtpSettings) -> Any:
    since = datetime.now(UTC) - timedelta(hours=1)
    return compose_summary([], chosen, since=since, always=True)


def test_starttls_refuses_a_server_whose_certificate_is_not_trusted(
    certificate: Certificate,
) -> None:
    with tls_inbox(certificate) as (inbox, signins, port):
        chosen = settings(port, SISLINK_SMTP_STARTTLS="1")
        with pytest.raises(ssl.SSLCertVerificationError):
            deliver(chosen, message(chosen))
    assert inbox.received == [] and signins.tried == []  # the password never went


def test_starttls_with_the_servers_authority_signs_in_and_delivers(
    certificate: Certificate,
) -> None:
    with tls_inbox(certificate) as (inbox, signins, port):
        chosen = settings(
            port, SISLINK_SMTP_STARTTLS="1", SISLINK_SMTP_CA_FILE=str(certificate.cert)
        )
        deliver(chosen, message(chosen))
    assert signins.tried == [("sislink", PASSWORD)]
    assert [m["Subject"] for m in inbox.received] == ["sislink: nothing ran"]


def test_implicit_tls_checks_the_certificate_and_delivers(certificate: Certificate) -> None:
    with tls_inbox(certificate, implicit=True) as (inbox, signins, port):
        untrusted = settings(port, SISLINK_SMTP_TLS="1")
        with pytest.raises(ssl.SSLCertVerificationError):
            deliver(untrusted, message(untrusted))
        trusted = settings(port, SISLINK_SMTP_TLS="1", SISLINK_SMTP_CA_FILE=str(certificate.cert))
        deliver(trusted, message(trusted))
    assert len(inbox.received) == 1 and signins.tried == [("sislink", PASSWORD)]


def test_a_password_for_a_remote_server_without_tls_is_refused_in_words() -> None:
    env = {
        "SISLINK_SMTP_HOST": "smtp.district.example",
        "SISLINK_SUMMARY_TO": "it@district.example",
        "SISLINK_SMTP_USERNAME": "sislink",
        "SISLINK_SMTP_PASSWORD": PASSWORD,
    }
    with pytest.raises(SummaryNotConfigured) as refused:
        SmtpSettings.from_env(env)
    words = str(refused.value)
    assert "SISLINK_SMTP_STARTTLS" in words and PASSWORD not in words
    # With STARTTLS it is accepted, and the password is not in the settings' repr.
    chosen = SmtpSettings.from_env({**env, "SISLINK_SMTP_STARTTLS": "1"})
    assert PASSWORD not in repr(chosen)


def test_starttls_and_implicit_tls_together_are_refused_in_words() -> None:
    with pytest.raises(SummaryNotConfigured, match="SISLINK_SMTP_TLS"):
        SmtpSettings.from_env(
            {
                "SISLINK_SMTP_HOST": "smtp.district.example",
                "SISLINK_SUMMARY_TO": "it@district.example",
                "SISLINK_SMTP_STARTTLS": "1",
                "SISLINK_SMTP_TLS": "1",
            }
        )


def test_wrong_smtp_settings_are_said_once_in_the_log_not_swallowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No SMTP host means no e-mail, quietly (as documented); a host with wrong settings is a
    mistake to tell, once, not every minute."""
    env = {
        "SISLINK_SMTP_HOST": "smtp.district.example",
        "SISLINK_SUMMARY_TO": "it@district.example",
        "SISLINK_SMTP_USERNAME": "sislink",
        "SISLINK_SMTP_PASSWORD": PASSWORD,
    }
    caplog.set_level(logging.WARNING, logger="sislink.operations.summary")
    assert configured_settings(env) is None
    assert configured_settings(env) is None
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "SISLINK_SMTP_STARTTLS" in said[0] and PASSWORD not in said[0]
    caplog.clear()
    assert configured_settings({"SISLINK_SUMMARY_TO": "it@district.example"}) is None
    assert caplog.records == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SISLINK_SUMMARY_TO", "it@district.example\r\nBcc: attacker@elsewhere.example"),
        ("SISLINK_SUMMARY_TO", "it@district.example, the it team"),
        ("SISLINK_SUMMARY_FROM", "sislink@district.example\nX-Evil: 1"),
    ],
)
def test_an_address_that_is_not_one_is_refused_in_words(name: str, value: str) -> None:
    env = {
        "SISLINK_SMTP_HOST": "127.0.0.1",
        "SISLINK_SUMMARY_TO": "it@district.example",
        name: value,
    }
    with pytest.raises(SummaryNotConfigured, match=name):
        SmtpSettings.from_env(env)


def test_addresses_with_a_display_name_are_taken() -> None:
    chosen = SmtpSettings.from_env(
        {
            "SISLINK_SMTP_HOST": "127.0.0.1",
            "SISLINK_SUMMARY_FROM": "sislink <sislink@district.example>",
            "SISLINK_SUMMARY_TO": "IT <it@district.example>, ada@district.example",
        }
    )
    assert chosen.recipients == ("IT <it@district.example>", "ada@district.example")
