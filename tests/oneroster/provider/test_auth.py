"""Who may call the built-in SIS: tokens, OAuth 1.0a signatures, expiry, scopes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from oauthlib.oauth1 import SIGNATURE_HMAC_SHA1, SIGNATURE_HMAC_SHA256
from oauthlib.oauth1 import Client as OAuth1Client

from sislink.oneroster.provider.profiles import profile_named
from sislink.oneroster.provider.server import RunningProvider, build_config, running_provider

ROSTER = "rostering/v1p2"


@pytest.fixture(scope="module")
def sis_1_1() -> Iterator[RunningProvider]:
    with running_provider(profile="generic-1.1", students=60) as running:
        yield running


def _signed_get(
    sis: RunningProvider,
    path: str,
    params: dict[str, Any],
    *,
    method: str = SIGNATURE_HMAC_SHA256,
    **client: Any,
) -> httpx.Response:
    url = str(httpx.URL(sis.url(path), params=params))
    signer = OAuth1Client(
        sis.client_id,
        client_secret=client.pop("secret", sis.client_secret),
        signature_method=method,
        **client,
    )
    signed_url, headers, _ = signer.sign(url, http_method="GET")
    return httpx.get(signed_url, headers=headers)


@pytest.mark.parametrize("method", [SIGNATURE_HMAC_SHA256, SIGNATURE_HMAC_SHA1])
def test_oauth1_signature_covers_a_query_with_spaces_and_quotes(
    sis_1_1: RunningProvider, method: str
) -> None:
    response = _signed_get(
        sis_1_1,
        "v1p1/users",
        {"filter": "familyName~'a' AND role='student'", "limit": 3, "offset": 1},
        method=method,
    )
    assert response.status_code == 200, response.text
    users = response.json()["users"]
    assert len(users) == 3 and all(u["role"] == "student" for u in users)


def test_oauth1_with_a_wrong_secret_is_refused(sis_1_1: RunningProvider) -> None:
    response = _signed_get(sis_1_1, "v1p1/users", {"limit": 1}, secret="wrong")
    assert response.status_code == 401
    assert "signature does not match" in response.json()["imsx_description"]


def test_oauth1_replayed_nonce_is_refused(sis_1_1: RunningProvider) -> None:
    stamp = str(int(time.time()))
    first = _signed_get(sis_1_1, "v1p1/orgs", {}, nonce="n-once-only", timestamp=stamp)
    again = _signed_get(sis_1_1, "v1p1/orgs", {}, nonce="n-once-only", timestamp=stamp)
    assert first.status_code == 200
    assert again.status_code == 401 and "nonce" in again.json()["imsx_description"]


def test_oauth1_stale_timestamp_is_refused(sis_1_1: RunningProvider) -> None:
    response = _signed_get(sis_1_1, "v1p1/orgs", {}, timestamp=str(int(time.time()) - 3600))
    assert response.status_code == 401
    assert "clock" in response.json()["imsx_description"]


def test_wrong_client_secret_gets_no_token(provider: RunningProvider) -> None:
    response = httpx.post(
        provider.token_url,
        auth=(provider.client_id, "nope"),
        data={"grant_type": "client_credentials"},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_credentials_in_the_form_body_are_accepted(provider: RunningProvider) -> None:
    response = httpx.post(
        provider.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": provider.client_id,
            "client_secret": provider.client_secret,
        },
    )
    assert response.status_code == 200 and response.json()["token_type"] == "Bearer"


def test_no_token_and_an_unknown_token_are_refused(provider: RunningProvider) -> None:
    assert httpx.get(provider.url(f"{ROSTER}/orgs")).status_code == 401
    response = httpx.get(
        provider.url(f"{ROSTER}/orgs"), headers={"Authorization": "Bearer made-up"}
    )
    assert (
        response.status_code == 401
        and response.json()["imsx_CodeMinor"]["imsx_codeMinorField"][0]["imsx_codeMinorFieldValue"]
        == "unauthorisedrequest"
    )


def test_a_token_expires_mid_run(fetch_token: Any) -> None:
    with running_provider(students=40, token_ttl_s=1) as sis:
        headers = {"Authorization": f"Bearer {fetch_token(sis)}"}
        assert httpx.get(sis.url(f"{ROSTER}/orgs"), headers=headers).status_code == 200
        time.sleep(1.2)
        response = httpx.get(sis.url(f"{ROSTER}/orgs"), headers=headers)
        assert response.status_code == 401 and "expired" in response.json()["imsx_description"]


def test_a_missing_scope_is_403_naming_the_scope(
    provider: RunningProvider, fetch_token: Any
) -> None:
    headers = {"Authorization": f"Bearer {fetch_token(provider, ('roster.readonly',))}"}
    assert httpx.get(provider.url(f"{ROSTER}/orgs"), headers=headers).status_code == 200
    response = httpx.delete(provider.url("gradebook/v1p2/lineItems/x"), headers=headers)
    assert response.status_code == 403
    assert (
        "https://purl.imsglobal.org/spec/or/v1p2/scope/gradebook.delete"
        in response.json()["imsx_description"]
    )


def test_a_client_limited_to_reading_rosters_is_not_granted_gradebook_scopes(
    fetch_token: Any,
) -> None:
    with running_provider(students=40, scopes=["roster.readonly"]) as sis:
        token = fetch_token(sis, ("roster.readonly", "gradebook.readonly"))
        response = httpx.get(
            sis.url("gradebook/v1p2/categories"), headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 403


def test_1_1_scope_uris_are_understood(sis_1_1: RunningProvider, fetch_token: Any) -> None:
    token = fetch_token(sis_1_1, ("roster.readonly",), version="1.1")
    response = httpx.get(sis_1_1.url("v1p1/orgs"), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("accepted", "refused_way", "said"),
    [
        ("post", "basic", "does not take client credentials by HTTP Basic"),
        ("basic", "post", "does not take client credentials in the form body"),
    ],
)
def test_a_sis_told_to_take_one_client_authentication_refuses_the_other(
    accepted: str, refused_way: str, said: str
) -> None:
    with running_provider(students=20, client_auth=[accepted]) as sis:
        assert sis.client_auth == (accepted,)
        form = {"grant_type": "client_credentials"}
        credentials = {"client_id": sis.client_id, "client_secret": sis.client_secret}
        basic = httpx.post(sis.token_url, auth=(sis.client_id, sis.client_secret), data=form)
        posted = httpx.post(sis.token_url, data={**form, **credentials})
    refused, taken = (basic, posted) if refused_way == "basic" else (posted, basic)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert said in refused.json()["error_description"]
    assert taken.status_code == 200 and taken.json()["access_token"]


def test_client_authentication_must_be_basic_or_post() -> None:
    with pytest.raises(ValueError, match="basic, post or both"):
        build_config(
            profile_named("generic-1.2"), client_id="a", client_secret="b", client_auth=["digest"]
        )
