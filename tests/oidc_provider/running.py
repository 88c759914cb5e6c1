"""A real OpenID Connect provider for the sign-in tests: the npm package oidc-provider
(OpenID Certified), pinned in package-lock.json beside this file, run with the machine's
Node.js on 127.0.0.1 at a free port (server.js). `npm ci` installs it on first use (the npm
registry is reached the same way on developers' machines and CI); node_modules is not
committed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
_installing = threading.Lock()


def node_or_skip() -> str:
    """The node binary; outside CI a machine without Node.js skips these tests, in CI they fail."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            raise RuntimeError(
                "Node.js is needed for the sign-in tests (apt-get install nodejs npm)"
            )
        pytest.skip("Node.js is not installed (apt-get install nodejs npm)")
    return node


def install() -> None:
    """`npm ci` from the committed lock file, when node_modules is missing or older than it."""
    with _installing:
        marker = HERE / "node_modules" / ".package-lock.json"
        lock = HERE / "package-lock.json"
        if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
            return
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to install the test provider (apt-get install npm)")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HERE,
            check=True,
            timeout=300,
        )


@dataclass(frozen=True)
class Client:
    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": list(self.redirect_uris),
            "post_logout_redirect_uris": list(self.post_logout_redirect_uris),
        }


@contextmanager
def running_oidc_provider(
    clients: list[Client],
    accounts: dict[str, dict[str, object]],
    *,
    issuer_path: str = "",
    end_session_endpoint: str = "",
) -> Iterator[str]:
    """Start the provider with these clients and accounts; yields its issuer URL
    (`http://127.0.0.1:PORT` followed by `issuer_path`). `end_session_endpoint`: what its
    discovery document names instead of its own."""
    node = node_or_skip()
    install()
    env = {
        **os.environ,
        "OIDC_CLIENTS": json.dumps([client.as_json() for client in clients]),
        "OIDC_ACCOUNTS": json.dumps(accounts),
        "NODE_ENV": "test",
        "OIDC_ISSUER_PATH": issuer_path,
        "OIDC_END_SESSION": end_session_endpoint,
    }
    process = subprocess.Popen(
        [node, str(HERE / "server.js")],
        cwd=HERE,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        if not first.startswith("issuer="):
            raise RuntimeError(f"the test OpenID Connect provider did not start ({first!r})")
        yield first.removeprefix("issuer=")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
