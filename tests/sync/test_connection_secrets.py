"""The secret code and the vendor key never appear in logs, audit events, CLI output or the
database file, through a whole connect / authorise / fail / disconnect lifecycle."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from sislink.classroom import open_classroom
from sislink.classroom.models import AuditEvent
from sislink.cli import app
from sislink.oneroster.provider.server import running_provider
from sislink.settings import Settings

SECRET = "Zq7-very-distinctive-secret-code"
runner = CliRunner()


def test_the_secret_appears_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SISLINK_HOME", str(tmp_path))
    monkeypatch.delenv("SISLINK_DATABASE_URL", raising=False)
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    with running_provider(profile="infinite-campus", students=20, client_secret=SECRET) as sis:
        vendor_key = sis.extra_headers["x-vendor-authorization"]
        env = {"SIS_SECRET": SECRET, "VENDOR_KEY": vendor_key}
        commands = [
            [
                "connect",
                "--sis",
                "infinite-campus",
                "--host-url",
                sis.host_url,
                "--access-key",
                sis.client_id,
                "--secret-code-env",
                "SIS_SECRET",
                "--vendor-key-env",
                "VENDOR_KEY",
                "--json",
            ],
            ["authorise", "--json"],
            ["status", "--json"],
            ["status"],
            ["audit", "--json"],
        ]
        for args in commands:
            result = runner.invoke(app, args, env=env)
            assert result.exit_code == 0, result.output
            outputs.append(result.output)
        # A failed authorise (wrong vendor key) must not leak the right secret either.
        wrong = runner.invoke(
            app,
            [
                "connect",
                "--sis",
                "infinite-campus",
                "--host-url",
                sis.host_url,
                "--access-key",
                sis.client_id,
                "--secret-code-env",
                "SIS_SECRET",
                "--vendor-key-env",
                "WRONG",
            ],
            env={**env, "WRONG": "bad:key"},
        )
        outputs.append(wrong.output)
        failed = runner.invoke(app, ["authorise"])
        assert failed.exit_code == 1
        outputs.append(failed.output)
        database = tmp_path / "sislink.db"
        # Checked while the secret is still stored (sealed), before disconnect erases it.
        stored_bytes = b"".join(
            path.read_bytes() for path in tmp_path.glob("sislink.db*") if path.is_file()
        )
        outputs.append(runner.invoke(app, ["disconnect", "--json"]).output)
    classroom = open_classroom(Settings.from_env())
    try:
        with classroom.session() as session:
            audit_text = json.dumps(
                [[e.action, e.subject, e.details] for e in session.scalars(select(AuditEvent))]
            )
    finally:
        classroom.close()
    assert "sis.authorise_failed" in audit_text
    for secret in (SECRET, vendor_key):
        assert secret not in caplog.text
        assert secret not in audit_text
        for output in outputs:
            assert secret not in output
        assert secret.encode() not in stored_bytes
        assert secret.encode() not in database.read_bytes()
