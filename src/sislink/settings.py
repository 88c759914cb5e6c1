"""Where sislink keeps its data and how it finds its database and secret key (from the environment);
the home folder is its owner's alone (0700)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOME = Path(".sislink")
DATABASE_FILE_NAME = "sislink.db"
SECRET_KEY_FILE_NAME = "secret.key"  # noqa: S105 (a file name, not a secret)


@dataclass(frozen=True)
class Settings:
    """The installation's settings: its home directory, database URL and (optional) secret key.

    `secret_key` is the Fernet key given in `SISLINK_SECRET_KEY`; when it is None the key
    lives in `secret_key_file`, created on first use. It is kept out of `repr`.
    """

    home: Path
    database_url: str
    secret_key: str | None = field(default=None, repr=False)

    @property
    def secret_key_file(self) -> Path:
        return self.home / SECRET_KEY_FILE_NAME

    def make_private_home(self) -> Path:
        """Create the home folder if needed and make it its owner's alone (0700): it holds the
        secret key and, by default, the database (password hashes, sealed SIS secrets)."""
        return make_private_dir(self.home)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read SISLINK_HOME, SISLINK_DATABASE_URL and SISLINK_SECRET_KEY (all optional)."""
        env = os.environ if environ is None else environ
        home = Path(env.get("SISLINK_HOME") or DEFAULT_HOME)
        database_url = env.get("SISLINK_DATABASE_URL") or sqlite_url_for(home / DATABASE_FILE_NAME)
        secret_key = env.get("SISLINK_SECRET_KEY") or None
        return cls(home=home, database_url=database_url, secret_key=secret_key)

    @classmethod
    def for_home(cls, home: Path, database_url: str | None = None) -> Settings:
        """Settings for a given home directory (tests, the demo), SQLite inside it by default."""
        return cls(
            home=home, database_url=database_url or sqlite_url_for(home / DATABASE_FILE_NAME)
        )


def make_private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) and set it to 0700; an existing folder sislink
    cannot change (not its owner) is left as it is."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if path.stat().st_mode & 0o777 != 0o700:
            path.chmod(0o700)
    except PermissionError:
        pass
    return path


def sqlite_url_for(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite file (absolute, so a later chdir does not move it)."""
    return f"sqlite:///{path.resolve()}"
