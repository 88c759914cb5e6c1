"""The SIS catalogue: one profile per SIS, read from `profiles/*.toml`, never from code.

A profile says how a SIS looks to an administrator (its name, the labels of the three
credentials, the setup steps, the partnership status) and to the consumer (OneRoster
version, auth kind, how the OneRoster root and the token URL follow from the Host URL, page
size, extra headers, cookies, default category). Correcting a profile is editing a file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

AuthKind = Literal["oauth1", "oauth2"]
ClientAuth = Literal["basic", "post"]
CLIENT_AUTH_WORDS: dict[str, str] = {
    "basic": "HTTP Basic (client_secret_basic)",
    "post": "in the form body (client_secret_post)",
}
Partnership = Literal["available", "contact-sis"]

PARTNERSHIP_WORDS: dict[str, str] = {
    "available": "Available",
    "contact-sis": "Contact your SIS to learn more",
}


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class CredentialLabels:
    """What the SIS calls the three things an administrator types."""

    host_url: str = "Host URL"
    access_key: str = "Access key"
    secret_code: str = "Secret code"  # noqa: S105 (a label, not a secret)


@dataclass(frozen=True)
class ExtraHeader:
    """A header the SIS wants on some calls. `value` may name the connection's extra
    credentials as `{vendor_key}`; `services` limits it to rostering or gradebook calls."""

    name: str
    value: str
    services: tuple[str, ...] = ("rostering", "gradebook")


@dataclass(frozen=True)
class Eligibility:
    """What a district needs for sislink to work with this SIS."""

    minimum_version: str | None = None
    licence: str | None = None
    vendor_hosted: bool = False  # True: only the vendor's SaaS hosting is supported
    notes: str = ""


@dataclass(frozen=True)
class Profile:
    name: str
    display_name: str
    oneroster_version: Literal["1.1", "1.2"]
    auth: AuthKind
    partnership: Partnership
    labels: CredentialLabels
    # Templates over the normalised Host URL (see partners.urls): {host_url}, {origin}, {path}
    # and {query:NAME} for a query parameter of the Host URL.
    root_url: str
    token_url: str | None  # None: the administrator gives it (generic OneRoster)
    host_url_example: str
    # What the path of a correct Host URL ends with, to recognise the usual mistakes.
    host_path_suffix: str = ""
    page_size: int = 1000
    keep_cookies: bool = False
    scope_required: bool = False
    # How the OAuth 2 token request carries the client id and secret (RFC 6749 section 2.3.1):
    # "basic" (HTTP Basic, the standard) or "post" (client_id and client_secret in the form).
    client_auth: ClientAuth = "basic"
    default_category: str | None = None
    staff_id_prefix: str = ""
    extra_headers: tuple[ExtraHeader, ...] = ()
    extra_credentials: tuple[str, ...] = ()  # e.g. ("vendor_key",): asked for at connect
    products: tuple[str, ...] = ()
    setup_steps: tuple[str, ...] = ()
    eligibility: Eligibility = field(default_factory=Eligibility)

    @property
    def partnership_words(self) -> str:
        return PARTNERSHIP_WORDS[self.partnership]


def _get(data: Mapping[str, Any], key: str, kind: type, source: str, default: Any = ...) -> Any:
    if key not in data:
        if default is ...:
            raise ProfileError(f"{source}: the field {key!r} is missing")
        return default
    value = data[key]
    if not isinstance(value, kind):
        raise ProfileError(f"{source}: {key!r} must be a {kind.__name__}, not {value!r}")
    return value


def profile_from_toml(text: str, source: str) -> Profile:
    """Read one profile. `source` names the file in every error message."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML ({exc})") from None
    version = _get(data, "oneroster_version", str, source)
    if version not in ("1.1", "1.2"):
        raise ProfileError(f'{source}: oneroster_version must be "1.1" or "1.2", not {version!r}')
    auth = _get(data, "auth", str, source)
    if auth not in ("oauth1", "oauth2"):
        raise ProfileError(f'{source}: auth must be "oauth1" or "oauth2", not {auth!r}')
    partnership = _get(data, "partnership", str, source, "available")
    if partnership not in PARTNERSHIP_WORDS:
        raise ProfileError(f"{source}: partnership must be one of {sorted(PARTNERSHIP_WORDS)}")
    client_auth = _get(data, "client_auth", str, source, "basic")
    if client_auth not in CLIENT_AUTH_WORDS:
        raise ProfileError(f'{source}: client_auth must be "basic" or "post", not {client_auth!r}')
    urls = _get(data, "urls", dict, source)
    labels = _get(data, "labels", dict, source, {})
    eligibility = _get(data, "eligibility", dict, source, {})
    headers = _get(data, "headers", list, source, [])
    return Profile(
        name=_get(data, "name", str, source),
        display_name=_get(data, "display_name", str, source),
        oneroster_version=version,
        auth=auth,
        partnership=partnership,
        labels=CredentialLabels(**{k: str(v) for k, v in labels.items()}),
        root_url=_get(urls, "root_url", str, source),
        token_url=_get(urls, "token_url", str, source, None),
        host_url_example=_get(urls, "host_url_example", str, source),
        host_path_suffix=_get(urls, "host_path_suffix", str, source, ""),
        page_size=_get(data, "page_size", int, source, 1000),
        keep_cookies=_get(data, "keep_cookies", bool, source, False),
        scope_required=_get(data, "scope_required", bool, source, False),
        client_auth=client_auth,
        default_category=_get(data, "default_category", str, source, None),
        staff_id_prefix=_get(data, "staff_id_prefix", str, source, ""),
        extra_headers=tuple(
            ExtraHeader(
                name=_get(h, "name", str, source),
                value=_get(h, "value", str, source),
                services=tuple(_get(h, "services", list, source, ["rostering", "gradebook"])),
            )
            for h in headers
        ),
        extra_credentials=tuple(_get(data, "extra_credentials", list, source, [])),
        products=tuple(_get(data, "products", list, source, [])),
        setup_steps=tuple(_get(data, "setup_steps", list, source, [])),
        eligibility=Eligibility(
            minimum_version=_get(eligibility, "minimum_version", str, source, None),
            licence=_get(eligibility, "licence", str, source, None),
            vendor_hosted=_get(eligibility, "vendor_hosted", bool, source, False),
            notes=_get(eligibility, "notes", str, source, ""),
        ),
    )


@cache
def catalogue() -> dict[str, Profile]:
    """Every SIS profile shipped with sislink, by name, in display order."""
    folder = resources.files("sislink.partners") / "profiles"
    profiles: dict[str, Profile] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            profile = profile_from_toml(entry.read_text("utf-8"), f"profiles/{entry.name}")
            if profile.name in profiles:
                raise ProfileError(
                    f"profiles/{entry.name}: a second profile named {profile.name!r}"
                )
            profiles[profile.name] = profile
    return profiles


class UnknownPartner(LookupError):
    def __init__(self, name: str) -> None:
        known = ", ".join(catalogue())
        super().__init__(f"There is no SIS named {name!r}. Choose one of: {known}")


def profile(name: str) -> Profile:
    """The profile called `name` (e.g. "skyward"), or UnknownPartner naming the choices."""
    try:
        return catalogue()[name]
    except KeyError:
        raise UnknownPartner(name) from None
