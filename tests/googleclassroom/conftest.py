"""The local Classroom on loopback, started per test, and the two ways to reach it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from googleapiclient.discovery import Resource

from googleclassroom.google_world import google_service, sislink_client
from sislink.googleclassroom import ClassroomClient
from sislink.googleclassroom.emulator import RunningClassroom, running_classroom


@pytest.fixture
def local_classroom() -> Iterator[RunningClassroom]:
    with running_classroom(students=60) as running:
        yield running


@pytest.fixture
def service_as(local_classroom: RunningClassroom) -> Callable[[str], Resource]:
    """Google's client acting as an email (domain-wide delegation)."""
    return lambda email: google_service(local_classroom, email)


@pytest.fixture
def client(local_classroom: RunningClassroom) -> Iterator[ClassroomClient]:
    with sislink_client(local_classroom) as made:
        yield made
