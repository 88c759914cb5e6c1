"""`sislink google connect|authorise|status|disconnect`: the administrator's lifecycle on the
command line against the local Classroom; the private key appears in no output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sislink.cli import app
from sislink.googleclassroom.emulator import running_classroom

runner = CliRunner()


def test_connect_authorise_status_disconnect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SISLINK_HOME", str(tmp_path))
    monkeypatch.delenv("SISLINK_DATABASE_URL", raising=False)
    with running_classroom(students=20) as local:
        private = json.loads(local.key_file.read_text())["private_key"]
        outputs = []
        connected = runner.invoke(app, ["google", "connect", "--key-file", str(local.key_file),
                                        "--admin-email", local.admin_email,
                                        "--api-endpoint", local.api_url])  # fmt: skip
        outputs.append(connected.output)
        assert connected.exit_code == 0, connected.output
        assert "Next: sislink google authorise" in connected.output
        authorised = runner.invoke(app, ["google", "authorise", "--json"])
        outputs.append(authorised.output)
        assert authorised.exit_code == 0, authorised.output
        report = json.loads(authorised.output)
        assert report["authorised"] is True and report["status"] == "authorised"
        status = runner.invoke(app, ["google", "status"])
        outputs.append(status.output)
        assert local.domain in status.output and "authorised" in status.output
        gone = runner.invoke(app, ["google", "disconnect"])
        outputs.append(gone.output)
        assert gone.exit_code == 0 and "the key is erased" in gone.output
        again = runner.invoke(app, ["google", "authorise"])
        assert again.exit_code == 1
        assert "not connected to Google Classroom" in again.output
    for output in outputs:
        assert private[40:100] not in output


def test_a_bad_key_file_is_one_sentence_and_exit_status_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SISLINK_HOME", str(tmp_path))
    monkeypatch.delenv("SISLINK_DATABASE_URL", raising=False)
    key = tmp_path / "client_secret.json"
    key.write_text(json.dumps({"web": {"client_id": "1.apps.googleusercontent.com"}}))
    result = runner.invoke(app, ["google", "connect", "--key-file", str(key),
                                 "--admin-email", "admin@example.org"])  # fmt: skip
    assert result.exit_code == 1
    assert "not a service account key" in result.output
    assert "Traceback" not in result.output
