"""Eligibility: from what an administrator answers, whether sislink can work with their SIS, and why."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from sislink.partners.catalogue import Profile

Hosting = Literal["vendor", "self"]


@dataclass(frozen=True)
class EligibilityAnswers:
    """What the administrator says of their SIS; None where they did not answer."""

    version: str | None = None
    has_licence: bool | None = None
    hosting: Hosting | None = None


@dataclass(frozen=True)
class EligibilityVerdict:
    eligible: bool
    reasons: list[str] = field(default_factory=list)  # why not, when not eligible
    warnings: list[str] = field(default_factory=list)  # eligible, but with these caveats
    to_confirm: list[str] = field(default_factory=list)  # questions still unanswered


def _version_tuple(text: str) -> tuple[int, ...] | None:
    numbers = re.findall(r"\d+", text)
    return tuple(int(n) for n in numbers) if numbers else None


def check_eligibility(profile: Profile, answers: EligibilityAnswers) -> EligibilityVerdict:
    """Eligible or not, with reasons in words an administrator can act on."""
    rules = profile.eligibility
    reasons: list[str] = []
    warnings: list[str] = []
    to_confirm: list[str] = []
    name = profile.display_name

    if profile.partnership == "contact-sis":
        warnings.append(
            f"{name} has no confirmed OneRoster partnership: contact {name} to learn whether "
            "your district's OneRoster service is available. sislink treats it as generic "
            "OneRoster."
        )
    if rules.minimum_version:
        if answers.version is None:
            to_confirm.append(f"Is your {name} version {rules.minimum_version} or later?")
        else:
            have, need = _version_tuple(answers.version), _version_tuple(rules.minimum_version)
            if have is not None and need is not None and have < need:
                reasons.append(
                    f"{name} {answers.version} is older than {rules.minimum_version}, the first "
                    f"version with the OneRoster service sislink needs. Ask {name} about upgrading."
                )
    if rules.licence:
        if answers.has_licence is None:
            to_confirm.append(f"Does your district have the {rules.licence} licence?")
        elif not answers.has_licence:
            reasons.append(
                f"{name} needs the {rules.licence} licence for OneRoster; ask {name} to enable it."
            )
    if rules.vendor_hosted:
        if answers.hosting is None:
            to_confirm.append(f"Is your {name} hosted by {name} (their cloud)?")
        elif answers.hosting == "self":
            warnings.append(
                f"Your {name} is hosted by the district, not by {name}. sislink will try, but "
                "this is best effort: self-hosted installations differ in versions, proxies "
                "and certificates."
            )
    if rules.notes:
        warnings.append(rules.notes)
    return EligibilityVerdict(not reasons, reasons, warnings, to_confirm)
