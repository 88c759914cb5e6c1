"""A 429 or 503 whose Retry-After is not a number of seconds Python can sleep ("NaN", words, an
HTTP date) is retried with the client's own backoff, alone or in a batch: it never ends the call
with a raw error. Against a loopback server that answers so once, then as Classroom does."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sislink.googleclassroom import ClassroomClient, ClientSettings, ServiceAccountKey
from sislink.googleclassroom.emulator import RunningClassroom

BUSY = json.dumps(
    {
        "error": {
            "code": 503,
            "message": "The service is currently unavailable.",
            "status": "UNAVAILABLE",
        }
    }
).encode()
COURSES = json.dumps({"courses": [{"id": "1", "name": "Biology"}]})


class _OnceBusy(BaseHTTPRequestHandler):
    """Each path answers 503 with an odd Retry-After the first time, then succeeds."""

    seen: set[str] = set()
    retry_after = "NaN"

    def log_message(self, *_: object) -> None:
        pass

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _busy_first(self) -> bool:
        key = self.command + " " + self.path.split("?")[0]
        if key in self.seen:
            return False
        self.seen.add(key)
        self._answer(
            503,
            BUSY,
            {"Content-Type": "application/json", "Retry-After": type(self).retry_after},
        )
        return True

    def do_GET(self) -> None:
        if not self._busy_first():
            self._answer(200, COURSES.encode(), {"Content-Type": "application/json"})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if self._busy_first():
            return
        ids = re.findall(r"(?i)content-id:\s*<([^>]+)>", body)
        parts = "".join(
            f"--b\r\nContent-Type: application/http\r\nContent-ID: <response-{i}>\r\n\r\n"
            f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{COURSES}\r\n"
            for i in ids
        )
        self._answer(
            200, (parts + "--b--\r\n").encode(), {"Content-Type": "multipart/mixed; boundary=b"}
        )


@pytest.fixture(params=["NaN", "in a while", "Wed, 21 Oct 2026 07:28:00 GMT"])
def busy_server(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Handler", (_OnceBusy,), {"seen": set(), "retry_after": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_an_odd_retry_after_is_retried_with_backoff_alone_and_in_a_batch(
    local_classroom: RunningClassroom, busy_server: str
) -> None:
    key = ServiceAccountKey.from_file(local_classroom.key_file)  # tokens from the local one
    settings = ClientSettings(backoff_base_s=0.01, backoff_cap_s=0.05)
    with ClassroomClient(
        key, admin_email=local_classroom.admin_email, api_endpoint=busy_server, settings=settings
    ) as client:
        answer = client.execute(lambda s: s.courses().list())
        assert answer["courses"][0]["name"] == "Biology"
        (outcome,) = client.execute_many([lambda s: s.courses().list()])
        assert outcome.ok and outcome.result["courses"][0]["name"] == "Biology"
        assert client.retries == 2 and all(0 < wait <= 0.05 for wait in client.waits)
