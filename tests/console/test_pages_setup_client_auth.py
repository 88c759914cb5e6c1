"""The SIS setup page asks how the token request sends the access key and secret (HTTP Basic
or the form body): a SIS that refuses Basic is reached by choosing the form body, and the page
says which was sent when the SIS refuses it."""

from __future__ import annotations

from pathlib import Path

from console.console_world import ADMIN_EMAIL, console
from sislink.oneroster.provider.server import running_provider


def test_choosing_the_form_body_reaches_a_sis_that_refuses_basic(tmp_path: Path) -> None:
    with running_provider(students=20, client_auth=["post"]) as sis, console(tmp_path) as served:
        admin = served.client()
        admin.sign_in(ADMIN_EMAIL)
        chosen = admin.get("/admin/sis?sis=generic-1.2")
        assert 'name="client_auth"' in chosen.text
        assert '<option value="basic" selected>' in chosen.text  # the profile's way
        form = {
            "sis": "generic-1.2",
            "host_url": sis.host_url,
            "token_url": sis.token_url,
            "access_key": sis.client_id,
            "secret_code": sis.client_secret,
            "insecure": "on",
        }
        admin.post("/admin/sis/connect", {**form, "client_auth": "basic"})
        refused = admin.post("/admin/sis/authorise")
        assert refused.status_code == 422
        assert "does not take client credentials by HTTP Basic" in refused.text
        assert "try again later" not in refused.text.lower()
        saved = admin.post("/admin/sis/connect", {**form, "client_auth": "post"})
        assert saved.status_code == 200, saved.text
        authorised = admin.post("/admin/sis/authorise")
        assert authorised.status_code == 200 and "Authorised" in authorised.text
        assert sis.client_secret not in authorised.text
