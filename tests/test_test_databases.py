"""The PostgreSQL cases skip on a laptop without PostgreSQL, and fail in CI instead of skipping."""

from __future__ import annotations

import pytest

from conftest import POSTGRES_URL_VARIABLE, postgres_url_or_skip


def test_without_a_postgres_url_ci_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POSTGRES_URL_VARIABLE, raising=False)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run them"):
        postgres_url_or_skip()


def test_without_a_postgres_url_a_local_run_skips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POSTGRES_URL_VARIABLE, raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="cannot run"):
        postgres_url_or_skip()


def test_a_given_postgres_url_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(POSTGRES_URL_VARIABLE, "postgresql://postgres@127.0.0.1:5432/test")
    assert postgres_url_or_skip() == "postgresql://postgres@127.0.0.1:5432/test"
