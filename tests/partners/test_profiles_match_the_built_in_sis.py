"""The Host URL that `sislink sis serve` prints works as is: each partner profile derives the
same OneRoster root and token URL that the built-in SIS serves for that vendor."""

from __future__ import annotations

import pytest

from sislink.oneroster.provider.profiles import PROFILES, profile_named
from sislink.partners import derive_urls, profile

ORIGIN = "http://127.0.0.1:8100"


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_the_printed_host_url_derives_the_served_urls(name: str) -> None:
    served = profile_named(name)
    partner = profile(name)
    urls = derive_urls(partner, served.host_url(ORIGIN))
    assert urls.root_url == served.base_url(ORIGIN)
    if partner.token_url is not None:
        assert urls.token_url == served.token_url(ORIGIN)
    assert partner.oneroster_version == served.version.value


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_partner_and_built_in_sis_agree_on_quirks(name: str) -> None:
    served = profile_named(name)
    partner = profile(name)
    assert partner.staff_id_prefix == served.staff_id_prefix
    assert partner.default_category == served.default_category
    assert partner.scope_required == served.scope_required
    assert partner.keep_cookies == (served.affinity_cookie is not None)
    assert partner.auth in served.auth_kinds
    headers = {h.name for h in partner.extra_headers}
    assert headers == ({served.gradebook_header} if served.gradebook_header else set())
    if partner.auth == "oauth2":  # the token request sends the credentials a way the SIS takes
        assert partner.client_auth in served.client_auth
    assert served.versions == (served.version,)  # a 1.1 SIS answers 404 on the 1.2 paths
