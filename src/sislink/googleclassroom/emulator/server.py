"""Run the local Classroom: uvicorn in a background thread (tests, demo, benchmarks) or in front
(`sislink google serve`). Its own small plumbing, so googleclassroom/ needs nothing of oneroster/.

`running_classroom(...)` builds the domain (the built-in SIS's people for the same seed), makes
the Cloud project's service account key (its `token_uri` is this server's `/token`), writes the
key file, starts the server on a free loopback port and yields a `RunningClassroom` with what a
district's code needs: `api_url`, `key_file`, `admin_email`, `teacher_email`, `domain`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from sislink.googleclassroom.emulator.app import ClassroomConfig, LocalClassroom, create_app
from sislink.googleclassroom.emulator.backend import ClassroomBackend, StateFile
from sislink.googleclassroom.emulator.directory import Directory, seeded_directory
from sislink.googleclassroom.emulator.keys import Project, new_project

MAIN_PROJECT = "sislink-district"


@dataclass
class RunningClassroom:
    """A local Classroom that is up: where it is and how to get in."""

    api_url: str  # what client_options={"api_endpoint": ...} takes
    key_file: Path  # the service account key (private key inside: never print it)
    admin_email: str
    teacher_email: str
    domain: str
    classroom: LocalClassroom = field(repr=False)

    @property
    def backend(self) -> ClassroomBackend:
        return self.classroom.backend

    @property
    def directory(self) -> Directory:
        return self.classroom.backend.directory

    def lines(self) -> list[str]:
        """What `sislink google serve` prints first, one per line."""
        return [
            f"api_url: {self.api_url}",
            f"key_file: {self.key_file}",
            f"admin_email: {self.admin_email}",
            f"teacher_email: {self.teacher_email}",
            f"domain: {self.domain}",
        ]

    def new_project_key(self, name: str, directory: Path) -> Path:
        """Another Cloud project's service account key (delegated in the same domain): what
        Classroom sees as a different project, e.g. for @ProjectPermissionDenied."""
        backend = self.classroom.backend
        with backend.lock:
            number = len(backend.tables["project"]) + 1
            project = new_project(name, self.classroom.token_uri, number)
            backend.add_project(project)
        return write_key_file(project, directory / f"{name}.json")


def bind_socket(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP named so asyncio turns Nagle off on accepted sockets (no delayed-ACK stalls).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def write_key_file(project: Project, path: Path) -> Path:
    """Write a key file readable by its owner only (it holds a private key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(project.key_file, handle, indent=2)
    return path


def open_classroom(
    *,
    origin: str,
    seed: int = 7,
    students: int = 2000,
    schools: int | None = None,
    db_path: str | None = None,
    key_file: Path | None = None,
    config: ClassroomConfig | None = None,
) -> tuple[LocalClassroom, Path]:
    """The local Classroom's state (from `db_path` if it holds one) and its key file, for a
    server reached at `origin`. A kept project gets its key file's token_uri brought up to date."""
    directory = seeded_directory(seed, students, schools)
    backend = ClassroomBackend(directory, StateFile(db_path) if db_path else None)
    token_uri = f"{origin}/token"
    stored = backend.tables["project"].get(MAIN_PROJECT)
    if stored is None:
        project = new_project(MAIN_PROJECT, token_uri, 1)
    else:
        project = Project.from_json(stored)
        project = Project(
            **{**project.to_json(), "key_file": {**project.key_file, "token_uri": token_uri}}
        )
    backend.add_project(project)
    if key_file is None:
        base = Path(db_path).parent if db_path else Path(tempfile.mkdtemp(prefix="sislink-google-"))
        key_file = base / "google-service-account.json"
    write_key_file(project, key_file)
    return LocalClassroom(backend, config or ClassroomConfig(seed=seed), token_uri), key_file


def _running(classroom: LocalClassroom, key_file: Path, origin: str) -> RunningClassroom:
    directory = classroom.backend.directory
    return RunningClassroom(
        api_url=origin + "/",
        key_file=key_file,
        admin_email=directory.admin.email,
        teacher_email=directory.first_teacher.email,
        domain=directory.domain,
        classroom=classroom,
    )


@contextlib.contextmanager
def running_classroom(
    *,
    seed: int = 7,
    students: int = 200,
    schools: int | None = None,
    db_path: str | None = None,
    key_file: Path | None = None,
    config: ClassroomConfig | None = None,
    keep_alive_s: int = 5,
) -> Iterator[RunningClassroom]:
    """A local Classroom on 127.0.0.1 (a free port); stopped on exit. It closes a kept-alive
    connection after `keep_alive_s` idle (uvicorn's default, 5 s)."""
    sock = bind_socket("127.0.0.1", 0)
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    classroom, written = open_classroom(
        origin=origin,
        seed=seed,
        students=students,
        schools=schools,
        db_path=db_path,
        key_file=key_file,
        config=config,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(classroom),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=2,
            timeout_keep_alive=keep_alive_s,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="google-classroom"
    )
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("The local Classroom did not start; see the log above.")
            time.sleep(0.01)
        yield _running(classroom, written, origin)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        if classroom.backend.state is not None:
            classroom.backend.state.close()


def serve_forever(classroom: LocalClassroom, sock: socket.socket) -> None:
    """Serve in the foreground with an access log until interrupted (`sislink google serve`)."""
    server = uvicorn.Server(uvicorn.Config(create_app(classroom), log_level="info", lifespan="off"))
    try:
        server.run(sockets=[sock])
    finally:
        if classroom.backend.state is not None:
            classroom.backend.state.close()


def describe(classroom: LocalClassroom, key_file: Path, origin: str) -> RunningClassroom:
    """The lines a started server prints, for `sislink google serve`."""
    return _running(classroom, key_file, origin)


__all__ = [
    "ClassroomConfig",
    "RunningClassroom",
    "bind_socket",
    "describe",
    "open_classroom",
    "running_classroom",
    "serve_forever",
]
