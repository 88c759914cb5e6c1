"""`sislink sis serve` prints its connection lines first (never the secret); `sislink demo` holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from sislink.demo import run_demo


def test_sis_serve_prints_the_connection_lines_first_and_serves() -> None:
    env = {**os.environ, "SISLINK_SIS_CLIENT_SECRET": "very-secret-value"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from sislink.cli import main; main()",
            "sis",
            "serve",
            "--port",
            "0",
            "--students",
            "60",
            "--client-id",
            "cli-test",
            "--profile",
            "generic-1.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(5)]
        keys = [line.split(": ", 1)[0] for line in lines]
        assert keys == ["host_url", "base_url", "token_url", "client_id", "teacher_email"]
        values = dict(line.split(": ", 1) for line in lines)
        assert values["client_id"] == "cli-test" and "@" in values["teacher_email"]
        for _ in range(50):
            try:
                response = httpx.post(
                    values["token_url"],
                    auth=("cli-test", "very-secret-value"),
                    data={"grant_type": "client_credentials"},
                )
                break
            except httpx.ConnectError:
                import time

                time.sleep(0.1)
        assert response.status_code == 200
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert "very-secret-value" not in "\n".join(lines) + output


def test_demo_runs_googles_sequence_and_exits_zero(tmp_path: Path) -> None:
    printed: list[str] = []
    assert run_demo(printed.append, students=60, home=tmp_path) == 0
    text = "\n".join(printed)
    assert "teacher_email:" in text and text.count(": ok (") == 11
