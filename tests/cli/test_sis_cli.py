"""`sislink sis serve`'s fault options: 500s, 503s and answers dropped after the SIS acted reach
the server as given; rates outside 0..1, or adding up past 1, are refused with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import httpx
from typer.testing import CliRunner

from sislink.cli import app

SECRET = "very-secret-value"


def _serve(*options: str) -> tuple[int, str]:
    """`sis serve` with these options, in process: its exit code and what it printed. (Only for
    options it refuses: it refuses them before it serves anything.)"""
    result = CliRunner().invoke(
        app,
        ["sis", "serve", "--port", "0", "--students", "10", *options],
        env={"SISLINK_SIS_CLIENT_SECRET": SECRET},
    )
    return result.exit_code, result.output


def test_sis_serve_refuses_a_fault_rate_outside_0_to_1() -> None:
    for option, value in (
        ("--rate-503", "1.5"),
        ("--rate-500", "-0.1"),
        ("--drop-after-rate", "2"),
    ):
        code, output = _serve(option, value)
        assert code == 2, output
        assert option in output and "Traceback" not in output


def test_sis_serve_refuses_fault_rates_that_add_up_past_1_naming_the_options() -> None:
    code, output = _serve("--rate-500", "0.5", "--rate-503", "0.4", "--drop-after-rate", "0.2")
    assert code == 2
    assert "error:" in output and "must not exceed 1" in output
    assert "--rate-500" in output and "--drop-after-rate" in output
    assert "rate_500" not in output and "Traceback" not in output


def test_sis_serve_answers_500_503_or_drops_the_answer_at_the_rates_given() -> None:
    env = {**os.environ, "SISLINK_SIS_CLIENT_SECRET": SECRET}
    process = subprocess.Popen(
        [
            *(sys.executable, "-c", "from sislink.cli import main; main()", "sis", "serve"),
            *("--port", "0", "--students", "30", "--client-id", "cli-test"),
            *("--rate-500", "0.1", "--rate-503", "0.3", "--drop-after-rate", "0.6"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        values = dict(process.stdout.readline().strip().split(": ", 1) for _ in range(5))
        token = _token(values["token_url"])  # the token endpoint is not an API call: no fault
        seen: Counter[str] = Counter()
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
            for _ in range(60):
                try:
                    seen[str(client.get(f"{values['base_url']}/orgs").status_code)] += 1
                except httpx.RemoteProtocolError:
                    seen["dropped"] += 1
    finally:
        process.terminate()
        process.communicate(timeout=10)
    # Every call met a fault (the three rates add up to 1), each in about its share.
    assert set(seen) == {"500", "503", "dropped"}, seen
    assert seen["500"] < seen["503"] < seen["dropped"], seen


def _token(token_url: str) -> str:
    for _ in range(50):
        try:
            response = httpx.post(
                token_url,
                auth=("cli-test", SECRET),
                data={"grant_type": "client_credentials"},
            )
        except httpx.ConnectError:
            time.sleep(0.1)  # the server prints its URLs just before it listens
            continue
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])
    raise AssertionError(f"the SIS never answered at {token_url}")


def _serving(*options: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-c", "from sislink.cli import main; main()", "sis", "serve"),
            *("--port", "0", "--students", "20", "--client-id", "cli-test", *options),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "SISLINK_SIS_CLIENT_SECRET": SECRET, **(env or {})},
    )


def _printed(process: subprocess.Popen[str], lines: int) -> dict[str, str]:
    assert process.stdout is not None
    return dict(process.stdout.readline().strip().split(": ", 1) for _ in range(lines))


def test_sis_serve_infinite_campus_prints_the_vendor_key_it_expects_and_takes_one() -> None:
    process = _serving("--profile", "infinite-campus")
    try:
        printed = _printed(process, 6)
    finally:
        process.terminate()
        process.communicate(timeout=10)
    shown = printed["vendor_key"]
    assert shown.startswith("sislink-vendor:") and "x-vendor-authorization" in shown

    chosen = "district-key:district-vendor-secret"
    process = _serving("--profile", "infinite-campus", env={"SISLINK_SIS_VENDOR_KEY": chosen})
    try:
        printed = _printed(process, 6)
        token = _token(printed["token_url"])
        line_items = f"{printed['base_url']}/gradebook/v1p2/lineItems"
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(headers=headers) as client:
            wrong = client.get(line_items, headers={"x-vendor-authorization": "sislink-vendor:x"})
            right = client.get(line_items, headers={"x-vendor-authorization": chosen})
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert printed["vendor_key"].startswith("district-key:...")
    assert "district-vendor-secret" not in "".join(printed.values()) + output
    assert (wrong.status_code, right.status_code) == (401, 200)


def test_sis_serve_can_take_client_credentials_only_in_the_form_body() -> None:
    process = _serving("--client-auth", "post")
    try:
        printed = _printed(process, 5)
        _token_by_form(printed["token_url"])
        basic = httpx.post(
            printed["token_url"],
            auth=("cli-test", SECRET),
            data={"grant_type": "client_credentials"},
        )
    finally:
        process.terminate()
        process.communicate(timeout=10)
    assert basic.status_code == 401 and "HTTP Basic" in basic.json()["error_description"]


def test_sis_serve_refuses_an_unknown_client_authentication() -> None:
    code, output = _serve("--client-auth", "digest")
    assert code == 2 and "--client-auth is basic, post or both" in output


def _token_by_form(token_url: str) -> str:
    form = {"grant_type": "client_credentials", "client_id": "cli-test", "client_secret": SECRET}
    for _ in range(50):
        try:
            response = httpx.post(token_url, data=form)
        except httpx.ConnectError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])
    raise AssertionError(f"the SIS never answered at {token_url}")
