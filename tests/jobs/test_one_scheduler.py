"""Only one scheduler fires a scheduled roster import, however many processes run one: two
processes tick at the same moment, round after round, and each round records one import.

Each round starts with the import due (the last round's jobs are removed); both processes wait
for the round's signal, then tick at once. Without the scheduler's turn (a PostgreSQL advisory
lock; a file lock on SQLite) both can find the import due before either records it, and two
imports run. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import delete, func, select

from connected_for_jobs import save_authorised_connection
from sislink.classroom import Classroom
from sislink.classroom.models import Job
from sislink.jobs.schedule import scheduler_turn
from sislink.sync.roster_holds import ROSTER_IMPORT

ROUNDS = 12
POLL_S = 0.005
POLLS = 20000

TICKER = """
import asyncio, sys, time
from pathlib import Path

from sislink.classroom import Actor, open_classroom
from sislink.classroom.secrets import SecretBox
from sislink.classroom.services.jobs import lock_key_for
from sislink.jobs.runner import run_job
from sislink.jobs.schedule import tick
from sislink.sync.roster_holds import ROSTER_IMPORT
from sislink.sync.sis_client import authorised_connection

url, go, done, rounds = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
room = open_classroom(url, secret_box=SecretBox.generate())


async def import_now(room):
    # The scheduled import's job, with work that asks nothing of a SIS.
    connection = authorised_connection(room)

    async def work(context):
        return {}

    return await run_job(
        room, kind=ROSTER_IMPORT, actor=Actor.system(), work=work,
        lock_key=lock_key_for(connection_id=connection.id), connection_id=connection.id,
        params={"connection_id": connection.id},
    )


for number in range(rounds):
    while go.read_text() != str(number):
        time.sleep(0.0005)
    asyncio.run(tick(room, import_now))
    with done.open("a") as said:
        said.write(f"{number}\\n")
room.close()
"""


def _imports(classroom: Classroom) -> int:
    with classroom.session() as session:
        return int(session.scalar(select(func.count()).where(Job.kind == ROSTER_IMPORT)) or 0)


def test_two_processes_ticking_at_once_fire_each_scheduled_import_once(
    classroom: Classroom, database_url: str, tmp_path: Path
) -> None:
    save_authorised_connection(classroom)
    go = tmp_path / "go"
    go.write_text("-1")
    done = [tmp_path / f"done-{n}" for n in range(2)]
    tickers = [
        subprocess.Popen(
            [sys.executable, "-c", TICKER, database_url, str(go), str(said), str(ROUNDS)],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        for said in done
    ]
    fired: list[int] = []
    try:
        for number in range(ROUNDS):
            go.write_text(str(number))
            for _ in range(POLLS):
                finished = [p.read_text().split() if p.exists() else [] for p in done]
                if all(str(number) in lines for lines in finished):
                    break
                assert all(t.poll() is None for t in tickers), "a ticking process ended"
                time.sleep(POLL_S)
            else:
                raise AssertionError(f"round {number} never finished")
            fired.append(_imports(classroom))
            with classroom.transaction() as session:  # due again for the next round
                session.execute(delete(Job).where(Job.kind == ROSTER_IMPORT))
    finally:
        for ticker in tickers:
            ticker.wait(timeout=60)
    assert all(t.returncode == 0 for t in tickers)
    assert fired == [1] * ROUNDS


def test_the_scheduler_turn_is_one_process_at_a_time(
    classroom: Classroom, database_url: str
) -> None:
    # One other process (started once) asks for the turn at each line it reads.
    probe = (
        "import sys\n"
        "from sislink.classroom import open_classroom\n"
        "from sislink.classroom.secrets import SecretBox\n"
        "from sislink.jobs.schedule import scheduler_turn\n"
        "room = open_classroom(sys.argv[1], secret_box=SecretBox.generate())\n"
        "for _ in sys.stdin:\n"
        "    with scheduler_turn(room) as mine:\n"
        "        print('mine' if mine else 'taken', flush=True)\n"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", probe, database_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert other.stdin is not None and other.stdout is not None

    def other_process_says() -> str:
        assert other.stdin is not None and other.stdout is not None
        other.stdin.write("turn?\n")
        other.stdin.flush()
        return other.stdout.readline().strip()

    try:
        with scheduler_turn(classroom) as mine:
            assert mine
            assert other_process_says() == "taken"
        assert other_process_says() == "mine"
    finally:
        other.stdin.close()
        other.wait(timeout=60)
    assert other.returncode == 0
