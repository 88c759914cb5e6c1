"""Service account keys and the token endpoint's checks, as Google's OAuth server makes them.

`new_project` makes a Cloud project with one service account and an RSA key, written out as the
JSON key file Google's console gives (`type`, `project_id`, `private_key_id`, `private_key`,
`client_email`, `client_id`, `token_uri`, ...). `check_assertion` verifies a JWT-bearer
assertion (RS256, `kid` = `private_key_id`) against the keys the local Classroom made, and
answers with Google's own error codes and words when it refuses.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_LIFETIME_S = 3600
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # noqa: S105 (a URL)


@dataclass(frozen=True)
class Project:
    """A Cloud project with one service account key (the private half only in `key_file`)."""

    project_id: str
    project_number: str
    client_email: str
    client_id: str
    private_key_id: str
    public_key_pem: str
    key_file: dict[str, Any]  # what `sislink google serve` writes; holds the private key

    def __repr__(self) -> str:
        return f"Project({self.project_id!r}, {self.client_email!r})"

    def to_json(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "project_number": self.project_number,
            "client_email": self.client_email,
            "client_id": self.client_id,
            "private_key_id": self.private_key_id,
            "public_key_pem": self.public_key_pem,
            "key_file": self.key_file,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Project:
        return cls(**data)


def new_project(name: str, token_uri: str, number: int) -> Project:
    """A project `name` whose key file's `token_uri` is the local token endpoint."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    key_id = secrets.token_hex(20)
    client_id = str(100_000_000_000_000_000_000 + number * 7_919 + secrets.randbelow(10**6))
    email = f"sislink-sync@{name}.iam.gserviceaccount.com"
    key_file = {
        "type": "service_account",
        "project_id": name,
        "private_key_id": key_id,
        "private_key": private_pem,
        "client_email": email,
        "client_id": client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
        "universe_domain": "googleapis.com",
    }
    return Project(
        project_id=name,
        project_number=str(400_000_000_000 + number),
        client_email=email,
        client_id=client_id,
        private_key_id=key_id,
        public_key_pem=public_pem,
        key_file=key_file,
    )


class GrantRefused(Exception):
    """The token endpoint's refusal: HTTP status, OAuth error code, Google's description."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass(frozen=True)
class Assertion:
    """A verified assertion: which project's key signed it, who it acts as, for what."""

    project: Project
    subject: str | None
    scopes: tuple[str, ...]


def check_assertion(
    assertion: str, projects: dict[str, Project], token_uri: str, now: float | None = None
) -> Assertion:
    """Verify a JWT-bearer assertion, or raise GrantRefused with Google's words."""
    bad_signature = GrantRefused(400, "invalid_grant", "Invalid JWT Signature.")
    try:
        header_b64, claims_b64, signature_b64 = assertion.split(".")
        header = json.loads(_b64decode(header_b64))
        claims = json.loads(_b64decode(claims_b64))
        signature = _b64decode(signature_b64)
    except ValueError:
        raise GrantRefused(400, "invalid_grant", "Invalid JWT: not a JWT.") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise GrantRefused(400, "invalid_grant", "Invalid JWT: not a JWT.")
    if header.get("alg") != "RS256":
        raise bad_signature
    project = projects.get(str(header.get("kid")))
    if project is None:
        # Guess: Google says the same for an unknown, deleted or mismatched key.
        raise bad_signature
    public = serialization.load_pem_public_key(project.public_key_pem.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    try:
        public.verify(
            signature,
            f"{header_b64}.{claims_b64}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except InvalidSignature:
        raise bad_signature from None
    if claims.get("iss") != project.client_email:
        raise bad_signature
    # google-auth always names Google's token endpoint as the audience, whatever token_uri is.
    if claims.get("aud") not in (token_uri, GOOGLE_TOKEN_AUDIENCE):
        raise GrantRefused(400, "invalid_grant", "Invalid JWT: Failed audience check.")
    moment = time.time() if now is None else now
    try:
        issued, expires = float(claims["iat"]), float(claims["exp"])
    except (KeyError, TypeError, ValueError):
        issued, expires = 0.0, 0.0
    if not (expires - issued <= TOKEN_LIFETIME_S and issued - 300 <= moment <= expires + 300):
        raise GrantRefused(
            400,
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
            "timeframe. Check your iat and exp values in the JWT claim.",
        )
    scopes = tuple(str(claims.get("scope") or "").split())
    if not scopes:
        raise GrantRefused(400, "invalid_scope", "Empty or missing scope not allowed.")
    subject = claims.get("sub")
    return Assertion(project=project, subject=str(subject) if subject else None, scopes=scopes)


def new_access_token() -> str:
    return "ya29.local-" + secrets.token_urlsafe(32)
