"""A sign-in provider's answers are read at most MAX_ANSWER_BYTES and the protocol's time in all
(not only per read): a provider, or whatever answers at its address, that sends without end or
dribbles a byte at a time gets one sentence on the sign-in page, not a console thread and its
memory for as long as it likes. The provider is `hostile.hostile_sis.HostileSIS`, a raw HTTP
server on loopback that can misbehave that way."""

from __future__ import annotations

import json
from typing import Any

import pytest
from joserfc.jwk import ECKey

from hostile.hostile_sis import HostileSIS, Received, Reply
from sislink.classroom.models import OidcProvider
from sislink.classroom.services.sign_in import PendingSignIn, SignInRefused
from sislink.console.oidc import MAX_ANSWER_BYTES, OidcProtocol

TIME_ALLOWED_S = 1.0


def _discovery(origin: str) -> dict[str, Any]:
    return {
        "issuer": origin,
        "authorization_endpoint": f"{origin}/authorize",
        "token_endpoint": f"{origin}/token",
        "jwks_uri": f"{origin}/jwks",
    }


def _provider(bad_path: str, bad: Reply) -> Any:
    """Answers the discovery document, an empty key set and a token; `bad_path` misbehaves."""

    def shape(request: Received) -> Reply:
        if request.path == bad_path:
            return bad
        origin = f"http://{request.headers['host']}"
        if request.path == "/.well-known/openid-configuration":
            body = _discovery(origin)
        elif request.path == "/jwks":
            body = KEY_SET
        else:
            body = {"id_token": "x.y.z", "access_token": "a"}
        return Reply(200, {"Content-Type": "application/json"}, json.dumps(body).encode())

    return shape


ENDLESS = Reply(200, {"Content-Type": "application/json"}, b" " * 65536, endless=True)
DRIBBLED = Reply(200, {"Content-Type": "application/json"}, b'{"issuer": "x"' + b" " * 200)
DRIBBLED.dribble_every_s = 0.05
# Its Content-Length says more than the bound: refused before its body is read.
TOO_LONG_SAID = Reply(200, {"Content-Type": "application/json"}, b" " * (MAX_ANSWER_BYTES + 1))
KEY_SET = {"keys": [ECKey.generate_key("P-256").as_dict(private=False)]}


def _sign_in_steps(protocol: OidcProtocol, issuer: str) -> None:
    discovery = protocol.discover(issuer)
    protocol.keys(discovery)
    provider = OidcProvider(name="School accounts", issuer=issuer, client_id="sislink")
    pending = PendingSignIn(1, "nonce", "verifier", "http://127.0.0.1/cb", "/")
    protocol.exchange_code(provider, "secret", discovery, pending, "code")


@pytest.mark.parametrize("path", ["/.well-known/openid-configuration", "/jwks", "/token"])
@pytest.mark.parametrize(
    ("bad", "said"),
    [
        (ENDLESS, "was larger than 1 MiB"),
        (DRIBBLED, f"took longer than {TIME_ALLOWED_S:g} s"),
        (TOO_LONG_SAID, "was larger than 1 MiB"),
    ],
    ids=["endless", "dribbled", "too-long-said"],
)
def test_an_answer_without_end_or_dribbled_is_refused_with_a_sentence_in_bounded_time(
    path: str, bad: Reply, said: str
) -> None:
    with HostileSIS(_provider(path, bad)) as provider:
        protocol = OidcProtocol(timeout_s=TIME_ALLOWED_S)
        with pytest.raises(SignInRefused) as refused:
            _sign_in_steps(protocol, provider.origin)
    # Said, so bounded: without the bounds the endless answer is read for ever, and the
    # dribbled one (11 s at a byte per 0.05 s) in full, then refused for another reason.
    assert said in refused.value.message
    assert "try again in a minute" in refused.value.message


def test_a_well_behaved_provider_still_gets_through_every_step() -> None:
    with HostileSIS(_provider("/nowhere", ENDLESS)) as provider:
        protocol = OidcProtocol(timeout_s=TIME_ALLOWED_S)
        _sign_in_steps(protocol, provider.origin)
