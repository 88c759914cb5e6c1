"""Vendor profiles of the built-in SIS: how each SIS's OneRoster API looks from outside, as data.

Each row reproduces what SIS-FACTS.md records of one SIS (paths, token URL, auth kinds,
extra headers, cookies, id prefixes, default category), so a consumer can be tested against
each quirk. Correct a profile here, never with `if profile == ...` in the server.
"""

from __future__ import annotations

from dataclasses import dataclass

from sislink.oneroster.versions import Version

OAUTH1 = "oauth1"
OAUTH2 = "oauth2"
CLIENT_AUTH_BASIC = "basic"  # RFC 6749 2.3.1: client id and secret by HTTP Basic
CLIENT_AUTH_POST = "post"  # client_secret_post: client_id and client_secret in the form body
CLIENT_AUTH_METHODS = (CLIENT_AUTH_BASIC, CLIENT_AUTH_POST)


@dataclass(frozen=True)
class VendorProfile:
    """One SIS's outside shape. Paths are relative to the server's origin (`http://host:port`)."""

    name: str
    version: Version
    auth_kinds: tuple[str, ...]  # accepted, the vendor's usual one first
    host_path: str  # what follows the origin in the Host URL an administrator types
    oneroster_prefix: str  # what precedes `/ims/oneroster` on this SIS
    token_path: str | None  # None: no OAuth 2 token endpoint (OAuth 1.0a only)
    token_query: str = ""  # query the token URL carries, e.g. Infinite Campus's appName
    required_token_query: tuple[
        str, ...
    ] = ()  # parameters the token endpoint refuses to go without
    scope_required: bool = False  # the token request must name at least one scope
    affinity_cookie: str | None = None  # cookie set by the token response, required afterwards
    gradebook_header: str | None = None  # header gradebook calls must carry ("key:secret")
    staff_id_prefix: str = ""  # prepended to teacher sourcedIds (Aeries: TCH_)
    default_category: str | None = None  # category title a lineItem without one falls into
    # How a PUT that updates an existing object is answered. 1EdTech's OpenAPI (1.2) lists
    # only 201, with no body, for every PUT; a SIS may answer 200 with the object instead
    # (what Google's notebook first expects), so a profile says which its SIS does.
    update_status: int = 201
    put_answers_body: bool = False  # the PUT answer carries the object as stored
    # How the token endpoint takes the client id and secret (RFC 6749 section 2.3.1):
    # "basic" (HTTP Basic) and/or "post" (client_id and client_secret in the form body).
    client_auth: tuple[str, ...] = ("basic", "post")
    note: str = ""

    @property
    def versions(self) -> tuple[Version, ...]:
        """The OneRoster versions this SIS serves: only its own (a 1.1 SIS answers 404 on
        the 1.2 paths, and the reverse)."""
        return (self.version,)

    def host_url(self, origin: str) -> str:
        return origin.rstrip("/") + self.host_path

    def base_url(self, origin: str) -> str:
        """The OneRoster root: `/rostering/v1p2/...` (1.2) or `/v1p1/...` (1.1) hang from it."""
        return origin.rstrip("/") + self.oneroster_prefix + "/ims/oneroster"

    def token_url(self, origin: str) -> str:
        """The OAuth 2 token URL; empty when this SIS signs every request with OAuth 1.0a instead."""
        if self.token_path is None:
            return ""
        query = f"?{self.token_query}" if self.token_query else ""
        return origin.rstrip("/") + self.token_path + query


PROFILES: dict[str, VendorProfile] = {
    p.name: p
    for p in (
        VendorProfile(
            name="generic-1.1",
            version=Version.V1_1,
            auth_kinds=(OAUTH1, OAUTH2),
            host_path="",
            oneroster_prefix="",
            token_path="/oauth2/token",  # noqa: S106
            note="OneRoster 1.1, OAuth 1.0a signed requests (OAuth 2 bearer tokens accepted too).",
        ),
        VendorProfile(
            name="generic-1.2",
            version=Version.V1_2,
            auth_kinds=(OAUTH2,),
            host_path="",
            oneroster_prefix="",
            token_path="/oauth2/token",  # noqa: S106
            note="OneRoster 1.2, OAuth 2 client credentials.",
        ),
        VendorProfile(
            name="infinite-campus",
            update_status=200,  # as Google's notebook first expects (unconfirmed)
            put_answers_body=True,
            version=Version.V1_2,
            auth_kinds=(OAUTH2,),
            host_path="/campus?appName=sislink",  # the Campus address and the district's appName
            oneroster_prefix="/campus/api",
            token_path="/campus/oauth2/token",  # noqa: S106
            token_query="appName=sislink",  # noqa: S106
            required_token_query=("appName",),
            gradebook_header="x-vendor-authorization",
            note="Campus.2235 paths; gradebook calls need x-vendor-authorization: key:secret.",
        ),
        VendorProfile(
            name="skyward",
            update_status=200,  # as Google's notebook first expects (unconfirmed)
            put_answers_body=True,
            version=Version.V1_1,
            auth_kinds=(OAUTH2, OAUTH1),
            host_path="/api/ims/oneroster/v1p1",  # Application URL + /api/ims/oneroster/v1p1/
            oneroster_prefix="/api",
            token_path="/oauth2/token",  # noqa: S106
            default_category="Assignments",
            note="Application URL + /api/ims/oneroster/v1p1/; lineItems without a category go to Assignments.",
        ),
        VendorProfile(
            name="aspen",
            update_status=200,  # as Google's notebook first expects (unconfirmed)
            put_answers_body=True,
            version=Version.V1_1,
            auth_kinds=(OAUTH2,),
            host_path="",
            oneroster_prefix="",
            token_path="/oauth/rest/v2.0/auth",  # noqa: S106
            note="Follett Aspen: OAuth 2 with a client identifier and client secret.",
        ),
        VendorProfile(
            name="aeries",
            update_status=200,  # as Google's notebook first expects (unconfirmed)
            put_answers_body=True,
            version=Version.V1_1,
            auth_kinds=(OAUTH2,),
            host_path="/aeries",
            oneroster_prefix="/aeries",
            token_path="/aeries/token",  # noqa: S106
            scope_required=True,
            affinity_cookie="AWSALB",
            staff_id_prefix="TCH_",
            note="Token at base + /token, a scope must be sent, the token response's cookie is required.",
        ),
    )
}


def profile_named(name: str) -> VendorProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"Unknown SIS profile {name!r}; choose one of: {', '.join(PROFILES)}"
        ) from None
