"""Concurrent writers on SQLite queue for the write lock: none fails, no update is lost."""

from __future__ import annotations

import threading
from pathlib import Path

from sislink.classroom.db import open_classroom
from sislink.classroom.services.organisation import organisation


def test_concurrent_read_modify_write_transactions_neither_fail_nor_lose_updates(
    tmp_path: Path,
) -> None:
    classroom = open_classroom(f"sqlite:///{tmp_path / 'classroom.db'}")
    errors: list[BaseException] = []
    rounds = 25

    def increment_many() -> None:
        try:
            for _ in range(rounds):
                with classroom.transaction() as session:
                    found = organisation(session)
                    count = int(found.settings.get("count", 0))
                    found.settings = {"count": count + 1}
        except BaseException as error:  # collected and reported by the main thread
            errors.append(error)

    workers = [threading.Thread(target=increment_many) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with classroom.transaction() as session:
        assert organisation(session).settings == {"count": 3 * rounds}
    classroom.close()
    assert errors == []
