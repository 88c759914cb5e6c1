"""Fixtures shared by the whole suite: databases (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from sislink.classroom.db import Classroom, normalise_database_url, open_classroom
from sislink.classroom.secrets import SecretBox

POSTGRES_URL_VARIABLE = "SISLINK_TEST_POSTGRES_URL"


def postgres_url_or_skip() -> str:
    """The test PostgreSQL URL; skip locally without one, but fail in CI (CI=true)."""
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if url:
        return url
    message = f"{POSTGRES_URL_VARIABLE} is not set, so the PostgreSQL cases cannot run"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI must run them)")
    pytest.skip(message)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'classroom.db'}"
        return
    base_url = normalise_database_url(postgres_url_or_skip())
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        # Each test gets its own schema: everything it creates goes there, then is dropped.
        scoped = base_url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def secret_box() -> SecretBox:
    return SecretBox.generate()


@pytest.fixture
def classroom(database_url: str, secret_box: SecretBox) -> Iterator[Classroom]:
    """A migrated, empty classroom on each database."""
    opened = open_classroom(database_url, secret_box=secret_box)
    try:
        yield opened
    finally:
        opened.close()


def _openapi_dir() -> Path:
    """1EdTech's OneRoster 1.2 OpenAPI files: in `../shared/` beside the checkout (as CI lays
    it out), else the workplace's copy."""
    beside = Path(__file__).resolve().parents[2] / "shared" / "reference"
    for reference in (beside, Path("/work/shared/reference")):
        if (reference / "oneroster-1.2-openapi").is_dir():
            return reference / "oneroster-1.2-openapi"
    return beside / "oneroster-1.2-openapi"


OPENAPI_DIR = _openapi_dir()
