"""The Host URL an administrator types: checked, normalised, and turned into the SIS's URLs.

Checked before any call is made: https (plain http only for loopback or with an explicit
insecure flag), no private or link-local address unless allowed, trailing slashes removed,
and the usual mistakes recognised with the address that would work.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

from sislink.partners.catalogue import Profile

ONEROSTER_MARKER = "/ims/oneroster"


class HostUrlProblem(ValueError):
    """The Host URL cannot be used. `suggestion` is an address that would work, when known."""

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        self.message = message
        self.suggestion = suggestion
        text = message if suggestion is None else f"{message} Try: {suggestion}"
        super().__init__(text)


@dataclass(frozen=True)
class SisUrls:
    host_url: str  # normalised, as stored
    root_url: str  # the OneRoster root, e.g. https://sis.example.org/ims/oneroster
    token_url: str | None  # None: not derivable; the administrator must give it (OAuth 2)


@dataclass(frozen=True)
class UrlPolicy:
    allow_insecure: bool = False  # plain http to a non-loopback host
    allow_private: bool = False  # private (10/8, 192.168/16, ...) and link-local addresses


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _private_kind(host: str) -> str | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.is_loopback:
        return None
    if address.is_link_local:
        return "a link-local address"
    if address.is_private or address.is_reserved or address.is_unspecified:
        return "a private network address"
    return None


def _refuse_userinfo(raw: str) -> None:
    """A `user:password@` in the address would be stored and shown in clear with it (and sent
    to the SIS as Basic credentials): refused first, before any sentence quotes the address."""
    scheme, sep, rest = raw.partition("://")
    if not sep:
        scheme, rest = "https", raw
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" not in authority:
        return
    host = authority.rpartition("@")[2]
    raise HostUrlProblem(
        "The Host URL holds a user name or password (the part before '@'). sislink never keeps "
        "credentials in an address, which is stored and shown: remove it, and give the access "
        "key and secret code in their own fields.",
        suggestion=f"{scheme}://{host}{rest[len(authority) :]}" if host else None,
    )


def normalise_host_url(text: str, policy: UrlPolicy | None = None) -> str:
    """Check a typed Host URL and return it in one canonical form (no trailing slash)."""
    policy = policy or UrlPolicy()
    raw = text.strip()
    if not raw:
        raise HostUrlProblem("The Host URL is empty. Paste the address your SIS gave you.")
    _refuse_userinfo(raw)
    if "://" not in raw:
        raise HostUrlProblem(
            f"The Host URL {raw!r} has no https:// at the start.", suggestion=f"https://{raw}"
        )
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        raise HostUrlProblem(f"{raw!r} is not a web address (it should start with https://).")
    if scheme == "http" and not (_is_loopback(host) or policy.allow_insecure):
        raise HostUrlProblem(
            "The Host URL must use https: credentials and marks would otherwise cross the network "
            "unencrypted.",
            suggestion=urlunsplit(("https", parts.netloc, parts.path, parts.query, "")),
        )
    private = _private_kind(host)
    if private and not policy.allow_private:
        raise HostUrlProblem(
            f"The Host URL points at {private} ({host}). sislink refuses these unless the "
            "installation allows private addresses (SISLINK_ALLOW_PRIVATE_SIS=1)."
        )
    path = re.sub(r"/{2,}", "/", parts.path).rstrip("/")
    netloc = parts.netloc.lower()
    return urlunsplit((scheme, netloc, path, parts.query, ""))


def derive_urls(profile: Profile, host_url: str, policy: UrlPolicy | None = None) -> SisUrls:
    """The OneRoster root and token URL of `profile` for this Host URL, or HostUrlProblem."""
    host_url = normalise_host_url(host_url, policy)
    parts = urlsplit(host_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path
    _check_version(profile, host_url, path)
    suffix = profile.host_path_suffix.rstrip("/")
    base_path = _base_path(profile, host_url, origin, path, parts.query, suffix)
    values = {
        "origin": origin,
        "base": origin + base_path,
        "host_url": host_url,
    }
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    root_url = _fill(profile.root_url, values, query, profile)
    token_url = _fill(profile.token_url, values, query, profile) if profile.token_url else None
    return SisUrls(host_url=host_url, root_url=root_url, token_url=token_url)


def _check_version(profile: Profile, host_url: str, path: str) -> None:
    other = {"1.1": "/v1p2", "1.2": "/v1p1"}[profile.oneroster_version]
    if other in path:
        found = "1.2" if other == "/v1p2" else "1.1"
        raise HostUrlProblem(
            f"This is a OneRoster {found} address, but {profile.display_name} is set up for "
            f"OneRoster {profile.oneroster_version}. Use the address your SIS gives for "
            f"OneRoster {profile.oneroster_version}, or choose the OneRoster {found} profile."
        )


def _base_path(
    profile: Profile, host_url: str, origin: str, path: str, query: str, suffix: str
) -> str:
    """The Host URL's path without the part the profile expects at its end."""

    def with_query(url: str) -> str:
        return f"{url}?{query}" if query else url

    if suffix:
        at = path.find(suffix)
        if at >= 0:
            rest = path[at + len(suffix) :]
            if rest:
                raise HostUrlProblem(
                    f"The Host URL goes past the {profile.display_name} address (it ends in "
                    f"{rest!r}).",
                    suggestion=with_query(origin + path[: at + len(suffix)]),
                )
            return path[:at]
        marker = path.find(ONEROSTER_MARKER)
        start = path[:marker] if marker >= 0 else path
        if start.endswith("/api") and suffix.startswith("/api"):
            start = start[: -len("/api")]
        raise HostUrlProblem(
            f"A {profile.display_name} Host URL ends in {suffix}/ (for example "
            f"{profile.host_url_example}).",
            suggestion=with_query(origin + start + suffix + "/"),
        )
    marker = path.find(ONEROSTER_MARKER)
    if marker >= 0:
        raise HostUrlProblem(
            "The Host URL already contains the OneRoster path; enter the address before "
            f"{ONEROSTER_MARKER} (for example {profile.host_url_example}).",
            suggestion=with_query(origin + path[:marker]),
        )
    return path


_PLACEHOLDER = re.compile(r"\{(query:)?([A-Za-z_]+)\}")


def _fill(template: str, values: dict[str, str], query: dict[str, str], profile: Profile) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if match.group(1):
            if name not in query:
                raise HostUrlProblem(
                    f"The {profile.display_name} Host URL must end in ?{name}=... (for example "
                    f"{profile.host_url_example})."
                )
            return query[name]
        if name not in values:
            raise HostUrlProblem(
                f"The profile {profile.name} uses an unknown placeholder {{{name}}}."
            )
        return values[name]

    return _PLACEHOLDER.sub(replace, template)
