"""Encryption at rest for SIS secret codes (Fernet), and where the installation's key comes from."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from sislink.classroom.errors import InvalidInput, SecretUnreadable
from sislink.settings import Settings


class SecretBox:
    """Seals and opens secrets with one Fernet key; the key never appears in its repr."""

    def __init__(self, key: str | bytes) -> None:
        raw = key.encode("ascii") if isinstance(key, str) else key
        try:
            self._fernet = Fernet(raw)
        except (ValueError, TypeError):
            raise InvalidInput(
                "The secret key is not a valid Fernet key (44 URL-safe base64 characters). "
                "Generate one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'` and set SISLINK_SECRET_KEY to it."
            ) from None

    def __repr__(self) -> str:
        return "SecretBox(key=<hidden>)"

    def seal(self, secret: str) -> str:
        """The encrypted token for `secret` (safe to store)."""
        return self._fernet.encrypt(secret.encode("utf-8")).decode("ascii")

    def open(self, token: str) -> str:
        """The secret inside `token`; SecretUnreadable if another key sealed it."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise SecretUnreadable(
                "A stored secret cannot be decrypted with this installation's key. "
                "Check that SISLINK_SECRET_KEY (or the key file) is the one used when the "
                "secret was saved, or enter the secret code again."
            ) from None

    @classmethod
    def generate(cls) -> SecretBox:
        """A box with a new random key (tests, throwaway sandboxes)."""
        return cls(Fernet.generate_key())


def load_secret_box(settings: Settings) -> SecretBox:
    """The installation's box: SISLINK_SECRET_KEY if set, else the key file (made on first use)."""
    if settings.secret_key:
        return SecretBox(settings.secret_key)
    return SecretBox(_read_or_create_key_file(settings.secret_key_file))


def _read_or_create_key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    try:
        # O_EXCL: two processes starting at once must not each write a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        stored = path.read_bytes().strip()
        if not stored:
            raise SecretUnreadable(
                f"The key file {path} is empty. Restore it from a backup, or delete it to "
                "make a new key (stored SIS secret codes must then be entered again)."
            ) from None
        return stored
    with os.fdopen(fd, "wb") as file:
        file.write(key + b"\n")
    return key
