"""Settings come from SISLINK_HOME, SISLINK_DATABASE_URL and SISLINK_SECRET_KEY, with defaults."""

from __future__ import annotations

from pathlib import Path

from sislink.settings import Settings


def test_defaults_keep_everything_under_dot_sislink() -> None:
    settings = Settings.from_env({})
    assert settings.home == Path(".sislink")
    assert settings.database_url == f"sqlite:///{Path('.sislink/sislink.db').resolve()}"
    assert settings.secret_key is None
    assert settings.secret_key_file == Path(".sislink/secret.key")


def test_environment_overrides_the_defaults(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "SISLINK_HOME": str(tmp_path),
            "SISLINK_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test",
            "SISLINK_SECRET_KEY": "k" * 44,
        }
    )
    assert settings.home == tmp_path
    assert settings.database_url == "postgresql://postgres@127.0.0.1:5432/test"
    assert settings.secret_key == "k" * 44
    assert "k" * 44 not in repr(settings)


def test_the_database_follows_the_home_directory(tmp_path: Path) -> None:
    settings = Settings.from_env({"SISLINK_HOME": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'sislink.db'}"
