"""Console sign-in: throttled per email and per address in the database (every process counts
the same failures), refused before any password hash is computed when throttled, and never more
password hashes at once than the guard allows (each costs 64 MiB)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from sislink.classroom import Actor, Classroom
from sislink.classroom.models import ConsoleSession, Role, SignInFailure, utc_now
from sislink.classroom.services import accounts, people

PASSWORD = "correct horse battery staple"


def teacher(classroom: Classroom, email: str = "tom@school.example") -> int:
    with classroom.transaction() as session:
        person = people.create_person(
            session, Actor.system(), name="Tom", email=email, roles=[Role.TEACHER]
        )
        accounts.set_password(session, Actor.system(), person.id, PASSWORD)
        return person.id


def test_the_right_password_starts_a_session_and_clears_the_emails_failures(
    classroom: Classroom,
) -> None:
    person_id = teacher(classroom)
    guard = accounts.SignInGuard(accounts.SignInLimits(per_account=3, per_address=10))
    wrong = accounts.attempt_sign_in(classroom, "tom@school.example", "nope", "10.0.0.1", guard)
    assert wrong.person_id is None and wrong.session_key is None and not wrong.refused
    right = accounts.attempt_sign_in(classroom, "Tom@School.example", PASSWORD, "10.0.0.1", guard)
    assert right.person_id == person_id and right.session_key
    with classroom.session() as session:
        assert session.scalar(select(func.count()).select_from(SignInFailure)) == 0
        assert session.scalar(select(func.count()).select_from(ConsoleSession)) == 1
        found = accounts.console_session_person(session, right.session_key)
        assert found is not None and found.id == person_id


def test_too_many_failures_refuse_before_hashing_and_say_when_to_try_again(
    classroom: Classroom,
) -> None:
    teacher(classroom)
    guard = accounts.SignInGuard(accounts.SignInLimits(per_account=2, per_address=10))
    for _ in range(2):
        accounts.attempt_sign_in(classroom, "tom@school.example", "nope", "10.0.0.1", guard)
    # The only hashing slot is taken: an attempt that got as far as hashing would be "busy".
    with guard.hashing_slot() as got:
        assert got
        refused = accounts.attempt_sign_in(
            classroom, "tom@school.example", PASSWORD, "10.0.0.2", guard
        )
    assert refused.throttled_until is not None and refused.person_id is None
    assert refused.throttled_until > utc_now()
    assert "Too many sign-in attempts" in refused.message
    assert refused.throttled_until.strftime("%H:%M") in refused.message


def test_failures_older_than_the_window_no_longer_count(classroom: Classroom) -> None:
    person_id = teacher(classroom)
    guard = accounts.SignInGuard(
        accounts.SignInLimits(per_account=2, per_address=10, window=timedelta(minutes=15))
    )
    long_ago = utc_now() - timedelta(minutes=16)
    with classroom.transaction() as session:
        for _ in range(5):
            session.add(
                SignInFailure(
                    account_key="tom@school.example", address="10.0.0.1", failed_at=long_ago
                )
            )
    right = accounts.attempt_sign_in(classroom, "tom@school.example", PASSWORD, "10.0.0.1", guard)
    assert right.person_id == person_id


def test_the_retry_time_is_when_enough_failures_have_aged_out(classroom: Classroom) -> None:
    teacher(classroom)
    limits = accounts.SignInLimits(per_account=2, per_address=100, window=timedelta(minutes=10))
    now = utc_now()
    with classroom.transaction() as session:
        for minutes_ago in (9, 5, 1):
            session.add(
                SignInFailure(
                    account_key="tom@school.example",
                    address="10.0.0.1",
                    failed_at=now - timedelta(minutes=minutes_ago),
                )
            )
    refused = accounts.attempt_sign_in(
        classroom, "tom@school.example", PASSWORD, "10.0.0.1", accounts.SignInGuard(limits)
    )
    # Three failures, limit two: two must age out, the second oldest (5 minutes ago) last.
    assert refused.throttled_until is not None
    expected = now - timedelta(minutes=5) + timedelta(minutes=10)
    assert abs((refused.throttled_until - expected).total_seconds()) < 2


def test_when_every_hashing_slot_is_taken_a_sign_in_is_refused_as_busy_and_not_counted(
    classroom: Classroom,
) -> None:
    teacher(classroom)
    guard = accounts.SignInGuard(
        accounts.SignInLimits(per_account=2, per_address=10, concurrent_checks=1, wait_s=0)
    )
    with guard.hashing_slot() as got:
        assert got
        busy = accounts.attempt_sign_in(classroom, "tom@school.example", PASSWORD, "::1", guard)
    assert busy.busy and busy.person_id is None and "busy" in busy.message
    with classroom.session() as session:
        assert session.scalar(select(func.count()).select_from(SignInFailure)) == 0


def test_the_hashing_slots_are_bounded(classroom: Classroom) -> None:
    guard = accounts.SignInGuard(accounts.SignInLimits(concurrent_checks=2, wait_s=0))
    with (
        guard.hashing_slot() as first,
        guard.hashing_slot() as second,
        guard.hashing_slot() as third,
    ):
        assert (first, second, third) == (True, True, False)
    with guard.hashing_slot() as again:
        assert again


def test_an_email_with_a_nul_character_is_only_a_wrong_email(classroom: Classroom) -> None:
    # PostgreSQL refuses NUL in text: this was a server error (found by schemathesis).
    teacher(classroom)
    guard = accounts.SignInGuard(accounts.SignInLimits(per_account=3, per_address=10))
    tried = accounts.attempt_sign_in(
        classroom, "tom\x00@school.example", PASSWORD, "10.0.0.1\x00", guard
    )
    assert tried.person_id is None and not tried.refused
    with classroom.session() as session:
        assert people.find_person_by_email(session, "tom@school.example\x00") is None
