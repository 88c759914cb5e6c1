"""The models read leniently (refs with only a sourcedId, text booleans) and write 1EdTech's names."""

from __future__ import annotations

from sislink.oneroster.models import Result, ScoreScale, User


def test_a_ref_with_only_a_sourced_id_is_accepted() -> None:
    result = Result.model_validate(
        {
            "sourcedId": "r",
            "lineItem": {"sourcedId": "l"},
            "student": {"sourcedId": 7},
            "scoreStatus": "exempt",
            "scoreDate": "2026-01-01T10:00:00Z",
        }
    )
    assert result.student.sourced_id == "7" and str(result.score_date) == "2026-01-01"


def test_text_booleans_read_and_write_as_text() -> None:
    user = User.model_validate(
        {"sourcedId": "u", "givenName": "A", "familyName": "B", "enabledUser": "false", "roles": []}
    )
    assert user.enabled_user is False and user.wire()["enabledUser"] == "false"


def test_score_scale_values_use_upper_case_lhs_rhs() -> None:
    scale = ScoreScale.model_validate(
        {
            "sourcedId": "s",
            "title": "A-F",
            "type": "letter",
            "class": {"sourcedId": "c"},
            "scoreScaleValue": [{"itemValueLHS": "A", "itemValueRHS": "90"}],
        }
    )
    assert scale.wire()["scoreScaleValue"] == [{"itemValueLHS": "A", "itemValueRHS": "90"}]
