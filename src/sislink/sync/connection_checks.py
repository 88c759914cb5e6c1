"""What Authorise asks the SIS, and each way it can fail turned into one sentence saying what to do.

The calls are real and few: a token (or a signed request), `teachers?limit=1`, a gradebook
read (`lineItems?limit=1`) to prove the gradebook scopes, and the district org, which fixes the
SIS identity. Every consumer error maps to one `AuthorisationFailed(problem, message)`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from sislink.oneroster.consumer import (
    AuthenticationFailed,
    BadRequest,
    ConnectionSettings,
    MalformedResponse,
    NotFound,
    OAuth1Settings,
    OAuth2Settings,
    OneRosterClient,
    OneRosterError,
    PermissionDenied,
    RateLimited,
    SISDown,
    SISTimeout,
    SISUnreachable,
    StatusError,
    TokenRequestFailed,
    where,
)
from sislink.oneroster.consumer.exceptions import TokenRefused, TokenResponseInvalid
from sislink.oneroster.versions import CLASSROOM_SCOPES, Service, Version, spec_for
from sislink.partners import CLIENT_AUTH_WORDS, HostUrlProblem, Profile, derive_urls
from sislink.sync.errors import AuthorisationFailed
from sislink.sync.sis_client import STORED_URL_POLICY

DEFAULT_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class CheckTiming:
    """One call Authorise made, and how long it took."""

    step: str
    latency_ms: float


@dataclass(frozen=True)
class SisAnswer:
    """What the SIS showed when it accepted the connection."""

    district_sourced_id: str
    district_name: str
    steps: tuple[CheckTiming, ...]


def settings_for_authorise(settings: ConnectionSettings, timeout_s: float) -> ConnectionSettings:
    """The same settings, impatient: Authorise must answer quickly and precisely, not wait."""
    return dataclasses.replace(
        settings,
        max_retries=1,
        backoff_base_s=0.1,
        backoff_max_s=0.5,
        connect_timeout_s=timeout_s,
        read_timeout_s=timeout_s,
        # The whole answer too (a body dribbled a byte at a time), and both attempts together.
        request_deadline_s=timeout_s,
        call_deadline_s=2 * timeout_s,
        max_retry_after_s=2.0,
    )


async def check_sis(settings: ConnectionSettings, chosen: Profile, host_url: str) -> SisAnswer:
    """Make Authorise's calls; AuthorisationFailed (one precise problem) if any fails."""
    steps: list[CheckTiming] = []
    try:
        async with OneRosterClient(settings) as sis:
            started = time.perf_counter()
            granted = await sis.authenticate()
            if isinstance(settings.auth, OAuth2Settings):
                steps.append(CheckTiming("token", _ms(started)))
            if granted is not None:
                # Scopes of the other version say which version the SIS speaks, before its
                # 404s on this version's paths could be read as a wrong address.
                _check_granted_scopes(settings, granted, versions_only=True)
            started = time.perf_counter()
            await sis.page("teachers", limit=1)
            steps.append(CheckTiming("teachers", _ms(started)))
            started = time.perf_counter()
            await sis.page("line_items", limit=1)
            steps.append(CheckTiming("gradebook", _ms(started)))
            if granted is not None:
                _check_granted_scopes(settings, granted)
            started = time.perf_counter()
            district_id, district_name = await _district(sis)
            steps.append(CheckTiming("district", _ms(started)))
    except OneRosterError as exc:
        raise await problem_for(exc, settings, chosen, host_url) from None
    return SisAnswer(district_id, district_name, tuple(steps))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def _check_granted_scopes(
    settings: ConnectionSettings, granted: str, *, versions_only: bool = False
) -> None:
    asked = settings.scope_string().split()
    have = set(granted.split())
    missing = [uri for uri in asked if uri not in have]
    version = settings.spec.version
    other = Version.V1_1 if version is Version.V1_2 else Version.V1_2
    if missing and have and have <= set(spec_for(other).scope_uris(CLASSROOM_SCOPES)):
        raise AuthorisationFailed(
            "wrong_version",
            f"The SIS granted OneRoster {other.value} scopes, not {version.value} ones: it speaks "
            f"OneRoster {other.value}. Choose a OneRoster {other.value} profile (for example "
            f"generic-{other.value}), or ask your SIS for its {version.value} service.",
        )
    if missing and not versions_only:
        raise AuthorisationFailed(
            "missing_scope",
            f"The SIS accepted the credentials but did not grant the scope(s) "
            f"{', '.join(missing)}. Ask the SIS administrator to grant them to this client: "
            f"sislink needs {', '.join(CLASSROOM_SCOPES)}.",
        )


async def _district(sis: OneRosterClient) -> tuple[str, str]:
    """The district org: an org of type district; else the first school's parent; else the
    first org. The SIS identity is the partner plus its sourcedId."""
    try:
        page = await sis.page("orgs", limit=1, filter=where("type", "=", "district"))
        if page.records:
            return _org(page.records[0])
    except BadRequest:
        pass  # a SIS that cannot filter orgs by type: look further
    schools = await sis.page("schools", limit=1)
    if schools.records:
        parent = schools.records[0].get("parent")
        if isinstance(parent, dict) and parent.get("sourcedId"):
            return str(parent["sourcedId"]), ""
    orgs = await sis.page("orgs", limit=1)
    if orgs.records:
        return _org(orgs.records[0])
    raise AuthorisationFailed(
        "no_district",
        "The SIS lists no organisations (orgs and schools are empty), so sislink cannot tell "
        "which district it is. Ask the SIS administrator to share the district and its schools "
        "with this client.",
    )


def _org(record: dict[str, object]) -> tuple[str, str]:
    sourced_id = record.get("sourcedId")
    if not isinstance(sourced_id, str) or not sourced_id:
        raise AuthorisationFailed(
            "not_oneroster",
            "The SIS sent an organisation without a sourcedId, which OneRoster requires; ask "
            "the SIS vendor to fix its orgs endpoint.",
        )
    return sourced_id, str(record.get("name") or "")


async def problem_for(
    exc: OneRosterError, settings: ConnectionSettings, chosen: Profile, host_url: str
) -> AuthorisationFailed:
    """The one precise failure, with what to do, for a consumer error met while authorising."""
    labels = chosen.labels
    host = urlsplit(host_url).netloc
    token_url = settings.auth.token_url if isinstance(settings.auth, OAuth2Settings) else None
    at_token = token_url is not None and getattr(exc, "path", None) == urlsplit(token_url).path
    if isinstance(exc, SISTimeout):
        return AuthorisationFailed(
            "timeout",
            f"The SIS at {host} did not answer in time ({settings.read_timeout_s:g} s). Try "
            "again later; if it keeps happening, check the Host URL, or ask your SIS vendor "
            "whether its OneRoster service is up.",
        )
    if isinstance(exc, SISUnreachable):
        return _unreachable(exc, host)
    if isinstance(exc, SISDown):
        return AuthorisationFailed(
            "sis_error",
            f"The SIS at {host} failed on every attempt; it looks down. Try again later, or ask "
            "your SIS vendor.",
        )
    if isinstance(exc, TokenResponseInvalid):
        return AuthorisationFailed(
            "wrong_token_url",
            f"The token URL {token_url} answered, but not with an OAuth 2 token: "
            f"{exc.message}",
        )
    if isinstance(exc, TokenRequestFailed):
        if "invalid_scope" in exc.message:
            # A 1.1 server refuses 1.2 scope names (and the reverse): say which version it is.
            other = await _other_version_hint(settings, chosen)
            if other is not None:
                return AuthorisationFailed(
                    "wrong_version",
                    f"The SIS refused the OneRoster {settings.spec.version.value} scopes. {other}",
                )
        return _token_problem(exc, settings, chosen, token_url or "")
    if isinstance(exc, AuthenticationFailed):
        return _refused(exc, settings, chosen)
    if isinstance(exc, PermissionDenied):
        scope = exc.missing_scope or "a gradebook or roster scope"
        return AuthorisationFailed(
            "missing_scope",
            f"The credentials work but lack the scope {scope} ({exc.status_code} on "
            f"{exc.method} {exc.path}). Ask the SIS administrator to grant it to this client: "
            f"sislink needs {', '.join(CLASSROOM_SCOPES)}.",
        )
    if isinstance(exc, NotFound):
        return await _wrong_path(exc, settings, chosen, host_url)
    if isinstance(exc, MalformedResponse):
        if at_token:
            return AuthorisationFailed(
                "wrong_token_url",
                f"The token URL {token_url} answered, but not with an OAuth 2 token (it is not "
                "a token endpoint). Check the Token URL your SIS gives for OneRoster.",
            )
        what = "a web page, not JSON" if "not JSON" in exc.message else "JSON that is not OneRoster"
        return AuthorisationFailed(
            "not_oneroster",
            f"The address answered {exc.method} {exc.path} with {what}: this is not a "
            f"OneRoster SIS. The {labels.host_url} probably points at the SIS's web site, not "
            f"its OneRoster API; it should look like {chosen.host_url_example}.",
        )
    if isinstance(exc, RateLimited):
        return AuthorisationFailed(
            "rate_limited",
            f"The SIS asked sislink to slow down ({exc.status_code}) even on the first calls. "
            "Wait a few minutes and authorise again.",
        )
    if isinstance(exc, StatusError):
        return AuthorisationFailed(
            "sis_error",
            f"The SIS answered {exc.status_code} to {exc.method} {exc.path}: {exc.message}. "
            "Try again later; if it persists, send this message to your SIS vendor.",
        )
    return AuthorisationFailed("sis_error", f"The SIS could not be used: {exc.message}")


def _unreachable(exc: SISUnreachable, host: str) -> AuthorisationFailed:
    text = exc.message.lower()
    if "does not resolve" in text or "name or service not known" in text:
        return AuthorisationFailed(
            "dns",
            f"The SIS host name {urlsplit('//' + host).hostname} was not found (it does not "
            "resolve). Check the Host URL for typos; copy it again from your SIS.",
        )
    if "ssl" in text or "certificate" in text or "tls" in text:
        return AuthorisationFailed(
            "tls",
            f"The secure (TLS) connection to {host} failed: its certificate is not trusted or "
            "it does not speak https there. Check the Host URL (https:// and the right port) "
            "and ask your SIS vendor whether its certificate is valid.",
        )
    if "refused" in text:
        return AuthorisationFailed(
            "refused",
            f"Nothing answers at {host} (connection refused). Check the Host URL and its port, "
            "and that the SIS is running.",
        )
    return AuthorisationFailed(
        "unreachable",
        f"sislink could not reach the SIS at {host} ({exc.message}). Check the Host URL, and "
        "that this server may connect to it (firewall, proxy).",
    )


def _token_problem(
    exc: TokenRequestFailed, settings: ConnectionSettings, chosen: Profile, token_url: str
) -> AuthorisationFailed:
    """What the token endpoint's refusal means. A 4xx is the SIS saying no: its words are
    shown (RFC 6749's `error` and `error_description`) and waiting would not change it."""
    labels = chosen.labels
    error = exc.error if isinstance(exc, TokenRefused) else None
    words = ""
    if isinstance(exc, TokenRefused):
        words = ": ".join(x for x in (exc.error, exc.error_description) if x)
    said = f" The token endpoint said: {words}." if words else ""
    if exc.status_code == 404 or exc.status_code == 405:
        where_from = (
            f"the {labels.host_url} may be wrong (it should look like {chosen.host_url_example})"
            if chosen.token_url
            else "check the Token URL your SIS gives for OneRoster"
        )
        return AuthorisationFailed(
            "wrong_token_url",
            f"There is no token endpoint at {token_url} ({exc.status_code}): {where_from}.",
        )
    if error == "invalid_scope" or (error is None and "invalid_scope" in exc.message):
        asked = settings.scope_string() or "(none)"
        return AuthorisationFailed(
            "missing_scope",
            f"The SIS refused the scope(s) sislink asked for: {asked}.{said} Ask the SIS "
            "administrator to grant them to this client (sislink needs "
            f"{', '.join(CLASSROOM_SCOPES)}).",
        )
    method = settings.auth.credentials_in if isinstance(settings.auth, OAuth2Settings) else ""
    sent, other = ("post", "basic") if method == "form" else ("basic", "post")
    how = (
        f" sislink sent them {CLIENT_AUTH_WORDS[sent]}; if both are right, your SIS may want "
        f"them {CLIENT_AUTH_WORDS[other]}: connect again with client authentication {other} "
        f"(--client-auth {other})."
    )
    if exc.status_code == 401 or error in ("invalid_client", "unauthorized_client"):
        return AuthorisationFailed(
            "wrong_credentials",
            f"The SIS refused the {labels.access_key} or the {labels.secret_code} (the token "
            f"request answered {exc.status_code}).{said} Copy both again from your SIS (the "
            f"{labels.secret_code.lower()} may have been regenerated) and connect again.{how}",
        )
    if 400 <= exc.status_code < 500:
        return AuthorisationFailed(
            "token_refused",
            f"The SIS's token endpoint refused to issue a token ({exc.status_code} on POST "
            f"{exc.path}).{said or ' It did not say why.'} Check the Token URL and the "
            f"credentials with your SIS vendor; sislink asked for the scopes "
            f"{settings.scope_string() or '(none)'}.{how}",
        )
    return AuthorisationFailed(
        "sis_error",
        f"The SIS's token endpoint failed ({exc.status_code}).{said} Try again later; if it "
        "persists, ask your SIS vendor.",
    )


def _refused(
    exc: AuthenticationFailed, settings: ConnectionSettings, chosen: Profile
) -> AuthorisationFailed:
    labels = chosen.labels
    gradebook_root = settings.service_url(Service.GRADEBOOK)
    if settings.gradebook_headers and urlsplit(gradebook_root).path in exc.path:
        names = ", ".join(settings.gradebook_headers)
        return AuthorisationFailed(
            "wrong_credentials",
            f"The SIS accepted the {labels.access_key} for rostering but refused the gradebook "
            f"call (401 on {exc.method} {exc.path}): the vendor key sent in {names} is wrong. "
            f"Copy it again from {chosen.display_name} (key:secret) and connect again.",
        )
    extra = (
        " With OAuth 1.0a, also check that this server's clock is right."
        if isinstance(settings.auth, OAuth1Settings)
        else ""
    )
    return AuthorisationFailed(
        "wrong_credentials",
        f"The SIS refused the {labels.access_key} or the {labels.secret_code} (401 on "
        f"{exc.method} {exc.path}). Copy both again from your SIS (the "
        f"{labels.secret_code.lower()} may have been regenerated) and connect again.{extra}",
    )


async def _wrong_path(
    exc: NotFound, settings: ConnectionSettings, chosen: Profile, host_url: str
) -> AuthorisationFailed:
    looked = f"{exc.method} {exc.path}"
    hint = await _path_that_works(settings, chosen, host_url)
    return AuthorisationFailed(
        "wrong_path",
        f"There is no OneRoster {settings.spec.version.value} endpoint at this address "
        f"(404 on {looked}). {hint}",
    )


async def _path_that_works(settings: ConnectionSettings, chosen: Profile, host_url: str) -> str:
    """Probe a few likely addresses (unauthenticated GETs) to say which would work."""
    version = settings.spec.version
    other = await _other_version_hint(settings, chosen)
    if other is not None:
        return other
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S, follow_redirects=False) as http:
        for candidate in _shorter_host_urls(host_url):
            try:
                urls = derive_urls(chosen, candidate, STORED_URL_POLICY)
            except HostUrlProblem:
                continue
            if await _answers_oneroster(http, _teachers_url(urls.root_url, version)):
                return f"OneRoster answers with the {chosen.labels.host_url} {candidate}: use it."
    return (
        f"Check the {chosen.labels.host_url}: it should look like {chosen.host_url_example} "
        "(the address before /ims/oneroster)."
    )


async def _other_version_hint(settings: ConnectionSettings, chosen: Profile) -> str | None:
    """What to do when the SIS speaks the other OneRoster version at the same root."""
    version = settings.spec.version
    other = Version.V1_1 if version is Version.V1_2 else Version.V1_2
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S, follow_redirects=False) as http:
        if not await _answers_oneroster(http, _teachers_url(settings.root_url, other)):
            return None
    return (
        f"The SIS answers OneRoster {other.value} there, not {version.value}: choose a "
        f"OneRoster {other.value} profile (for example generic-{other.value}) instead of "
        f"{chosen.display_name}, or ask your SIS for its {version.value} address."
    )


def _teachers_url(root: str, version: Version) -> str:
    return f"{root}/{spec_for(version).service_roots[Service.ROSTERING]}/teachers?limit=1"


def _shorter_host_urls(host_url: str) -> list[str]:
    parts = urlsplit(host_url)
    segments = [s for s in parts.path.split("/") if s]
    query = f"?{parts.query}" if parts.query else ""
    origin = f"{parts.scheme}://{parts.netloc}"
    return [
        origin + "".join(f"/{s}" for s in segments[:n]) + query
        for n in range(len(segments) - 1, -1, -1)
    ]


async def _answers_oneroster(http: httpx.AsyncClient, url: str) -> bool:
    """True if `url` is a OneRoster endpoint: a JSON answer (200, or 401/403 asking for
    credentials), not a 404 or an HTML page."""
    try:
        response = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError:
        return False
    if response.status_code not in (200, 401, 403):
        return False
    return "json" in response.headers.get("content-type", "")
