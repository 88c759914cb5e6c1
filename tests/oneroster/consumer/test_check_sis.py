"""`sislink check-sis` against the built-in SIS: a passing report card for every profile, and a
precise message for a wrong base path, a wrong secret, a missing scope or nothing listening."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from typer.testing import CliRunner

from sislink.cli import app
from sislink.oneroster.provider.server import RunningProvider, running_provider

PROFILES = ["generic-1.1", "generic-1.2", "infinite-campus", "skyward", "aspen", "aeries"]


def _check(
    sis: RunningProvider, *extra: str, secret: str | None = None, base_url: str | None = None
) -> tuple[int, dict[str, Any]]:
    args = [
        "check-sis",
        "--base-url",
        base_url or sis.base_url,
        "--client-id",
        sis.client_id,
        "--client-secret-env",
        "CHECK_SIS_SECRET",
        "--teacher-email",
        sis.teacher_email,
        "--profile",
        sis.profile,
        "--json",
        *extra,
    ]
    if "oauth1" not in sis.auth_kinds[:1]:
        args += ["--token-url", sis.token_url]
    env = {"CHECK_SIS_SECRET": secret or sis.client_secret}
    if sis.extra_headers:
        env["CHECK_SIS_VENDOR"] = next(iter(sis.extra_headers.values()))
        args += ["--vendor-key-env", "CHECK_SIS_VENDOR"]
    result = CliRunner().invoke(app, args, env=env)
    assert result.output.strip(), result.exception
    return result.exit_code, json.loads(result.output)


def _failures(report: dict[str, Any]) -> dict[str, str]:
    return {c["check"]: c["details"] for c in report["checks"] if c["status"] == "FAIL"}


@pytest.mark.parametrize("profile", PROFILES)
def test_check_sis_passes_every_check_against_each_profile(profile: str) -> None:
    with running_provider(profile=profile, students=60) as sis:
        code, report = _check(sis, "--write-test")
    assert _failures(report) == {}
    assert code == 0 and report["passed"]
    names = [c["check"] for c in report["checks"]]
    assert "line_item_put_creates_201" in names and "exempt_status_is_kept" in names
    assert all(c["latency_ms"] is not None for c in report["checks"])


def test_a_wrong_base_path_fails_with_the_404_and_what_to_fix() -> None:
    with running_provider(students=40) as sis:
        code, report = _check(sis, base_url=sis.origin + "/oneroster/wrong")
    assert code == 1
    details = _failures(report)["teachers_can_be_listed"]
    assert "404" in details and "Check the base URL" in details


def test_a_wrong_secret_fails_with_the_401_and_what_to_fix() -> None:
    with running_provider(students=40) as sis:
        code, report = _check(sis, secret="not-the-secret")
    assert code == 1
    details = _failures(report)["token_is_issued"]
    assert "401" in details and "refused the client id or secret" in details
    assert "not-the-secret" not in json.dumps(report)


def test_a_wrong_oauth1_secret_fails_with_the_401_and_what_to_fix() -> None:
    with running_provider(profile="generic-1.1", students=40) as sis:
        code, report = _check(sis, secret="not-the-secret")
    assert code == 1
    assert "signature was refused" in _failures(report)["teachers_can_be_listed"]


def test_a_missing_scope_fails_naming_the_scope() -> None:
    with running_provider(students=40, scopes=["roster.readonly", "gradebook.readonly"]) as sis:
        code, report = _check(sis, "--write-test")
    assert code == 1
    failures = _failures(report)
    createput = "https://purl.imsglobal.org/spec/or/v1p2/scope/gradebook.createput"
    assert createput in failures["token_is_issued"]
    assert "403" in failures["line_item_put_creates_201"]
    assert createput in failures["line_item_put_creates_201"]


def test_nothing_listening_fails_saying_so() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with running_provider(students=40) as sis:
        dead = RunningProvider(
            **{
                **{f: getattr(sis, f) for f in sis.__dataclass_fields__},
                "base_url": f"http://127.0.0.1:{port}/ims/oneroster",
                "token_url": f"http://127.0.0.1:{port}/oauth2/token",
            }
        )
        code, report = _check(dead)
    assert code == 1
    assert "nothing is listening" in _failures(report)["token_is_issued"]
    assert {c["status"] for c in report["checks"][1:]} == {"NOT RUN"}


def test_the_secret_must_come_from_the_environment() -> None:
    result = CliRunner().invoke(
        app,
        [
            "check-sis",
            "--base-url",
            "http://127.0.0.1:9/ims/oneroster",
            "--client-id",
            "x",
            "--client-secret-env",
            "CHECK_SIS_UNSET_VARIABLE",
            "--teacher-email",
            "t@example.org",
        ],
        env={},
    )
    assert result.exit_code == 2
    assert "CHECK_SIS_UNSET_VARIABLE is empty or not set" in result.output


def test_without_write_test_the_sis_is_only_read_and_the_report_card_is_printed() -> None:
    with running_provider(profile="generic-1.2", students=60) as sis:
        before = (sis.store.count("lineItem"), sis.store.count("result"))
        args = [
            "check-sis",
            "--base-url",
            sis.base_url,
            "--token-url",
            sis.token_url,
            "--client-id",
            sis.client_id,
            "--client-secret-env",
            "CHECK_SIS_SECRET",
            "--teacher-email",
            sis.teacher_email,
        ]
        result = CliRunner().invoke(app, args, env={"CHECK_SIS_SECRET": sis.client_secret})
        after = (sis.store.count("lineItem"), sis.store.count("result"))
    assert result.exit_code == 0, result.output
    assert after == before  # reads only: no lineItem or result was written
    card = " ".join(result.output.split())
    assert "teachers_can_be_listed" in card and "PASS" in card and "FAIL" not in card
    assert "line_item_put_creates_201" not in card  # the write checks need --write-test
    assert sis.client_secret not in result.output


def test_client_auth_post_reaches_a_sis_that_refuses_basic_and_basic_is_told_why() -> None:
    with running_provider(profile="generic-1.2", students=60, client_auth=["post"]) as sis:
        refused_code, refused = _check(sis)
        code, report = _check(sis, "--client-auth", "post", "--write-test")
    details = _failures(refused)["token_is_issued"]
    assert refused_code == 1 and "401" in details
    assert "does not take client credentials by HTTP Basic" in details
    assert "try again later" not in details.lower()
    assert code == 0 and report["passed"], _failures(report)


def test_client_auth_is_basic_or_post() -> None:
    with running_provider(profile="generic-1.2", students=20) as sis:
        result = CliRunner().invoke(
            app,
            [
                *("check-sis", "--base-url", sis.base_url, "--token-url", sis.token_url),
                *("--client-id", sis.client_id, "--client-secret-env", "S"),
                *("--teacher-email", sis.teacher_email, "--client-auth", "digest"),
            ],
            env={"S": sis.client_secret},
        )
    assert result.exit_code == 2 and "--client-auth is basic or post" in result.output
