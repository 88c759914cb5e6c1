"""Eligibility: eligible or not, and why, from what the administrator answers."""

from __future__ import annotations

from sislink.partners import EligibilityAnswers, check_eligibility, profile


def test_aspen_older_than_6_2_is_not_eligible() -> None:
    verdict = check_eligibility(
        profile("aspen"), EligibilityAnswers(version="6.1", hosting="vendor")
    )
    assert not verdict.eligible
    assert "older than 6.2" in verdict.reasons[0]


def test_aspen_6_2_hosted_by_follett_is_eligible() -> None:
    verdict = check_eligibility(
        profile("aspen"), EligibilityAnswers(version="6.2", hosting="vendor")
    )
    assert verdict.eligible
    assert verdict.reasons == []


def test_a_self_hosted_sis_is_allowed_with_a_best_effort_warning() -> None:
    answers = EligibilityAnswers(version="2024", has_licence=True, hosting="self")
    verdict = check_eligibility(profile("infinite-campus"), answers)
    assert verdict.eligible
    assert any("best effort" in w for w in verdict.warnings)


def test_skyward_without_the_api_licence_is_not_eligible() -> None:
    verdict = check_eligibility(
        profile("skyward"), EligibilityAnswers(has_licence=False, hosting="vendor")
    )
    assert not verdict.eligible
    assert "licence" in verdict.reasons[0]


def test_unanswered_questions_are_listed_to_confirm() -> None:
    verdict = check_eligibility(profile("skyward"), EligibilityAnswers())
    assert verdict.eligible
    assert len(verdict.to_confirm) == 2
