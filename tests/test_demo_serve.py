"""`sislink demo --serve`: after the flow, the console runs with the printed logins, the local
Google Classroom it connected shows on /admin/google; Ctrl-C stops it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_demo_serve_keeps_the_console_running_with_a_working_teacher_login(
    tmp_path: Path,
) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sislink.cli", "demo", "--serve", "--port", str(port),
         "--no-google", "--students", "120", "--classes", "1", "--home", str(tmp_path / "home")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    printed: list[str] = []
    try:
        deadline = time.monotonic() + 120
        teacher: tuple[str, str] | None = None
        admin: tuple[str, str] | None = None
        while time.monotonic() < deadline and teacher is None:
            line = process.stdout.readline()
            if not line:
                break
            printed.append(line)
            found = re.match(r"\s+(teacher|administrator):\s+(\S+)\s+password: (\S+)", line)
            if found and found.group(1) == "teacher":
                teacher = (found.group(2), found.group(3))
            elif found:
                admin = (found.group(2), found.group(3))
        assert teacher is not None and admin is not None, "".join(printed)
        domain = re.search(r"^  domain:\s+(\S+)$", "".join(printed), re.MULTILINE)
        assert domain, "".join(printed)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, follow_redirects=True) as browser:
            for _ in range(100):
                try:
                    page = browser.get("/login")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            token = re.search(r'type="hidden" name="([^"]+)" value="([^"]+)"', page.text)
            assert token, page.text[:500]
            answer = browser.post(
                "/login",
                data={"email": teacher[0], "password": teacher[1], token.group(1): token.group(2)},
            )
            assert answer.status_code == 200
            assert "My classes" in answer.text
        with httpx.Client(base_url=base, follow_redirects=True) as browser:
            page = browser.get("/login")
            token = re.search(r'type="hidden" name="([^"]+)" value="([^"]+)"', page.text)
            assert token, page.text[:500]
            browser.post(
                "/login",
                data={"email": admin[0], "password": admin[1], token.group(1): token.group(2)},
            )
            google = browser.get("/admin/google")
            assert google.status_code == 200, google.text[:500]
            assert 'id="google-status">authorised<' in google.text
            assert f"<dd>{domain.group(1)}</dd>" in google.text
            assert "PRIVATE KEY" not in google.text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, "".join(printed)
