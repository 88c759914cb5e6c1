"""`sislink serve` logs each request (uvicorn's access log): a set-password link's token, good
for seven days, is not in it, in plain text logs (the default) or JSON."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

POLL_S = 0.05
POLLS = 1200
TOKEN = "Zq7fSetPasswordLinkTokenThatMustNotBeLogged"


def _free_port() -> int:
    with socket.socket() as found:
        found.bind(("127.0.0.1", 0))
        return int(found.getsockname()[1])


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_set_password_links_token_is_not_in_the_access_log(
    tmp_path: Path, log_format: str
) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as written:
        serve = subprocess.Popen(
            [sys.executable, "-m", "sislink.cli", "serve", "--port", str(port), "--no-scheduler"],
            stdout=written,
            stderr=subprocess.STDOUT,
            text=True,
            env={
                **os.environ,
                "SISLINK_HOME": str(tmp_path / "home"),
                "SISLINK_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
                "SISLINK_LOG_FORMAT": log_format,
                "PYTHONUNBUFFERED": "1",
            },
        )
        try:
            for _ in range(POLLS):
                assert serve.poll() is None, log.read_text()
                try:
                    httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                    break
                except httpx.TransportError:
                    time.sleep(POLL_S)
            else:
                raise AssertionError("sislink serve never answered")
            opened = httpx.get(f"http://127.0.0.1:{port}/set-password?token={TOKEN}", timeout=10)
            assert opened.status_code == 400  # no such link: the line is logged all the same
        finally:
            serve.send_signal(signal.SIGINT)
            serve.wait(timeout=30)
    said = log.read_text()
    assert "/set-password?token=" in said, said
    assert TOKEN not in said
