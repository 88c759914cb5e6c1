"""Item 2 of issue 17: a next link or a redirect never takes the token elsewhere. A second
server on another loopback port (the bystander) records anything that reaches it."""

from __future__ import annotations

import pytest

from hostile.hostile_sis import ACCESS_TOKEN, HostileSIS, next_link_to, redirect_to
from sislink.oneroster.consumer import OneRosterClient, StatusError
from sislink.oneroster.consumer.exceptions import ForeignAddress

pytestmark = pytest.mark.anyio

USERS = "/ims/oneroster/rostering/v1p2/users"


async def _read_users(sis: HostileSIS) -> None:
    async with OneRosterClient(sis.settings()) as client:
        async for _ in client.iter_records("users"):
            pass


async def test_a_next_link_to_another_port_is_refused_and_that_server_hears_nothing(
    bystander: HostileSIS,
) -> None:
    elsewhere = f"{bystander.origin}{USERS}?offset=2"
    with HostileSIS(next_link_to(elsewhere)) as sis, pytest.raises(ForeignAddress) as caught:
        await _read_users(sis)
    message = str(caught.value)
    assert f"{bystander.origin}{USERS}" in message
    assert "not under the SIS's address" in message and sis.base_url in message
    assert "offset=2" not in message  # the query of a hostile link is not repeated
    assert bystander.received == []
    assert all(r.headers.get("authorization") == f"Bearer {ACCESS_TOKEN}" for r in sis.calls())


@pytest.mark.parametrize(
    "path",
    [
        "/admin/users?offset=2",
        "/ims/oneroster/../../admin/users",
        "/elsewhere",
        "/ims/oneroster/%2e%2e/%2e%2e/admin",
        "/ims/oneroster/%2E%2E/admin/users",
        "/ims/oneroster/%252e%252e/admin/users",
        "/ims/oneroster/.%2e/admin/users",
        "/ims/oneroster/rostering%2f..%2f..%2fadmin",
        "/ims/oneroster/..%5c..%5cadmin",
        "/ims/oneroster/..\\..\\admin",
    ],
)
async def test_a_next_link_on_the_same_origin_but_outside_the_base_path_is_refused(
    path: str,
) -> None:
    with HostileSIS(next_link_to(path)) as sis, pytest.raises(ForeignAddress):
        await _read_users(sis)
    assert [r.path for r in sis.calls()] == [USERS]


async def test_a_redirect_to_another_origin_is_not_followed_and_carries_no_token_there(
    bystander: HostileSIS,
) -> None:
    target = f"{bystander.origin}{USERS}"
    with HostileSIS(redirect_to(target)) as sis, pytest.raises(StatusError) as caught:
        await _read_users(sis)
    assert caught.value.status_code == 302
    assert "follows no redirect" in str(caught.value) and target in str(caught.value)
    assert bystander.received == []


async def test_a_request_to_an_address_that_is_not_the_sis_is_refused_before_it_is_sent(
    bystander: HostileSIS,
) -> None:
    """The guard under every call, next links aside: `get` by a path is resolved under the
    SIS's root, and a URL built by hand for another origin is refused before any byte goes."""
    with HostileSIS(next_link_to("/x")) as sis:
        async with OneRosterClient(sis.settings()) as client:
            request = client._client.build_request("GET", f"{bystander.origin}{USERS}")
            with pytest.raises(ForeignAddress, match="is not the SIS's address"):
                client._refuse_foreign(request)
            with pytest.raises(ForeignAddress):
                await client._send("GET", f"{bystander.origin}{USERS}", endpoint=None)
    assert bystander.received == []
