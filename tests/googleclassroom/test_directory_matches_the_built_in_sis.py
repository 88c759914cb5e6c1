"""The local Classroom's domain holds the built-in SIS's teachers and students, by email, for the
same seed; and `sislink google serve` prints what a district's code needs, first, one per line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from google.oauth2 import service_account
from googleapiclient.discovery import build

from sislink.googleclassroom import SCOPES
from sislink.googleclassroom.emulator.directory import seeded_directory
from sislink.oneroster.provider.seed import seed_district
from sislink.oneroster.provider.store import ProviderStore


def test_the_domain_has_every_sis_teacher_and_student_by_email_and_the_same_teacher() -> None:
    store = ProviderStore()
    try:
        summary = seed_district(store, seed=11, students=450, schools=2)
        sis_emails = {
            str(user["email"]).lower(): user["roles"][0]["role"]
            for user in store.query("user", limit=10_000).records
        }
    finally:
        store.close()
    directory = seeded_directory(11, 450, 2)
    in_domain = {
        u.email.lower(): u.role for u in directory.users if u.role in ("teacher", "student")
    }
    in_domain.pop(f"no.classroom@{directory.domain}")
    assert in_domain == sis_emails
    assert directory.first_teacher.email == summary.teacher_email
    assert all(directory.in_domain(email) for email in sis_emails)
    outsiders = [u for u in directory.users if not u.in_domain]
    assert outsiders and not any(directory.in_domain(u.email) for u in outsiders)


def test_google_serve_prints_where_it_is_and_google_s_client_reaches_it(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sislink.cli", "google", "serve", "--port", "0",
         "--students", "40", "--key-file", str(tmp_path / "key.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(5)]
        printed = dict(line.split(": ", 1) for line in lines)
        assert list(printed) == ["api_url", "key_file", "admin_email", "teacher_email", "domain"]
        info = json.loads(Path(printed["key_file"]).read_text())
        assert info["type"] == "service_account"
        assert info["token_uri"] == printed["api_url"] + "token"
        assert oct(Path(printed["key_file"]).stat().st_mode & 0o777) == "0o600"
        credentials = service_account.Credentials.from_service_account_info(
            info, scopes=list(SCOPES)
        ).with_subject(printed["admin_email"])
        service = build(
            "classroom",
            "v1",
            credentials=credentials,
            static_discovery=True,
            client_options={"api_endpoint": printed["api_url"]},
        )
        teacher = service.userProfiles().get(userId=printed["teacher_email"]).execute()
        assert teacher["emailAddress"] == printed["teacher_email"]
        assert printed["teacher_email"].endswith("@" + printed["domain"])
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)
