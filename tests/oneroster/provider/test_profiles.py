"""Each vendor profile reproduces its SIS's quirk, so a consumer is tested against it."""

from __future__ import annotations

import httpx

from sislink.oneroster.provider.server import running_provider

SCOPE_1_1 = "https://purl.imsglobal.org/spec/or/v1p1/scope/"


def _token(sis: object, **data: str) -> httpx.Response:
    return httpx.post(
        sis.token_url,  # type: ignore[attr-defined]
        auth=(sis.client_id, sis.client_secret),  # type: ignore[attr-defined]
        data={"grant_type": "client_credentials", **data},
    )


def test_infinite_campus_gradebook_without_vendor_header_is_refused() -> None:
    with running_provider(profile="infinite-campus", students=40) as sis:
        assert sis.base_url.endswith("/campus/api/ims/oneroster")
        assert "/campus/oauth2/token?appName=" in sis.token_url
        headers = {"Authorization": f"Bearer {_token(sis).json()['access_token']}"}
        assert httpx.get(sis.url("rostering/v1p2/classes"), headers=headers).status_code == 200
        refused = httpx.get(sis.url("gradebook/v1p2/categories"), headers=headers)
        assert (
            refused.status_code == 401
            and "x-vendor-authorization" in refused.json()["imsx_description"]
        )
        allowed = httpx.get(
            sis.url("gradebook/v1p2/categories"), headers={**headers, **sis.extra_headers}
        )
        assert allowed.status_code == 200


def test_infinite_campus_token_url_needs_the_app_name() -> None:
    with running_provider(profile="infinite-campus", students=40) as sis:
        bare = sis.token_url.split("?")[0]
        response = httpx.post(
            bare, auth=(sis.client_id, sis.client_secret), data={"grant_type": "client_credentials"}
        )
        assert response.status_code == 400 and "appName" in response.json()["error_description"]


def test_aeries_needs_a_scope_and_the_affinity_cookie() -> None:
    with running_provider(profile="aeries", students=40) as sis:
        assert sis.host_url.endswith("/aeries") and sis.token_url == sis.host_url + "/token"
        assert _token(sis).status_code == 400  # no scope
        response = _token(sis, scope=SCOPE_1_1 + "roster.readonly")
        assert response.status_code == 200 and "AWSALB" in response.cookies
        headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        without = httpx.get(sis.url("v1p1/teachers"), headers=headers)
        assert without.status_code == 401 and "AWSALB" in without.json()["imsx_description"]
        with_cookie = httpx.get(sis.url("v1p1/teachers"), headers=headers, cookies=response.cookies)
        assert with_cookie.status_code == 200
        assert all(t["sourcedId"].startswith("TCH_") for t in with_cookie.json()["users"])


def test_skyward_files_a_line_item_without_category_under_assignments() -> None:
    with running_provider(profile="skyward", students=40) as sis:
        assert sis.base_url.endswith("/api/ims/oneroster") and sis.version == "1.1"
        headers = {"Authorization": f"Bearer {_token(sis).json()['access_token']}"}
        client = httpx.Client(headers=headers)
        klass = client.get(sis.url("v1p1/classes"), params={"limit": 1}).json()["classes"][0]
        period = client.get(sis.url("v1p1/gradingPeriods"), params={"limit": 1}).json()[
            "academicSessions"
        ][0]
        body = {
            "lineItem": {
                "title": "Lab",
                "assignDate": "2026-09-01",
                "dueDate": "2026-09-02",
                "class": {"sourcedId": klass["sourcedId"]},
                "gradingPeriod": {"sourcedId": period["sourcedId"]},
            }
        }
        response = client.put(sis.url("v1p1/lineItems/li-1"), json=body)
        assert response.status_code == 201, response.text
        category_id = response.json()["lineItem"]["category"]["sourcedId"]
        category = client.get(sis.url(f"v1p1/categories/{category_id}")).json()["category"]
        assert category["title"] == "Assignments"


def test_a_generic_1_2_line_item_without_category_is_refused_naming_the_field() -> None:
    with running_provider(profile="generic-1.2", students=40) as sis:
        headers = {"Authorization": f"Bearer {_token(sis).json()['access_token']}"}
        klass = httpx.get(
            sis.url("rostering/v1p2/classes"), params={"limit": 1}, headers=headers
        ).json()["classes"][0]
        body = {
            "lineItem": {
                "title": "Lab",
                "assignDate": "2026-09-01",
                "dueDate": "2026-09-02",
                "class": {"sourcedId": klass["sourcedId"]},
                "school": klass["school"],
            }
        }
        response = httpx.put(sis.url("gradebook/v1p2/lineItems/li-1"), json=body, headers=headers)
        assert (
            response.status_code == 400
            and "lineItem.category" in response.json()["imsx_description"]
        )
        assert sis.store.get("lineItem", "li-1") is None


def test_aspen_is_oauth2_with_a_client_identifier_and_secret() -> None:
    with running_provider(profile="aspen", students=40) as sis:
        assert sis.auth_kinds == ("oauth2",)
        token = _token(sis).json()["access_token"]
        assert (
            httpx.get(
                sis.url("v1p1/orgs"), headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 200
        )
        assert (
            httpx.get(
                sis.url("v1p1/orgs"), headers={"Authorization": 'OAuth oauth_consumer_key="x"'}
            ).status_code
            == 401
        )
