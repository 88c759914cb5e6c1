"""Sign-in providers and who a verified ID token is (issue 18), on SQLite and PostgreSQL:
providers from the deployment's environment (secrets only by variable name), the client secret
sealed or read at run time, and the roster deciding who gets in: verified email only, the
school's domain only when one is set, nobody created for a stranger."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from sislink.classroom import Actor, Classroom, InvalidInput
from sislink.classroom.models import OidcProvider, Person, Role
from sislink.classroom.services import people, sign_in
from sislink.classroom.services.sign_in import SignInRefused

GOOGLE = "https://accounts.google.com"
ENTRA = "https://login.microsoftonline.com/tenant-1/v2.0"


def test_providers_come_from_the_environment_and_go_when_no_longer_named(
    classroom: Classroom,
) -> None:
    env = {
        "SISLINK_OIDC_PROVIDERS": json.dumps(
            [
                {"issuer": GOOGLE, "client_id": "g", "client_secret_env": "G_SECRET",
                 "domain": "district.org"},
                {"issuer": ENTRA, "client_id": "e", "client_secret_env": "E_SECRET"},
            ]
        ),
        "G_SECRET": "google-secret",
    }  # fmt: skip
    with classroom.transaction() as session:
        applied = sign_in.apply_environment(session, classroom.secret_box, env)
        assert [p.name for p in applied] == ["Google", "Microsoft"]
        assert sign_in.client_secret(applied[0], classroom.secret_box, env) == "google-secret"
        with pytest.raises(InvalidInput, match=r"come from \$E_SECRET, which is empty or not set"):
            sign_in.client_secret(applied[1], classroom.secret_box, env)
    with classroom.transaction() as session:
        sign_in.apply_environment(
            session,
            classroom.secret_box,
            {
                "SISLINK_OIDC_PROVIDERS": json.dumps(
                    [{"issuer": ENTRA, "client_id": "e", "client_secret_env": "E_SECRET"}]
                )
            },
        )
        assert [p.issuer for p in sign_in.list_providers(session)] == [ENTRA]


def test_the_environment_never_holds_a_secret_itself_and_bad_json_is_a_sentence(
    classroom: Classroom,
) -> None:
    with classroom.transaction() as session, pytest.raises(InvalidInput, match="never the secret"):
        sign_in.apply_environment(
            session,
            classroom.secret_box,
            {"SISLINK_OIDC_PROVIDERS": json.dumps([{"issuer": GOOGLE, "client_secret": "x"}])},
        )
    with classroom.transaction() as session, pytest.raises(InvalidInput, match="is not JSON"):
        sign_in.apply_environment(session, classroom.secret_box, {"SISLINK_OIDC_PROVIDERS": "[{"})


def test_a_sealed_secret_is_stored_only_sealed(classroom: Classroom) -> None:
    with classroom.transaction() as session:
        provider = sign_in.set_provider(
            session, classroom.secret_box, Actor.system(),
            issuer=GOOGLE, client_id="g", client_secret="the-real-secret",
        )  # fmt: skip
        assert (
            provider.client_secret_sealed and "the-real-secret" not in provider.client_secret_sealed
        )
        assert sign_in.client_secret(provider, classroom.secret_box, {}) == "the-real-secret"
        assert "the-real-secret" not in repr(provider)


def _provider(classroom: Classroom, issuer: str, **options: str) -> OidcProvider:
    with classroom.transaction() as session:
        provider = sign_in.set_provider(
            session, classroom.secret_box, Actor.system(),
            issuer=issuer, client_id="c", client_secret_env="S", **options,
        )  # fmt: skip
        people.create_person(
            session, Actor.system(), name="T", email="t@district.org", roles=[Role.TEACHER]
        )
        session.expunge(provider)
        return provider


def _people(classroom: Classroom) -> int:
    with classroom.session() as session:
        return int(session.scalar(select(func.count()).select_from(Person)) or 0)


def test_only_the_schools_domain_signs_in_when_one_is_set(classroom: Classroom) -> None:
    provider = _provider(classroom, GOOGLE, domain="district.org")
    with classroom.transaction() as session:
        person = sign_in.identify(
            session,
            provider,
            {"email": "T@District.org", "email_verified": True, "hd": "district.org"},
        )
        assert person.email == "t@district.org"
    with classroom.transaction() as session, pytest.raises(SignInRefused, match="personal Google"):
        sign_in.identify(session, provider, {"email": "t@district.org", "email_verified": True})
    with classroom.transaction() as session, pytest.raises(SignInRefused, match="Only district"):
        sign_in.identify(
            session, provider, {"email": "t@other.org", "email_verified": True, "hd": "other.org"}
        )


def test_entra_ids_verified_domain_claim_counts_and_strangers_get_nothing(
    classroom: Classroom,
) -> None:
    provider = _provider(classroom, ENTRA)
    with classroom.transaction() as session:
        assert sign_in.identify(session, provider, {"email": "t@district.org", "xms_edov": True})
    with classroom.transaction() as session, pytest.raises(SignInRefused, match="not verified"):
        sign_in.identify(session, provider, {"email": "t@district.org"})
    before = _people(classroom)
    with classroom.transaction() as session, pytest.raises(SignInRefused, match="not a teacher"):
        sign_in.identify(session, provider, {"email": "x@district.org", "xms_edov": True})
    assert _people(classroom) == before


def test_a_disabled_account_stays_out_until_an_administrator_invites_it_again(
    classroom: Classroom,
) -> None:
    from sislink.classroom.services import accounts

    provider = _provider(classroom, ENTRA)
    claims = {"email": "t@district.org", "xms_edov": True}
    with classroom.transaction() as session:
        person = sign_in.identify(session, provider, claims)
        accounts.disable_account(session, Actor.system(), person.id)
    with classroom.transaction() as session, pytest.raises(SignInRefused, match="disabled"):
        sign_in.identify(session, provider, claims)
    with classroom.transaction() as session:
        accounts.invite(session, Actor.system(), "t@district.org")
    with classroom.transaction() as session:
        assert sign_in.identify(session, provider, claims).email == "t@district.org"


def test_a_sign_in_under_way_is_taken_once_and_not_after_ten_minutes(classroom: Classroom) -> None:
    from datetime import timedelta

    from sislink.classroom.models import OidcPending, utc_now

    provider = _provider(classroom, GOOGLE)
    with classroom.transaction() as session:
        state, made = sign_in.start_pending(
            session, classroom.secret_box, provider.id, "https://c/login/oidc/callback", "/x"
        )
        late, _ = sign_in.start_pending(
            session, classroom.secret_box, provider.id, "https://c/login/oidc/callback", "/"
        )
        stored = session.scalars(select(OidcPending)).all()
        assert all(made.code_verifier not in row.code_verifier_sealed for row in stored)
        assert all(state not in row.state_hash for row in stored)
    with classroom.transaction() as session:
        taken = sign_in.take_pending(session, classroom.secret_box, state)
        assert (taken.nonce, taken.code_verifier, taken.next_path) == (
            made.nonce,
            made.code_verifier,
            "/x",
        )
    with classroom.transaction() as session, pytest.raises(SignInRefused, match="already used"):
        sign_in.take_pending(session, classroom.secret_box, state)
    with classroom.transaction() as session:
        for row in session.scalars(select(OidcPending)):
            row.expires_at = utc_now() - timedelta(seconds=1)
    with classroom.transaction() as session, pytest.raises(SignInRefused, match="has expired"):
        sign_in.take_pending(session, classroom.secret_box, late)


def test_the_admin_groups_role_goes_with_the_group_unless_an_administrator_named_them(
    classroom: Classroom,
) -> None:
    provider = _provider(classroom, ENTRA, admin_group="admins")
    in_group = {"email": "g@district.org", "xms_edov": True, "groups": ["admins"], "name": "G"}
    out_of_group = {"email": "g@district.org", "xms_edov": True, "groups": ["staff"]}
    teacher_in_group = {"email": "t@district.org", "xms_edov": True, "roles": ["admins"]}
    teacher = {"email": "t@district.org", "xms_edov": True}
    with classroom.transaction() as session:
        assert sign_in.identify(session, provider, in_group).is_admin
        assert sign_in.identify(session, provider, teacher_in_group).is_admin
    with classroom.transaction() as session:
        assert sign_in.follow_admin_group(session, provider, out_of_group) is not None
        assert not sign_in.identify(session, provider, teacher).is_admin
    with classroom.transaction() as session, pytest.raises(SignInRefused, match="not a teacher"):
        sign_in.identify(session, provider, out_of_group)
    with classroom.session() as session:
        gone = people.find_person_by_email(session, "g@district.org")
        assert gone is not None and gone.roles == frozenset()
    # Given the role by the group again, then named by an administrator: it stays.
    with classroom.transaction() as session:
        again = sign_in.identify(session, provider, in_group)
        people.set_roles(session, Actor.system(), again.id, {Role.ADMIN})
    with classroom.transaction() as session:
        assert sign_in.identify(session, provider, out_of_group).is_admin


def test_a_sign_in_asked_to_go_on_to_a_very_long_path_goes_to_the_start_page(
    classroom: Classroom,
) -> None:
    provider = _provider(classroom, GOOGLE)
    with classroom.transaction() as session:
        state, made = sign_in.start_pending(
            session, classroom.secret_box, provider.id, "https://c/login/oidc/callback",
            "/classes?q=" + "a" * 3000,
        )  # fmt: skip
    assert made.next_path == "/"
    with classroom.transaction() as session:
        assert sign_in.take_pending(session, classroom.secret_box, state).next_path == "/"


def test_a_flood_of_started_sign_ins_pushes_out_the_oldest_and_never_refuses_a_new_one(
    classroom: Classroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sislink.classroom.models import OidcPending

    monkeypatch.setattr(sign_in, "MAX_PENDING", 3)
    provider = _provider(classroom, GOOGLE)
    callback = "https://c/login/oidc/callback"
    with classroom.transaction() as session:
        flood = [
            sign_in.start_pending(session, classroom.secret_box, provider.id, callback, "/")[0]
            for _ in range(5)
        ]
    with classroom.transaction() as session:
        state, _ = sign_in.start_pending(session, classroom.secret_box, provider.id, callback, "/")
    with classroom.session() as session:
        assert session.scalar(select(func.count()).select_from(OidcPending)) == 3
    with classroom.transaction() as session:
        assert sign_in.take_pending(session, classroom.secret_box, state).next_path == "/"
    with classroom.transaction() as session, pytest.raises(SignInRefused, match="already used"):
        sign_in.take_pending(session, classroom.secret_box, flood[0])


def test_passwords_come_back_when_the_environment_no_longer_names_any_provider(
    classroom: Classroom,
) -> None:
    from sislink.classroom.services import accounts

    named = json.dumps([{"issuer": GOOGLE, "client_id": "g", "client_secret_env": "G_SECRET"}])
    with classroom.transaction() as session:
        admin = people.create_person(
            session, Actor.system(), name="A", email="a@district.org", roles=[Role.ADMIN]
        )
        accounts.set_password(session, Actor.system(), admin.id, "a long enough password 1")
        key = accounts.start_console_session(session, admin.id)
        sign_in.apply_environment(
            session,
            classroom.secret_box,
            {"SISLINK_OIDC_PROVIDERS": named, "SISLINK_PASSWORD_SIGN_IN": "off"},
        )
    with classroom.session() as session:
        assert accounts.console_session_person(session, key) is None
    # A deployment that drops its providers: with none left, the password form (which the
    # sign-in page then shows) must work again, or nobody could sign in.
    for env in ({}, {"SISLINK_PASSWORD_SIGN_IN": "off"}):
        with classroom.transaction() as session:
            sign_in.apply_environment(session, classroom.secret_box, env)
        with classroom.session() as session:
            assert sign_in.list_providers(session) == []
            assert sign_in.password_sign_in_enabled(session)
            assert accounts.console_session_person(session, key) is not None


def test_a_provider_number_too_big_for_the_database_names_no_provider(
    classroom: Classroom,
) -> None:
    from sislink.classroom import NotFound

    _provider(classroom, GOOGLE)
    with classroom.session() as session, pytest.raises(NotFound, match="No sign-in provider"):
        sign_in.get_provider(session, 99999999999999999999)


def test_a_callback_address_too_long_to_keep_is_a_sentence(classroom: Classroom) -> None:
    provider = _provider(classroom, GOOGLE)
    too_long = "https://" + "c" * 2000 + ".example/login/oidc/callback"
    with classroom.transaction() as session, pytest.raises(SignInRefused, match="too long"):
        sign_in.start_pending(session, classroom.secret_box, provider.id, too_long, "/")
