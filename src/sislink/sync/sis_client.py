"""From the stored SIS connection to a OneRoster client: settings, the SIS identity, a client.

The partner profile says how (version, auth kind, URL templates, page size, headers,
cookies); the stored connection says where and who (Host URL, token URL when the profile
cannot derive it, access key, sealed secrets). Secrets are opened only here, only into the
settings the consumer keeps out of its repr.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from sislink.classroom import Classroom, SecretBox
from sislink.classroom.models import ConnectionStatus, SisConnection
from sislink.classroom.services import connections
from sislink.oneroster.consumer import (
    ConfigurationError,
    ConnectionSettings,
    OAuth1Settings,
    OAuth2Settings,
    OneRosterClient,
)
from sislink.oneroster.consumer.settings import limits_from_environment
from sislink.oneroster.versions import CLASSROOM_SCOPES
from sislink.operations.metrics import observe_sis_call
from sislink.partners import (
    CLIENT_AUTH_WORDS,
    HostUrlProblem,
    Profile,
    UnknownPartner,
    UrlPolicy,
    derive_urls,
    profile,
)
from sislink.sync.errors import InvalidConnectionDetails, NotConnected
from sislink.sync.shared_limits import shared_gate, with_configured_limits

# The Host URL was checked against the installation's policy when it was saved; re-deriving
# later must not refuse it again (the profile may have been corrected since, which is the
# point of deriving each time).
STORED_URL_POLICY = UrlPolicy(allow_insecure=True, allow_private=True)


def partner_profile(name: str) -> Profile:
    """The partner profile, or InvalidConnectionDetails naming the choices."""
    try:
        return profile(name)
    except UnknownPartner as exc:
        raise InvalidConnectionDetails(str(exc)) from None


def build_settings(
    chosen: Profile,
    *,
    host_url: str,
    access_key: str,
    secret_code: str,
    token_url: str | None = None,
    extra_credentials: Mapping[str, str] | None = None,
    policy: UrlPolicy = STORED_URL_POLICY,
    client_auth: str | None = None,
) -> ConnectionSettings:
    """Consumer settings for `chosen` from what an administrator typed (checked, not called).
    `client_auth` ("basic" or "post") overrides how the profile sends OAuth 2 credentials."""
    try:
        return _build_settings(
            chosen,
            host_url=host_url,
            access_key=access_key,
            secret_code=secret_code,
            token_url=token_url,
            extra_credentials=extra_credentials,
            policy=policy,
            client_auth=client_auth,
        )
    except ConfigurationError as exc:
        raise InvalidConnectionDetails(exc.message) from None


def _build_settings(
    chosen: Profile,
    *,
    host_url: str,
    access_key: str,
    secret_code: str,
    token_url: str | None,
    extra_credentials: Mapping[str, str] | None,
    policy: UrlPolicy,
    client_auth: str | None,
) -> ConnectionSettings:
    try:
        urls = derive_urls(chosen, host_url, policy)
    except HostUrlProblem as exc:
        raise InvalidConnectionDetails(exc.message, exc.suggestion) from None
    auth: OAuth1Settings | OAuth2Settings
    if not access_key.strip() or not secret_code.strip():
        raise InvalidConnectionDetails(
            f"Give both the {chosen.labels.access_key} and the {chosen.labels.secret_code}."
        )
    method = effective_client_auth(chosen, client_auth)
    if chosen.auth == "oauth1":
        auth = OAuth1Settings(key=access_key, secret=secret_code)
    else:
        token = token_url or urls.token_url
        if not token:
            raise InvalidConnectionDetails(
                f"{chosen.display_name} needs the token URL (where sislink asks for an OAuth 2 "
                "token); your SIS shows it next to the client id. Give it as Token URL."
            )
        auth = OAuth2Settings(
            token_url=token,
            client_id=access_key,
            client_secret=secret_code,
            scopes=CLASSROOM_SCOPES,
            credentials_in="form" if method == "post" else "basic",
        )
    values = dict(extra_credentials or {})
    everywhere: dict[str, str] = {}
    gradebook: dict[str, str] = {}
    for header in chosen.extra_headers:
        try:
            value = header.value.format(**values)
        except KeyError as exc:
            raise InvalidConnectionDetails(
                f"{chosen.display_name} needs the {exc.args[0].replace('_', ' ')} for the "
                f"{header.name} header; give it when connecting."
            ) from None
        target = gradebook if set(header.services) == {"gradebook"} else everywhere
        target[header.name] = value
    return ConnectionSettings(
        version=chosen.oneroster_version,
        auth=auth,
        base_url=urls.root_url,
        page_size=chosen.page_size,
        extra_headers=everywhere,
        gradebook_headers=gradebook,
        keep_cookies=chosen.keep_cookies,
        # The bounds on the SIS's answers an administrator set (SISLINK_SIS_MAX_RECORDS, ...).
        **limits_from_environment(),
    )


def effective_client_auth(chosen: Profile, client_auth: str | None) -> str | None:
    """How the OAuth 2 token request sends the client id and secret: `client_auth` when given
    ("basic" or "post"), else the profile's; None for OAuth 1.0a, which has no token request."""
    if client_auth is not None and client_auth not in CLIENT_AUTH_WORDS:
        raise InvalidConnectionDetails(
            f"Client authentication is basic (HTTP Basic) or post (in the form body), not "
            f"{client_auth!r}."
        )
    if chosen.auth == "oauth1":
        if client_auth is not None:
            raise InvalidConnectionDetails(
                f"{chosen.display_name} signs every request with OAuth 1.0a and asks for no "
                "token; leave client authentication out."
            )
        return None
    return client_auth or chosen.client_auth


def settings_for(connection: SisConnection, box: SecretBox) -> ConnectionSettings:
    """Consumer settings for a stored connection, with its secrets opened from `box`."""
    if not connection.secret_code_sealed:
        raise NotConnected(
            "The SIS connection was disconnected and its secret erased; an administrator must "
            "connect again (sislink connect) and authorise."
        )
    return build_settings(
        partner_profile(connection.partner),
        host_url=connection.host_url,
        access_key=connection.access_key,
        secret_code=connections.secret_code(box, connection),
        token_url=connection.token_url,
        extra_credentials=connections.extra_credentials(box, connection),
        client_auth=connection.client_auth,
    )


def sis_identity(connection: SisConnection) -> str:
    """Partner plus district org sourcedId (never the URL): what SIS ids derive from."""
    identity = connection.sis_identity
    if identity is None:
        raise NotConnected(
            "The SIS connection has not been authorised yet, so sislink does not know which "
            "SIS district it is; an administrator must authorise it first (sislink authorise)."
        )
    return identity


def authorised_connection(classroom: Classroom) -> SisConnection:
    """The current connection if it is authorised, else NotConnected saying what to do."""
    with classroom.session() as session:
        connection = connections.current_connection(session)
    if connection is None:
        raise NotConnected(
            "sislink is not connected to a SIS; an administrator must connect it "
            "(sislink connect, then sislink authorise)."
        )
    if connection.status == ConnectionStatus.DISCONNECTED:
        raise NotConnected(
            "sislink was disconnected from the SIS; an administrator must connect again "
            "(sislink connect, then sislink authorise)."
        )
    if connection.status != ConnectionStatus.AUTHORISED:
        raise NotConnected(
            "The SIS connection is saved but not authorised yet; an administrator must "
            "authorise it (sislink authorise)."
        )
    return connection


@asynccontextmanager
async def open_sis_client(classroom: Classroom) -> AsyncIterator[OneRosterClient]:
    """A OneRoster client for the current authorised connection (NotConnected otherwise)."""
    connection = authorised_connection(classroom)
    settings = with_configured_limits(settings_for(connection, classroom.secret_box))
    # The connection's limits held across every worker, in Redis when there is one.
    gate = shared_gate(connection.id, settings)
    try:
        async with OneRosterClient(settings, gate=gate) as client:
            client.call_observers.append(observe_sis_call)  # Prometheus (operations/metrics.py)
            yield client
    finally:
        if gate is not None:
            await gate.aclose()
