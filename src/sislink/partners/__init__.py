"""The SIS catalogue: a profile per SIS (data files), eligibility, and Host URL rules."""

from sislink.partners.catalogue import (
    CLIENT_AUTH_WORDS,
    ClientAuth,
    CredentialLabels,
    ExtraHeader,
    Profile,
    ProfileError,
    UnknownPartner,
    catalogue,
    profile,
)
from sislink.partners.eligibility import EligibilityAnswers, EligibilityVerdict, check_eligibility
from sislink.partners.urls import (
    HostUrlProblem,
    SisUrls,
    UrlPolicy,
    derive_urls,
    normalise_host_url,
)

__all__ = [
    "CLIENT_AUTH_WORDS",
    "ClientAuth",
    "CredentialLabels",
    "EligibilityAnswers",
    "EligibilityVerdict",
    "ExtraHeader",
    "HostUrlProblem",
    "Profile",
    "ProfileError",
    "SisUrls",
    "UnknownPartner",
    "UrlPolicy",
    "catalogue",
    "check_eligibility",
    "derive_urls",
    "normalise_host_url",
    "profile",
]
