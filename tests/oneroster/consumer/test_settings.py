"""Connection settings: what is checked when they are made, and what they never show."""

from __future__ import annotations

import pytest

from sislink.oneroster.consumer import (
    ConfigurationError,
    ConnectionSettings,
    OAuth1Settings,
    OAuth2Settings,
)
from sislink.oneroster.versions import Service

AUTH = OAuth2Settings(
    token_url="https://sis.example.org/token", client_id="id", client_secret="hunter2-secret"
)


def test_secrets_and_header_values_never_appear_in_repr() -> None:
    settings = ConnectionSettings(
        version="1.2",
        base_url="https://sis.example.org/ims/oneroster",
        auth=AUTH,
        gradebook_headers={"x-vendor-authorization": "vendor:vendor-secret"},
    )
    text = repr(settings)
    assert "hunter2-secret" not in text and "vendor-secret" not in text
    assert "hunter2" not in repr(OAuth1Settings(key="k", secret="hunter2"))


def test_unknown_version_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigurationError, match=r"use '1\.1' or '1\.2'"):
        ConnectionSettings(version="2.0", base_url="https://a.org/x", auth=AUTH)  # type: ignore[arg-type]


def test_a_base_url_that_is_not_a_web_address_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a web address"):
        ConnectionSettings(version="1.2", base_url="sis.example.org/ims", auth=AUTH)


def test_either_a_base_url_or_both_service_urls_is_needed() -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        ConnectionSettings(
            version="1.2",
            auth=AUTH,
            service_urls={"rostering": "https://a.org/ims/oneroster/rostering/v1p2"},
        )


def test_service_urls_place_each_service_and_hrefs_still_find_the_root() -> None:
    settings = ConnectionSettings(
        version="1.2",
        auth=AUTH,
        service_urls={
            "rostering": "https://a.org/campus/api/ims/oneroster/rostering/v1p2/",
            "gradebook": "https://a.org/campus/api/ims/oneroster/gradebook/v1p2",
        },
    )
    assert settings.service_url(Service.ROSTERING).endswith("/rostering/v1p2")
    assert settings.root_url == "https://a.org/campus/api/ims/oneroster"


def test_each_version_puts_its_services_below_the_root() -> None:
    v11 = ConnectionSettings(version="1.1", base_url="https://a.org/ims/oneroster/", auth=AUTH)
    v12 = ConnectionSettings(version="1.2", base_url="https://a.org/ims/oneroster", auth=AUTH)
    assert v11.service_url(Service.GRADEBOOK) == "https://a.org/ims/oneroster/v1p1"
    assert v12.service_url(Service.GRADEBOOK) == "https://a.org/ims/oneroster/gradebook/v1p2"


def test_short_scope_names_become_the_versions_uris() -> None:
    auth = OAuth2Settings(
        token_url="https://a.org/t",
        client_id="id",
        client_secret="s",
        scopes=("roster.readonly", "https://example.org/custom"),
    )
    settings = ConnectionSettings(version="1.1", base_url="https://a.org/x", auth=auth)
    assert settings.scope_string() == (
        "https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly https://example.org/custom"
    )


def test_limits_must_be_sensible() -> None:
    with pytest.raises(ConfigurationError, match="max_concurrency must be at least 1"):
        ConnectionSettings(version="1.2", base_url="https://a.org/x", auth=AUTH, max_concurrency=0)
    with pytest.raises(ConfigurationError, match="requests_per_second"):
        ConnectionSettings(
            version="1.2", base_url="https://a.org/x", auth=AUTH, requests_per_second=0
        )


def test_oauth_credentials_must_be_given() -> None:
    with pytest.raises(ConfigurationError, match="client secret"):
        OAuth2Settings(token_url="https://a.org/t", client_id="id", client_secret="")
    with pytest.raises(ConfigurationError, match="HMAC-SHA256 or HMAC-SHA1"):
        OAuth1Settings(key="k", secret="s", signature_method="PLAINTEXT")  # type: ignore[arg-type]


def test_bounds_come_from_the_environment_and_a_wrong_value_names_its_variable() -> None:
    from sislink.oneroster.consumer.settings import limits_from_environment

    limits = limits_from_environment(
        {"SISLINK_SIS_MAX_RECORDS": "2000000", "SISLINK_SIS_REQUEST_DEADLINE_S": "90.5"}
    )
    assert limits == {"max_records_per_collection": 2_000_000, "request_deadline_s": 90.5}
    settings = ConnectionSettings(version="1.2", base_url="https://a.org/x", auth=AUTH, **limits)
    assert settings.max_records_per_collection == 2_000_000
    with pytest.raises(ConfigurationError, match="SISLINK_SIS_MAX_PAGES must be a whole number"):
        limits_from_environment({"SISLINK_SIS_MAX_PAGES": "lots"})


def test_bounds_that_could_never_let_a_call_through_are_refused() -> None:
    for name, value in (
        ("max_records_per_collection", 0),
        ("request_deadline_s", 0.0),
        ("call_deadline_s", -1.0),
        ("max_response_bytes", 0),
        ("job_time_budget_s", 0.0),
    ):
        with pytest.raises(ConfigurationError, match=name):
            ConnectionSettings(
                version="1.2", base_url="https://a.org/x", auth=AUTH, **{name: value}
            )
