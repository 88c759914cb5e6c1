"""Fixtures for OneRoster tests: a running built-in SIS over real HTTP, tokens, the official OpenAPI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from conftest import OPENAPI_DIR as SHARED_OPENAPI_DIR
from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.oneroster.versions import CLASSROOM_SCOPES, spec_for

OPENAPI_DIR = SHARED_OPENAPI_DIR


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def provider() -> Iterator[RunningProvider]:
    """A generic OneRoster 1.2 SIS with a small seeded district, shared by read-only tests."""
    with running_provider(profile="generic-1.2", students=200) as running:
        yield running


def get_token(
    provider: RunningProvider, scopes: tuple[str, ...] = CLASSROOM_SCOPES, version: str = "1.2"
) -> str:
    """A bearer token from the provider's token endpoint (client id and secret as HTTP Basic)."""
    response = httpx.post(
        provider.token_url,
        auth=(provider.client_id, provider.client_secret),
        data={
            "grant_type": "client_credentials",
            "scope": " ".join(spec_for(version).scope_uris(scopes)),
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


@pytest.fixture(scope="session")
def token(provider: RunningProvider) -> str:
    return get_token(provider)


@pytest.fixture(scope="session")
def http(provider: RunningProvider, token: str) -> Iterator[httpx.Client]:
    """An httpx client on the provider's OneRoster root, authorised with every classroom scope."""
    with httpx.Client(
        base_url=provider.base_url + "/", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


class OpenApi:
    """The official OneRoster 1.2 OpenAPI files, for validating response bodies."""

    def __init__(self) -> None:
        self.docs = {
            name: json.loads((OPENAPI_DIR / f"{name}.json").read_text())
            for name in ("rostering", "gradebook", "resources")
        }
        self.registry: Registry[Any] = Registry().with_resources(
            (f"urn:{name}", Resource.from_contents(doc, default_specification=DRAFT4))
            for name, doc in self.docs.items()
        )

    def response_schema(self, service: str, path: str, method: str, status: str) -> dict[str, Any]:
        """The schema 1EdTech gives for a response, as a $ref into the document."""
        responses = self.docs[service]["paths"][path][method]["responses"]
        response = responses.get(status) or responses["default"]
        schema = response["content"]["application/json"]["schema"]
        ref = schema["$ref"]
        return {"$ref": f"urn:{service}{ref}"}

    def validate(self, schema: dict[str, Any], instance: Any) -> None:
        validator = Draft4Validator(
            schema, registry=self.registry, format_checker=Draft4Validator.FORMAT_CHECKER
        )
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, "\n".join(
            f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:10]
        )

    def validate_named(self, service: str, name: str, instance: Any) -> None:
        self.validate({"$ref": f"urn:{service}#/components/schemas/{name}"}, instance)


@pytest.fixture(scope="session")
def openapi() -> OpenApi:
    return OpenApi()


@pytest.fixture(scope="session")
def fetch_token() -> Any:
    """`fetch_token(provider, scopes=CLASSROOM_SCOPES, version="1.2")` -> a bearer token."""
    return get_token
