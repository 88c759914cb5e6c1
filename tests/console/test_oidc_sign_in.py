"""Signing in with the school's accounts (issue 18), against a real OpenID Connect provider
(oidc-provider on 127.0.0.1, tests/oidc_provider): the console in-process (TestClient at
http://testserver), the provider's own pages driven with httpx as a browser would. Teachers and
administrators from the roster get in; anyone else, and every tampered, replayed or foreign
answer, is refused with a sentence."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from sqlalchemy import func, select

from console.console_world import ADMIN_EMAIL, PASSWORD, Console, PageClient, console
from oidc_provider.running import Client, running_oidc_provider
from sislink.classroom import Actor
from sislink.classroom.models import Person, Role
from sislink.classroom.services import people, sign_in
from sislink.console.oidc import OidcProtocol
from sislink.seeddata import district_people

CALLBACK = "http://testserver/login/oidc/callback"
SECRET = "a-client-secret-for-sislink-0123456789"
TEACHER = next(p for p in district_people(7, 40) if p.role == "teacher")
STRANGER = "stranger@elsewhere.example"
GROUP_ADMIN = "grace@district.example"
GROUP_TEACHER = "tess@district.example"
ACCOUNTS: dict[str, dict[str, object]] = {
    "teacher": {"email": TEACHER.email.upper(), "email_verified": True, "name": "T"},
    "admin": {"email": ADMIN_EMAIL, "email_verified": True, "name": "Ada"},
    "stranger": {"email": STRANGER, "email_verified": True, "name": "S"},
    # Someone whose provider has not verified that the teacher's address is theirs.
    "unverified": {"email": TEACHER.email, "email_verified": False, "name": "U"},
    "group-admin": {
        "email": GROUP_ADMIN,
        "email_verified": True,
        "name": "Grace Hopper",
        "groups": ["sislink-admins"],
    },
    # The same person in more groups than an ID token holds: Microsoft Entra ID then sends
    # where to find them instead (distributed claims, "groups overage").
    "group-admin-overage": {
        "email": GROUP_ADMIN,
        "email_verified": True,
        "name": "Grace Hopper",
        "_claim_names": {"groups": "src1"},
        "_claim_sources": {
            "src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}
        },
    },
    # The same person after the district took them out of the administrators' group.
    "group-admin-left": {"email": GROUP_ADMIN, "email_verified": True, "name": "Grace Hopper"},
    # A roster teacher put in the group, and the same teacher taken out of it again.
    "teacher-in-group": {
        "email": GROUP_TEACHER,
        "email_verified": True,
        "name": "Tess",
        "groups": ["sislink-admins"],
    },
    "teacher-out-of-group": {"email": GROUP_TEACHER, "email_verified": True, "name": "Tess"},
}


@dataclass
class World:
    served: Console
    issuer: str
    provider_id: int

    def browser(self) -> tuple[PageClient, httpx.Client]:
        """A fresh browser: sislink's cookies, and the provider's."""
        return self.served.client(), httpx.Client(follow_redirects=False, timeout=20)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    clients = [
        Client("sislink", SECRET, (CALLBACK,), ("http://testserver/login",)),
        Client("other-app", "other-app-secret-0123456789", (CALLBACK,)),
    ]
    with (
        running_oidc_provider(clients, ACCOUNTS) as issuer,
        console(tmp_path_factory.mktemp("oidc")) as served,
    ):
        with served.classroom.transaction() as session:
            people.create_person(
                session,
                Actor.system(),
                name="Tom Teacher",
                email=TEACHER.email,
                roles=[Role.TEACHER],
            )
            people.create_person(
                session, Actor.system(), name="Tess", email=GROUP_TEACHER, roles=[Role.TEACHER]
            )
            provider = sign_in.set_provider(
                session,
                served.classroom.secret_box,
                Actor.system(),
                issuer=issuer,
                client_id="sislink",
                client_secret=SECRET,
                name="District login",
                admin_group="sislink-admins",
            )
            provider_id = provider.id
        yield World(served, issuer, provider_id)


def to_provider(world: World, page: PageClient, next_path: str = "/") -> str:
    started = page.client.get(
        f"/login/oidc/start/{world.provider_id}?next={next_path}", follow_redirects=False
    )
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    assert location.startswith(world.issuer)
    return location


def at_provider(world: World, browser: httpx.Client, url: str, login: str) -> str:
    """Follow the provider's pages, signing in as `login`; the callback URL it sends back."""
    for _ in range(12):
        if url.startswith("http://testserver"):
            return url
        if url.startswith("/"):
            url = world.issuer + url
        answer = browser.get(url)
        if answer.status_code == 200 and "/interaction/" in url:
            answer = browser.post(url, data={"login": login})
        assert answer.status_code in (302, 303), answer.text
        url = answer.headers["location"]
    raise AssertionError("the provider never sent the browser back")


def finish(page: PageClient, callback_url: str) -> httpx.Response:
    parts = urlsplit(callback_url)
    return page.client.get(f"{parts.path}?{parts.query}", follow_redirects=False)


def sign_in_as(world: World, login: str, next_path: str = "/") -> tuple[PageClient, httpx.Response]:
    page, browser = world.browser()
    with browser:
        callback = at_provider(world, browser, to_provider(world, page, next_path), login)
    return page, finish(page, callback)


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def people_count(world: World) -> int:
    with world.served.classroom.session() as session:
        return int(session.scalar(select(func.count()).select_from(Person)) or 0)


def test_a_teacher_from_the_roster_signs_in_with_the_provider_whatever_the_email_case(
    world: World,
) -> None:
    page, answer = sign_in_as(world, "teacher", "/classes")
    assert answer.status_code == 303 and answer.headers["location"] == "/classes"
    classes = page.get("/classes")
    assert classes.status_code == 200 and TEACHER.email in classes.text
    with world.served.classroom.session() as session:
        assert sign_in.get_provider(session, world.provider_id).last_sign_in_at is not None


def test_an_administrator_named_in_sislink_signs_in_as_administrator(world: World) -> None:
    page, answer = sign_in_as(world, "admin")
    assert answer.status_code == 303
    assert page.client.get("/", follow_redirects=False).headers["location"] == "/admin/sis"
    assert page.get("/admin/sign-in").status_code == 200


def test_the_providers_admin_group_makes_an_administrator(world: World) -> None:
    page, answer = sign_in_as(world, "group-admin")
    assert answer.status_code == 303
    assert page.get("/admin/sign-in").status_code == 200
    with world.served.classroom.session() as session:
        person = people.find_person_by_email(session, GROUP_ADMIN)
        assert person is not None and person.is_admin and person.name == "Grace Hopper"


def test_an_administrator_by_the_providers_group_is_one_no_more_once_out_of_it(
    world: World,
) -> None:
    kept, answer = sign_in_as(world, "group-admin")
    assert answer.status_code == 303 and kept.get("/admin/sign-in").status_code == 200
    # Taken out of the group at the provider: the next sign-in says so and the role goes,
    # also for the session opened before.
    _, answer = sign_in_as(world, "group-admin-left")
    assert answer.status_code == 403
    assert f"{GROUP_ADMIN} is not a teacher or administrator in sislink" in answer.text
    assert kept.client.get("/admin/sign-in", follow_redirects=False).status_code == 303
    # A teacher given the role by the group keeps being a teacher without it.
    page, answer = sign_in_as(world, "teacher-in-group")
    assert answer.status_code == 303 and page.get("/admin/sign-in").status_code == 200
    page, answer = sign_in_as(world, "teacher-out-of-group")
    assert answer.status_code == 303
    assert page.client.get("/admin/sign-in", follow_redirects=False).status_code == 403
    assert page.get("/classes").status_code == 200
    with world.served.classroom.session() as session:
        tess = people.find_person_by_email(session, GROUP_TEACHER)
        assert tess is not None and tess.is_teacher and not tess.is_admin
    # An administrator named in sislink is not one by the group: they stay one without it.
    page, answer = sign_in_as(world, "admin")
    assert answer.status_code == 303 and page.get("/admin/sign-in").status_code == 200


def test_an_administrator_whose_groups_did_not_fit_in_the_token_keeps_the_role(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    _, answer = sign_in_as(world, "group-admin")
    assert answer.status_code == 303
    # Their groups are unknown, not empty: the role the group gave stays (it went before).
    page, answer = sign_in_as(world, "group-admin-overage")
    assert answer.status_code == 303, answer.text
    assert page.get("/admin/sign-in").status_code == 200
    with world.served.classroom.session() as session:
        person = people.find_person_by_email(session, GROUP_ADMIN)
        assert person is not None and person.is_admin
    assert any("groups overage" in record.getMessage() for record in caplog.records)


def test_a_provider_whose_issuer_ends_in_a_slash_signs_people_in(world: World) -> None:
    with running_oidc_provider(
        [Client("sislink", SECRET, (CALLBACK,))], ACCOUNTS, issuer_path="/"
    ) as issuer:
        assert issuer.endswith("/")
        with world.served.classroom.transaction() as session:
            provider_id = sign_in.set_provider(
                session,
                world.served.classroom.secret_box,
                Actor.system(),
                issuer=issuer,
                client_id="sislink",
                client_secret=SECRET,
                name="Slash login",
            ).id
        try:
            slashed = World(world.served, issuer.rstrip("/"), provider_id)
            page, answer = sign_in_as(slashed, "teacher", "/classes")
            assert answer.status_code == 303, answer.text
            assert answer.headers["location"] == "/classes"
            assert page.get("/classes").status_code == 200
        finally:
            with world.served.classroom.transaction() as session:
                sign_in.remove_provider(session, Actor.system(), provider_id)


def test_someone_not_in_the_roster_is_refused_and_nothing_is_created(world: World) -> None:
    before = people_count(world)
    page, answer = sign_in_as(world, "stranger")
    assert answer.status_code == 403
    assert f"{STRANGER} is not a teacher or administrator in sislink" in answer.text
    assert people_count(world) == before
    assert page.client.get("/classes", follow_redirects=False).status_code == 303


def test_an_email_the_provider_has_not_verified_is_refused(world: World) -> None:
    _, answer = sign_in_as(world, "unverified")
    assert answer.status_code == 403
    assert "is not verified" in answer.text


def test_a_tampered_state_is_refused(world: World) -> None:
    page, browser = world.browser()
    with browser:
        callback = at_provider(world, browser, to_provider(world, page), "teacher")
    state = parse_qs(urlsplit(callback).query)["state"][0]
    answer = finish(page, with_query(callback, state=state[:-2] + "xy"))
    assert answer.status_code == 400
    assert "does not match a sign-in started in this browser" in answer.text
    assert page.client.get("/classes", follow_redirects=False).status_code == 303


def test_an_answer_naming_another_issuer_than_the_sign_ins_provider_is_refused(
    world: World,
) -> None:
    page, browser = world.browser()
    with browser:
        callback = at_provider(world, browser, to_provider(world, page), "teacher")
    assert parse_qs(urlsplit(callback).query)["iss"] == [world.issuer]
    # RFC 9207: an answer that another provider gave (a mix-up of several providers).
    answer = finish(page, with_query(callback, iss="https://idp.elsewhere.example"))
    assert answer.status_code == 403
    assert "came from https://idp.elsewhere.example" in answer.text
    assert page.client.get("/classes", follow_redirects=False).status_code == 303


def test_an_unknown_provider_number_is_a_sentence(world: World) -> None:
    page, _ = world.browser()
    for number in ("9999", "99999999999999999999"):
        answer = page.client.get(f"/login/oidc/start/{number}", follow_redirects=False)
        assert answer.status_code == 404 and "No sign-in provider is" in answer.text
        assert page.client.get(f"/login?signed_out={number}").status_code == 200


def test_a_state_that_is_not_ascii_is_refused_with_a_sentence(world: World) -> None:
    page, _ = world.browser()
    page.client.cookies.set("sislink_oidc_state", "a-state", path="/login/oidc")
    answer = page.client.get("/login/oidc/callback?state=%C3%A9t%C3%A9&code=x")
    assert answer.status_code == 400
    assert "does not match a sign-in started in this browser" in answer.text


def test_an_answer_from_the_provider_is_used_once(world: World) -> None:
    page, browser = world.browser()
    with browser:
        callback = at_provider(world, browser, to_provider(world, page), "teacher")
    state = parse_qs(urlsplit(callback).query)["state"][0]
    assert finish(page, callback).status_code == 303
    # The same answer again, with the state cookie kept (as an attacker who copied both would).
    replayer, _ = world.browser()
    replayer.client.cookies.set("sislink_oidc_state", state, path="/login/oidc")
    again = finish(replayer, callback)
    assert again.status_code == 403
    assert "already used" in again.text


def test_a_replayed_code_is_refused_by_the_provider_and_said_so(world: World) -> None:
    page, browser = world.browser()
    with browser:
        first = at_provider(world, browser, to_provider(world, page), "teacher")
    assert finish(page, first).status_code == 303
    old_code = parse_qs(urlsplit(first).query)["code"][0]
    # A new sign-in in another browser, answered with the code already used.
    other, other_browser = world.browser()
    with other_browser:
        second = at_provider(world, other_browser, to_provider(world, other), "stranger")
    answer = finish(other, with_query(second, code=old_code))
    assert answer.status_code == 403
    assert "did not accept this sign-in&#39;s code (invalid_grant)" in answer.text
    assert other.client.get("/classes", follow_redirects=False).status_code == 303


def test_an_id_token_with_another_nonce_is_refused(world: World) -> None:
    page, browser = world.browser()
    with browser:
        authorize = with_query(to_provider(world, page), nonce="a-nonce-sislink-never-made")
        callback = at_provider(world, browser, authorize, "teacher")
    answer = finish(page, callback)
    assert answer.status_code == 403
    assert "its nonce differs" in answer.text


def test_an_expired_id_token_is_refused(world: World) -> None:
    app = world.served.app
    app.state.oidc = OidcProtocol(clock=lambda: time.time() + 2 * 3600)
    try:
        _, answer = sign_in_as(world, "teacher")
    finally:
        app.state.oidc = OidcProtocol()
    assert answer.status_code == 403
    assert "The ID token has expired" in answer.text


def test_new_signing_keys_at_the_provider_are_fetched_again(world: World) -> None:
    from joserfc.jwk import KeySet, RSAKey

    protocol = OidcProtocol()
    discovery = protocol.discover(world.issuer)
    # Keys read before the provider rotated them: the ID token's key id is not among them.
    protocol.keys(discovery)
    stale = KeySet([RSAKey.generate_key(2048, parameters={"kid": "retired"})])
    protocol._keys[discovery.issuer] = (time.monotonic(), stale)
    world.served.app.state.oidc = protocol
    try:
        _, answer = sign_in_as(world, "teacher")
    finally:
        world.served.app.state.oidc = OidcProtocol()
    assert answer.status_code == 303, answer.text


def test_a_provider_gone_away_before_the_code_is_exchanged_is_a_sentence(world: World) -> None:
    with running_oidc_provider([Client("sislink", SECRET, (CALLBACK,))], ACCOUNTS) as issuer:
        with world.served.classroom.transaction() as session:
            provider_id = sign_in.set_provider(
                session,
                world.served.classroom.secret_box,
                Actor.system(),
                issuer=issuer,
                client_id="sislink",
                client_secret=SECRET,
                name="Flaky login",
            ).id
        gone = World(world.served, issuer, provider_id)
        page, browser = gone.browser()
        with browser:
            callback = at_provider(gone, browser, to_provider(gone, page), "teacher")
    try:
        answer = finish(page, callback)
        assert answer.status_code == 403
        assert "sislink could not reach Flaky login to finish signing you in" in answer.text
        assert page.client.get("/classes", follow_redirects=False).status_code == 303
    finally:
        with world.served.classroom.transaction() as session:
            sign_in.remove_provider(session, Actor.system(), provider_id)


def real_id_token(world: World, client_id: str, secret: str, nonce: str) -> str:
    """An ID token the provider really issued to `client_id` (the whole flow with httpx)."""
    verifier = "v" * 64
    challenge = (
        base64.urlsafe_b64encode(__import__("hashlib").sha256(verifier.encode()).digest())
        .rstrip(b"=")
        .decode()
    )
    query = urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": CALLBACK,
            "scope": "openid email profile",
            "state": "s" * 20,
            "nonce": nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    with httpx.Client(follow_redirects=False, timeout=20) as browser:
        callback = at_provider(world, browser, f"{world.issuer}/auth?{query}", "teacher")
        code = parse_qs(urlsplit(callback).query)["code"][0]
        token = browser.post(
            f"{world.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALLBACK,
                "code_verifier": verifier,
            },
            auth=(client_id, secret),
        )
    assert token.status_code == 200, token.text
    return str(token.json()["id_token"])


def test_an_id_token_for_another_application_or_tampered_or_replayed_is_refused(
    world: World,
) -> None:
    protocol = OidcProtocol()
    with world.served.classroom.session() as session:
        provider = sign_in.get_provider(session, world.provider_id)
        session.expunge(provider)
    discovery = protocol.discover(world.issuer)
    foreign = real_id_token(world, "other-app", "other-app-secret-0123456789", "n" * 30)
    with pytest.raises(sign_in.SignInRefused, match="made for another application"):
        protocol.verify_id_token(provider, discovery, foreign, nonce="n" * 30)

    own = real_id_token(world, "sislink", SECRET, "m" * 30)
    assert protocol.verify_id_token(provider, discovery, own, nonce="m" * 30)["email"]
    # The same token offered to a later sign-in (whose nonce is new) is a replay.
    with pytest.raises(sign_in.SignInRefused, match="replayed or swapped"):
        protocol.verify_id_token(provider, discovery, own, nonce="a-later-sign-in-nonce")
    # A claim changed after signing (an administrator's email put in) breaks the signature.
    head, body, signature = own.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["email"] = ADMIN_EMAIL
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(sign_in.SignInRefused, match="not signed with the provider's keys"):
        protocol.verify_id_token(
            provider, discovery, f"{head}.{forged_body}.{signature}", nonce="m" * 30
        )


def test_password_sign_in_turns_off_only_after_a_provider_worked_and_then_the_form_goes(
    tmp_path: Path, world: World
) -> None:
    with console(tmp_path) as fresh:
        admin = fresh.client()
        admin.sign_in(ADMIN_EMAIL)
        refused = admin.post("/admin/sign-in/password", {})
        assert refused.status_code == 400
        assert "stays on until someone has signed in with a provider" in refused.text
    page, _ = sign_in_as(world, "admin")
    earlier = world.served.client()
    earlier.get("/login")  # a password form opened before passwords were turned off
    assert page.post("/admin/sign-in/password", {}, follow_redirects=True).status_code == 200
    try:
        login = world.served.client().get("/login")
        assert "Sign in with District login" in login.text
        assert 'name="password"' not in login.text
        tried = earlier.post("/login", {"email": ADMIN_EMAIL, "password": PASSWORD})
        assert tried.status_code == 403 and "Password sign-in is turned off" in tried.text
    finally:
        with world.served.classroom.transaction() as session:
            sign_in.set_password_sign_in(session, Actor.system(), True)


def test_signing_out_ends_the_session_and_offers_the_providers_sign_out(world: World) -> None:
    page, _ = sign_in_as(world, "teacher")
    page.get("/classes")
    out = page.post("/logout", {}, follow_redirects=True)
    assert out.status_code == 200
    assert "sign out of District login too" in out.text
    assert f"{world.issuer}/session/end?client_id=sislink" in out.text
    assert page.client.get("/classes", follow_redirects=False).status_code == 303


def test_a_providers_sign_out_link_is_offered_only_when_it_is_https(world: World) -> None:
    hostile = "javascript:fetch('/admin/sign-in')//"
    with running_oidc_provider(
        [Client("sislink", SECRET, (CALLBACK,))], ACCOUNTS, end_session_endpoint=hostile
    ) as issuer:
        with world.served.classroom.transaction() as session:
            provider_id = sign_in.set_provider(
                session,
                world.served.classroom.secret_box,
                Actor.system(),
                issuer=issuer,
                client_id="sislink",
                client_secret=SECRET,
                name="Odd login",
            ).id
        try:
            page, answer = sign_in_as(World(world.served, issuer, provider_id), "teacher")
            assert answer.status_code == 303
            out = page.post("/logout", {}, follow_redirects=True)
            assert out.status_code == 200 and "You are signed out of sislink" in out.text
            assert "javascript:" not in out.text and 'id="end-session"' not in out.text
        finally:
            with world.served.classroom.transaction() as session:
                sign_in.remove_provider(session, Actor.system(), provider_id)


def test_the_client_secret_is_never_in_clear_in_the_database_or_the_page(world: World) -> None:
    admin, _ = sign_in_as(world, "admin")
    assert SECRET not in admin.get("/admin/sign-in").text
    with world.served.classroom.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM oidc_provider").fetchall()
    assert rows and all(SECRET not in str(row) for row in rows)


def test_an_administrator_adds_a_provider_on_the_sign_in_page_and_its_secret_is_sealed(
    world: World,
) -> None:
    admin, _ = sign_in_as(world, "admin")
    admin.get("/admin/sign-in")
    bad = admin.post(
        "/admin/sign-in/providers",
        {"issuer": "http://idp.example.org", "client_id": "x", "client_secret": "typed-secret"},
    )
    assert bad.status_code == 400 and "is not https" in bad.text
    assert "typed-secret" not in bad.text
    saved = admin.post(
        "/admin/sign-in/providers",
        {
            "name": "Entra",
            "issuer": "https://login.microsoftonline.com/tenant-9/v2.0",
            "client_id": "entra-app",
            "client_secret": "typed-secret",
        },
        follow_redirects=True,
    )
    assert saved.status_code == 200 and "Entra is set" in saved.text
    assert "typed-secret" not in saved.text and "sealed in sislink" in saved.text
    assert "Sign in with Entra" in world.served.client().get("/login").text
    with world.served.classroom.transaction() as session:
        sign_in.remove_provider(session, Actor.system(), "Entra")


def test_a_flood_of_started_sign_ins_does_not_keep_people_out(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sign_in, "MAX_PENDING", 3)
    flooder, _ = world.browser()
    for _ in range(6):
        started = flooder.client.get(
            f"/login/oidc/start/{world.provider_id}", follow_redirects=False
        )
        assert started.status_code == 303
    _, answer = sign_in_as(world, "teacher", "/classes")
    assert answer.status_code == 303 and answer.headers["location"] == "/classes"


def test_a_providers_endpoints_must_be_https_except_a_loopback_test_provider() -> None:
    from sislink.console.oidc import _check_endpoint

    _check_endpoint("https://idp.example.org", "https://tokens.example.net/token")
    _check_endpoint("http://127.0.0.1:5000", "http://127.0.0.1:5000/token")
    for issuer, endpoint in (
        ("https://idp.example.org", "http://idp.example.org/token"),
        ("http://127.0.0.1:5000", "http://idp.example.org/token"),
        ("https://idp.example.org", "file:///etc/passwd"),
    ):
        with pytest.raises(sign_in.SignInRefused, match="not https"):
            _check_endpoint(issuer, endpoint)
