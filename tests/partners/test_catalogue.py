"""The SIS catalogue is data: every profile loads, and a broken one says which file and field."""

from __future__ import annotations

import pytest

from sislink.partners import ProfileError, UnknownPartner, catalogue, profile
from sislink.partners.catalogue import profile_from_toml

EXPECTED = {
    "generic-1.1",
    "generic-1.2",
    "infinite-campus",
    "skyward",
    "aspen",
    "aeries",
    "capita-sims",
    "powerschool",
}


def test_every_sis_of_the_catalogue_has_a_profile() -> None:
    assert set(catalogue()) == EXPECTED


def test_every_profile_has_setup_steps_and_labels() -> None:
    for item in catalogue().values():
        assert item.setup_steps, item.name
        assert item.labels.host_url and item.labels.access_key and item.labels.secret_code


def test_capita_sims_says_contact_your_sis() -> None:
    assert profile("capita-sims").partnership_words == "Contact your SIS to learn more"


def test_an_unknown_sis_lists_the_choices() -> None:
    with pytest.raises(UnknownPartner, match="skyward"):
        profile("blackboard")


def test_a_profile_missing_a_field_names_the_file_and_field() -> None:
    with pytest.raises(ProfileError, match=r"profiles/x\.toml: the field 'auth' is missing"):
        profile_from_toml(
            'name = "x"\ndisplay_name = "X"\noneroster_version = "1.2"\n', "profiles/x.toml"
        )


def test_a_profile_with_a_wrong_version_says_what_is_allowed() -> None:
    text = 'name="x"\ndisplay_name="X"\noneroster_version="2.0"\nauth="oauth2"\n'
    with pytest.raises(ProfileError, match=r"must be \"1.1\" or \"1.2\""):
        profile_from_toml(text, "profiles/x.toml")


def test_broken_toml_is_reported_with_its_file() -> None:
    with pytest.raises(ProfileError, match=r"profiles/x\.toml: not valid TOML"):
        profile_from_toml("name = ", "profiles/x.toml")
