"""The Host URL an administrator types: checked before any call, mistakes recognised."""

from __future__ import annotations

import pytest

from sislink.partners import HostUrlProblem, UrlPolicy, derive_urls, normalise_host_url, profile


def test_trailing_slashes_and_case_are_normalised() -> None:
    assert normalise_host_url("  HTTPS://SIS.Example.org//district/ ") == (
        "https://sis.example.org/district"
    )


def test_plain_http_is_refused_with_the_https_address() -> None:
    with pytest.raises(HostUrlProblem) as caught:
        normalise_host_url("http://sis.example.org")
    assert "must use https" in caught.value.message
    assert caught.value.suggestion == "https://sis.example.org"


def test_plain_http_is_allowed_on_loopback() -> None:
    assert normalise_host_url("http://127.0.0.1:8100/") == "http://127.0.0.1:8100"
    assert normalise_host_url("http://localhost:8100") == "http://localhost:8100"


def test_plain_http_is_allowed_with_the_insecure_flag() -> None:
    policy = UrlPolicy(allow_insecure=True)
    assert normalise_host_url("http://sis.example.org", policy) == "http://sis.example.org"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://10.1.2.3", "private"),
        ("https://192.168.0.10:8443", "private"),
        ("https://169.254.169.254", "link-local"),
    ],
)
def test_private_and_link_local_addresses_are_refused_unless_allowed(url: str, kind: str) -> None:
    with pytest.raises(HostUrlProblem, match=kind):
        normalise_host_url(url)
    assert normalise_host_url(url, UrlPolicy(allow_private=True)) == url


def test_an_address_without_a_scheme_gets_an_https_suggestion() -> None:
    with pytest.raises(HostUrlProblem) as caught:
        normalise_host_url("sis.example.org")
    assert caught.value.suggestion == "https://sis.example.org"


def test_an_empty_host_url_says_what_to_paste() -> None:
    with pytest.raises(HostUrlProblem, match="empty"):
        normalise_host_url("   ")


def test_generic_root_and_token_follow_the_host_url() -> None:
    urls = derive_urls(profile("powerschool"), "https://district.powerschool.com/")
    assert urls.root_url == "https://district.powerschool.com/ims/oneroster"
    assert urls.token_url == "https://district.powerschool.com/oauth/access_token"


def test_generic_profile_has_no_token_url_to_derive() -> None:
    assert derive_urls(profile("generic-1.2"), "https://sis.example.org").token_url is None


def test_a_url_that_already_ends_in_the_oneroster_path_is_recognised() -> None:
    with pytest.raises(HostUrlProblem) as caught:
        derive_urls(profile("generic-1.2"), "https://sis.example.org/ims/oneroster/rostering/v1p2/")
    assert caught.value.suggestion == "https://sis.example.org"


def test_a_1_1_path_given_for_a_1_2_profile_is_recognised() -> None:
    with pytest.raises(HostUrlProblem, match=r"OneRoster 1\.1 address"):
        derive_urls(profile("generic-1.2"), "https://sis.example.org/ims/oneroster/v1p1")


def test_a_skyward_application_url_without_the_api_path_gets_the_full_address() -> None:
    with pytest.raises(HostUrlProblem) as caught:
        derive_urls(profile("skyward"), "https://esdemo1.skyward.com/")
    assert caught.value.suggestion == "https://esdemo1.skyward.com/api/ims/oneroster/v1p1/"


def test_a_skyward_url_with_the_api_path_gives_its_oneroster_root() -> None:
    urls = derive_urls(profile("skyward"), "https://esdemo1.skyward.com/api/ims/oneroster/v1p1/")
    assert urls.host_url == "https://esdemo1.skyward.com/api/ims/oneroster/v1p1"
    assert urls.root_url == "https://esdemo1.skyward.com/api/ims/oneroster"


def test_a_skyward_url_that_goes_past_the_api_path_is_cut_back() -> None:
    with pytest.raises(HostUrlProblem) as caught:
        derive_urls(profile("skyward"), "https://esdemo1.skyward.com/api/ims/oneroster/v1p1/users")
    assert caught.value.suggestion == "https://esdemo1.skyward.com/api/ims/oneroster/v1p1"


def test_infinite_campus_token_url_carries_the_app_name() -> None:
    urls = derive_urls(
        profile("infinite-campus"), "https://district.infinitecampus.org/campus?appName=district"
    )
    assert urls.root_url == "https://district.infinitecampus.org/campus/api/ims/oneroster"
    assert urls.token_url == (
        "https://district.infinitecampus.org/campus/oauth2/token?appName=district"
    )


def test_infinite_campus_without_an_app_name_says_how_to_add_it() -> None:
    with pytest.raises(HostUrlProblem, match=r"\?appName="):
        derive_urls(profile("infinite-campus"), "https://district.infinitecampus.org/campus")


def test_aeries_root_and_token_hang_from_the_aeries_path() -> None:
    urls = derive_urls(profile("aeries"), "https://district.aeries.net/aeries/")
    assert urls.root_url == "https://district.aeries.net/aeries/ims/oneroster"
    assert urls.token_url == "https://district.aeries.net/aeries/token"


@pytest.mark.parametrize(
    "typed",
    [
        "https://ada:s3cret-pw@sis.example.org/district",
        "https://ada@sis.example.org",
        "ada:s3cret-pw@sis.example.org/district",
        "http://ada:s3cret-pw@sis.example.org",
    ],
)
def test_a_user_name_or_password_in_the_host_url_is_refused_without_repeating_it(
    typed: str,
) -> None:
    with pytest.raises(HostUrlProblem) as caught:
        normalise_host_url(typed)
    assert "holds a user name or password" in caught.value.message
    assert "s3cret-pw" not in str(caught.value) and "ada" not in str(caught.value)
    assert caught.value.suggestion is not None
    assert caught.value.suggestion.startswith(("https://sis.example.org", "http://sis.example.org"))


def test_an_at_sign_after_the_host_is_not_taken_for_a_user_name() -> None:
    assert normalise_host_url("https://sis.example.org/people/@district") == (
        "https://sis.example.org/people/@district"
    )
