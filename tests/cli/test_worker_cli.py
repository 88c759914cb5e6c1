"""`sislink worker`: settings given wrong are refused in one sentence, before any worker starts."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from sislink.cli import app


def test_a_visibility_timeout_that_is_not_seconds_is_refused_in_a_sentence(
    tmp_path: Path,
) -> None:
    said = CliRunner().invoke(
        app,
        ["worker"],
        env={
            "SISLINK_HOME": str(tmp_path),
            "SISLINK_BROKER_URL": "redis://127.0.0.1:6379/0",
            "SISLINK_BROKER_VISIBILITY_TIMEOUT": "ten",
        },
    )

    assert said.exit_code == 1, said.output
    assert "SISLINK_BROKER_VISIBILITY_TIMEOUT is 'ten'" in said.output
    assert not isinstance(said.exception, ValueError)  # said, not raised


def test_without_a_broker_the_worker_says_what_to_set(tmp_path: Path) -> None:
    said = CliRunner().invoke(
        app, ["worker"], env={"SISLINK_HOME": str(tmp_path), "SISLINK_BROKER_URL": ""}
    )

    assert said.exit_code == 1
    assert "SISLINK_BROKER_URL is not set" in said.output
