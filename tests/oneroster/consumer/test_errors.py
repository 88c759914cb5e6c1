"""Error answers become typed exceptions that say what to do, read from every imsx variant,
and never carry a secret."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sislink.oneroster.consumer import (
    AuthenticationFailed,
    BadRequest,
    ConnectionSettings,
    InvalidData,
    NotFound,
    OneRosterClient,
    PermissionDenied,
    ServerError,
)

ROOT = "http://127.0.0.1:9/ims/oneroster/rostering/v1p2"

IMSX_VARIANTS: list[Any] = [
    {  # 1.2 as the OpenAPI writes it
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_description": "bad field",
        "imsx_CodeMinor": {
            "imsx_codeMinorField": [
                {
                    "imsx_codeMinorFieldName": "TargetEndSystem",
                    "imsx_codeMinorFieldValue": "invalid_filter_field",
                }
            ]
        },
    },
    {  # wrapped in imsx_StatusInfo
        "imsx_StatusInfo": {
            "imsx_codeMajor": "failure",
            "imsx_severity": "error",
            "imsx_description": "bad field",
            "imsx_CodeMinor": "invalid_filter_field",
        }
    },
    {  # one minor field object instead of a list
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_description": "bad field",
        "imsx_CodeMinor": {
            "imsx_codeMinorField": {"imsx_codeMinorFieldValue": "invalid_filter_field"}
        },
    },
    {  # 1.1 statusInfoSet
        "statusInfoSet": [
            {
                "imsx_codeMajor": "failure",
                "imsx_severity": "error",
                "imsx_description": "bad field",
                "imsx_CodeMinor": {
                    "imsx_codeMinorField": [{"imsx_codeMinorFieldValue": "invalid_filter_field"}]
                },
            }
        ]
    },
]


def _response(status: int, body: Any, path: str = "/teachers") -> httpx.Response:
    request = httpx.Request(
        "GET", ROOT + path + "?filter=x", headers={"Authorization": "Bearer tok-SECRET"}
    )
    return httpx.Response(status, json=body, request=request)


@pytest.mark.parametrize("body", IMSX_VARIANTS)
def test_every_imsx_variant_is_read_into_the_error(
    body: Any, oauth2_settings: ConnectionSettings
) -> None:
    error = OneRosterClient(oauth2_settings).error_for(_response(400, body))
    assert isinstance(error, BadRequest)
    assert (error.status_code, error.code_major, error.code_minor) == (
        400,
        "failure",
        "invalid_filter_field",
    )
    assert error.description == "bad field"
    assert (error.method, error.path) == ("GET", "/ims/oneroster/rostering/v1p2/teachers")
    assert "invalid_filter_field" in str(error)


def test_a_forbidden_call_names_the_scope_it_needs(oauth2_settings: ConnectionSettings) -> None:
    client = OneRosterClient(oauth2_settings)
    error = client.error_for(_response(403, {}), client.spec.endpoint("teachers"))
    assert isinstance(error, PermissionDenied)
    assert error.missing_scope is not None
    assert "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly" in error.missing_scope
    assert error.missing_scope in str(error)


def test_a_404_without_unknownobject_points_at_the_base_url(
    oauth2_settings: ConnectionSettings,
) -> None:
    error = OneRosterClient(oauth2_settings).error_for(_response(404, {"detail": "Not Found"}))
    assert isinstance(error, NotFound)
    assert "Check the base URL" in str(error)


def test_a_404_unknownobject_says_the_object_is_unknown(
    oauth2_settings: ConnectionSettings,
) -> None:
    body = {"imsx_codeMajor": "failure", "imsx_CodeMinor": "unknownobject"}
    error = OneRosterClient(oauth2_settings).error_for(_response(404, body, "/classes/x"))
    assert isinstance(error, NotFound)
    assert "no such object" in str(error) and error.code_minor == "unknownobject"


def test_invaliddata_is_its_own_error(oauth2_settings: ConnectionSettings) -> None:
    body = {
        "imsx_codeMajor": "failure",
        "imsx_CodeMinor": "invaliddata",
        "imsx_description": "score",
    }
    client = OneRosterClient(oauth2_settings)
    assert isinstance(client.error_for(_response(400, body)), InvalidData)
    assert isinstance(client.error_for(_response(422, body)), InvalidData)


def test_a_gradebook_401_mentions_the_vendor_header(oauth2_settings: ConnectionSettings) -> None:
    client = OneRosterClient(oauth2_settings)
    error = client.error_for(_response(401, {}), client.spec.endpoint("line_item"), refreshed=True)
    assert isinstance(error, AuthenticationFailed)
    assert "x-vendor-authorization" in str(error) and "even after renewing" in str(error)


def test_an_oauth1_401_points_at_key_secret_and_clock(oauth1_settings: ConnectionSettings) -> None:
    error = OneRosterClient(oauth1_settings).error_for(_response(401, {}))
    assert "signature was refused" in str(error) and "clock" in str(error)


def test_errors_never_carry_secrets_tokens_or_query_strings(
    oauth2_settings: ConnectionSettings,
) -> None:
    client = OneRosterClient(oauth2_settings)
    for status in (400, 401, 403, 404, 422, 429, 500, 503):
        error = client.error_for(_response(status, {}), client.spec.endpoint("teachers"))
        text = f"{error} {error!r} {vars(error)}"
        assert "SECRET" not in text and "s3cret-test" not in text
        assert "filter=x" not in text
    assert isinstance(client.error_for(_response(503, {})), ServerError)
