"""Benchmark: roster import of a 50,000-student district from the built-in SIS over loopback HTTP.

The SIS runs in its own process on a file store seeded once per size in a temp dir (copied for
each database, so the RSS figures are the importer's own); each database runs in a child
process of its own. For each size (`--students 10000 50000`) and each way of writing:

- `sqlite`: SQLite, pages spooled to a temporary file and written after the last one (the
  default on SQLite: its one write lock is held only for the writes);
- `sqlite_streamed`: SQLite, each page written in the open transaction as it is read
  (`write_while_reading=True`: the lock held for the whole import);
- `postgresql`: PostgreSQL (postgresql://postgres@127.0.0.1:5432/test, a fresh schema; skipped
  with a note when unreachable), each page written as it is read (its default);

the child first pages through the same endpoints with the same client and writes nothing
(`page_through`), then runs the full import, then pages through again: `ratio` is the full
import over the mean of the two page-throughs, measured in the same run. Then it reads the
same pages again as the import's reader does (`iter_model_pages`, the models kept a batch of
DEFAULT_BATCH_SIZE at a time), writing nothing (`validated_read`): what reading alone costs
the import. Then, on PostgreSQL, what the database alone spends to insert those enrolments
with their keys (`postgresql_enrolment_floor`); then the same full import into another empty
classroom with its pages spooled and written only after the last one is read (`write_alone`:
its `writing_s` is what writing the district costs with no reading beside it, the floor of the
import's writer chain, and `ratio_write_alone_to_page_through` sets it beside the
page-through); a full import again where nothing changed
(`full_unchanged`, a district's nightly run); a delta with no change, and a delta after 1% of
the users were renamed and 1% of the enrolments marked tobedeleted. Peak RSS (VmHWM) is reset before each phase (/proc/self/clear_refs), so each
phase's peak is its own. On SQLite a probe thread writes one small row every 0.2 s from its
own connection throughout the full import: `other_writer_longest_wait_s` is how long the
console or a job would have waited for the write lock. The load average is recorded.

Each phase also says the CPU it cost (`cpu_s`): this process's (the importer, with SQLite
inside it), the SIS server's and, on PostgreSQL, the classroom's server backends'. The import,
the SIS and the database share this machine's cores, so their sum over the cores is the least
wall time the phase could take here however well everything overlapped
(`least_wall_on_this_machine_s`); `ratio_least_wall_of_full_to_page_through` sets that floor
of the full import beside the page-through.

Targets: full import <= 2x the page-through; peak RSS flat in the size of the district.

Run: .venv/bin/python benchmarks/roster_import.py [--students 10000 50000]
    [--only sqlite|sqlite_streamed|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
CLIENT_ID, CLIENT_SECRET = "bench", "bench-secret"

SERVER = """
import sys, time
from sislink.oneroster.provider.server import running_provider
from sislink.oneroster.provider.store import ProviderStore
store = ProviderStore(sys.argv[1])
with running_provider(store=store, client_id="bench", client_secret="bench-secret") as sis:
    print(sis.host_url, sis.token_url, flush=True)
    while True:
        time.sleep(3600)
"""


def seed(path: Path, students: int) -> float:
    from sislink.oneroster.provider.seed import seed_district
    from sislink.oneroster.provider.store import ProviderStore

    started = time.perf_counter()
    with ProviderStore(path) as store:
        seed_district(store, students=students)
    return time.perf_counter() - started


def change_one_percent(path: Path) -> dict[str, int]:
    """Rename 1% of users and mark 1% of enrolments tobedeleted, with a fresh dateLastModified."""
    from sislink.oneroster.models import format_datetime, utc_now
    from sislink.oneroster.provider.store import ProviderStore

    now = format_datetime(utc_now())
    with ProviderStore(path) as store:
        users = [
            {**u, "givenName": u["givenName"] + "-x", "dateLastModified": now}
            for i, u in enumerate(store.iter_all("user"))
            if i % 100 == 0
        ]
        enrolments = [
            {**e, "status": "tobedeleted", "dateLastModified": now}
            for i, e in enumerate(store.iter_all("enrollment"))
            if i % 100 == 0
        ]
        store.insert_many("user", users)
        store.insert_many("enrollment", enrolments)
    return {"users_renamed": len(users), "enrolments_deleted": len(enrolments)}


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and
    exec, so a child would report the seeding parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def reset_peak_rss() -> None:
    """Start this process's VmHWM again from its current RSS (Linux: clear_refs 5)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def rss_now_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


# The collections a full import reads, in its order (the built-in SIS's categories name their
# class, so no `classes/{id}/categories` call follows).
ENDPOINTS = {
    "schools": "org",
    "academic_sessions": "academicSession",
    "courses": "course",
    "classes": "class",
    "users": "user",
    "enrollments": "enrollment",
    "categories": "category",
}


async def page_through(classroom: Any, *, validated: bool = False) -> dict[str, Any]:
    """The same pages as a full import, with the same client, and nothing else: no writes,
    and no validation unless `validated` (then the pages are read as OneRoster models with
    `iter_model_pages` and kept a batch at a time, as the import's reader does: what reading
    alone costs the import)."""
    from sislink.sync.roster_import import DEFAULT_BATCH_SIZE
    from sislink.sync.sis_client import open_sis_client

    rss_at_start = rss_now_mb()
    reset_peak_rss()
    started = time.perf_counter()
    records = 0
    async with open_sis_client(classroom) as client:
        for endpoint in ENDPOINTS:
            if validated:
                # As the import's reader: a page at a time as models (and rejected records),
                # the models kept in a batch of DEFAULT_BATCH_SIZE until it is full.
                batch: list[Any] = []
                async for page in client.iter_model_pages(endpoint):
                    records += len(page.models) + len(page.rejected)
                    batch.extend(page.models)
                    if len(batch) >= DEFAULT_BATCH_SIZE:
                        batch = []
            else:
                async for _ in client.iter_records(endpoint):
                    records += 1
        requests = client.calls_made
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "records": records,
        "requests": requests,
        "rss_at_start_mb": rss_at_start,
        "peak_rss_mb": peak_rss_mb(),
    }


class LockProbe:
    """Writes one row every 0.2 s from a connection of its own; notes the longest wait."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.longest = 0.0
        self.writes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LockProbe:
        with sqlite3.connect(self.path) as db:
            db.execute("CREATE TABLE IF NOT EXISTS bench_probe (at REAL)")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, timeout=600, isolation_level=None)
        while not self._stop.is_set():
            asked = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO bench_probe VALUES (?)", (asked,))
            db.execute("COMMIT")
            self.longest = max(self.longest, time.perf_counter() - asked)
            self.writes += 1
            self._stop.wait(0.2)
        db.close()


async def one_import(
    classroom: Any, connection_id: int, full: bool, write_while_reading: bool | None = None
) -> dict[str, Any]:
    from sislink.sync.roster_import import import_roster
    from sislink.sync.sis_client import open_sis_client

    rss_at_start = rss_now_mb()
    reset_peak_rss()
    started = time.perf_counter()
    async with open_sis_client(classroom) as client:
        # Given only when asked: the same script measures the version before streaming too.
        chosen = {} if write_while_reading is None else {"write_while_reading": write_while_reading}
        report = await import_roster(
            classroom, client, connection_id=connection_id, full=full, **chosen
        )
    seconds = time.perf_counter() - started
    counts = report.to_dict()["counts"]
    return {
        "seconds": round(seconds, 2),
        "requests": report.requests,
        "status": report.status,
        "rss_at_start_mb": rss_at_start,
        "peak_rss_mb": peak_rss_mb(),
        "written": {
            entity: {k: v for k, v in c.items() if k != "unchanged" and v}
            for entity, c in counts.items()
            if any(v for k, v in c.items() if k != "unchanged")
        },
    }


async def write_alone(classroom: Any, connection_id: int, meter: CpuMeter) -> dict[str, Any]:
    """A full import into an empty classroom with its pages spooled and written only after the
    last one is read (SQLite's way, asked for on every database): the writes then run with no
    reading beside them, so `writing_s` (from the last page read to the end) is what writing
    the district costs by itself, the floor of the import's writer chain however well it
    overlaps the reading. `cpu_s` is the whole import's."""
    from sislink.sync.roster_import import import_roster
    from sislink.sync.sis_client import open_sis_client

    last_read = 0.0

    def progress(label: str, read: int, total: int | None) -> None:
        nonlocal last_read
        last_read = time.perf_counter()

    meter.start()
    started = time.perf_counter()
    async with open_sis_client(classroom) as client:
        report = await import_roster(
            classroom,
            client,
            connection_id=connection_id,
            full=True,
            progress=progress,
            write_while_reading=False,
        )
    ended = time.perf_counter()
    return {
        "seconds": round(ended - started, 2),
        "reading_s": round(last_read - started, 2),
        "writing_s": round(ended - last_read, 2),
        "status": report.status,
        "enrolments_created": report.counts["enrolments"].created,
        "cpu_s": meter.stop(),
    }


def connect(classroom: Any, host_url: str, token_url: str) -> int:
    """The built-in SIS saved and authorised in `classroom`; its connection's id."""
    from sislink.classroom import Actor
    from sislink.classroom.services import connections

    with classroom.transaction() as session:
        saved = connections.save_connection(
            session,
            Actor.system(),
            classroom.secret_box,
            partner="generic-1.2",
            version="1.2",
            host_url=host_url,
            access_key=CLIENT_ID,
            secret_code=CLIENT_SECRET,
            token_url=token_url,
        )
        connections.mark_authorised(session, Actor.system(), saved.id, district_sourced_id="d")
        return saved.id


APPLICATION_NAME = "sislink-roster-bench"


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process of this machine (None: gone or not readable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds spent during one phase by each of the three parties that share this
    machine's cores: this process (the importer: its reader, its writer thread and, on SQLite,
    the database), the SIS server's process and, on PostgreSQL, the server backends of the
    classroom's connections (found by their application_name). Their sum over the cores is
    the least wall time the phase could take on this machine, however well it overlapped."""

    def __init__(self, sis_pid: int, postgres_url: str | None) -> None:
        self.sis_pid = sis_pid
        self.postgres_url = postgres_url
        self._start: dict[str, float] = {}
        self._backends_start: dict[int, float] = {}

    def _backends(self) -> dict[int, float]:
        if self.postgres_url is None:
            return {}
        import psycopg

        with psycopg.connect(self.postgres_url, autocommit=True) as watcher:
            pids = [
                row[0]
                for row in watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                    (APPLICATION_NAME,),
                )
            ]
        return {pid: cpu for pid in pids if (cpu := process_cpu_s(pid)) is not None}

    def start(self) -> None:
        self._start = {
            "importer": time.process_time(),
            "sis": process_cpu_s(self.sis_pid) or 0.0,
        }
        self._backends_start = self._backends()

    def stop(self) -> dict[str, Any]:
        used: dict[str, Any] = {
            "importer": round(time.process_time() - self._start["importer"], 2),
            "sis": round((process_cpu_s(self.sis_pid) or 0.0) - self._start["sis"], 2),
        }
        if self.postgres_url is not None:
            # A backend opened during the phase started from nothing; one that closed during
            # it is not counted (the classroom's pool keeps its connections open).
            used["postgresql"] = round(
                sum(
                    cpu - self._backends_start.get(pid, 0.0)
                    for pid, cpu in self._backends().items()
                ),
                2,
            )
        used["total"] = round(sum(used.values()), 2)
        used["least_wall_on_this_machine_s"] = round(used["total"] / (os.cpu_count() or 1), 2)
        return used


def enrolment_insert_floor(classroom: Any) -> dict[str, Any]:
    """What PostgreSQL alone spends to insert the enrolments the full import wrote, with the
    enrolment table's own keys (its unique indexes and its two foreign keys), and nothing
    else: `INSERT ... SELECT` of every enrolment row into a table made like it, in a
    transaction rolled back. One import is one transaction, and one transaction is one
    server process working one statement at a time: however the import is written, its
    writes cannot take PostgreSQL less CPU than this, on one core."""
    from sqlalchemy import text

    with classroom.engine.connect() as connection:
        backend = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        rows = connection.execute(text("SELECT count(*) FROM enrolment")).scalar_one()
        connection.execute(text("CREATE TABLE enrolment_floor (LIKE enrolment INCLUDING ALL)"))
        connection.execute(
            text(
                "ALTER TABLE enrolment_floor"
                " ADD FOREIGN KEY (class_id) REFERENCES class (id),"
                " ADD FOREIGN KEY (person_id) REFERENCES person (id)"
            )
        )
        cpu_before = process_cpu_s(backend) or 0.0
        started = time.perf_counter()
        connection.execute(text("INSERT INTO enrolment_floor SELECT * FROM enrolment"))
        seconds = time.perf_counter() - started
        cpu = (process_cpu_s(backend) or 0.0) - cpu_before
        connection.rollback()
    return {"enrolments": rows, "seconds": round(seconds, 2), "postgresql_cpu_s": round(cpu, 2)}


def run_database(
    database_url: str,
    host_url: str,
    token_url: str,
    store_path: str,
    mode: str,
    sis_pid: str = "0",
) -> None:
    """Child process: page-through, the three imports, page-through again, against one
    database; prints one JSON line."""
    from sislink.classroom import open_classroom

    postgres_url = None
    if not database_url.startswith("sqlite"):
        postgres_url = POSTGRES_URL
        database_url = with_application_name(database_url)
    meter = CpuMeter(int(sis_pid), postgres_url)
    classroom = open_classroom(database_url)
    connection_id = connect(classroom, host_url, token_url)
    figures: dict[str, Any] = {"rss_before_mb": peak_rss_mb()}
    meter.start()
    figures["page_through"] = asyncio.run(page_through(classroom))
    figures["page_through"]["cpu_s"] = meter.stop()
    streamed = True if mode == "sqlite_streamed" else None  # None: the database's default
    meter.start()
    if classroom.dialect_name == "sqlite":
        with LockProbe(database_url.removeprefix("sqlite:///")) as probe:
            figures["full"] = asyncio.run(
                one_import(classroom, connection_id, full=True, write_while_reading=streamed)
            )
        figures["full"]["other_writer_longest_wait_s"] = round(probe.longest, 2)
        figures["full"]["other_writer_writes"] = probe.writes
    else:
        figures["full"] = asyncio.run(
            one_import(classroom, connection_id, full=True, write_while_reading=streamed)
        )
    figures["full"]["cpu_s"] = meter.stop()
    meter.start()
    figures["page_through_after"] = asyncio.run(page_through(classroom))
    figures["page_through_after"]["cpu_s"] = meter.stop()
    meter.start()
    figures["validated_read"] = asyncio.run(page_through(classroom, validated=True))
    figures["validated_read"]["cpu_s"] = meter.stop()
    mean_page_through = (
        figures["page_through"]["seconds"] + figures["page_through_after"]["seconds"]
    ) / 2
    figures["ratio_full_to_page_through"] = round(figures["full"]["seconds"] / mean_page_through, 2)
    figures["ratio_validated_read_to_page_through"] = round(
        figures["validated_read"]["seconds"] / mean_page_through, 2
    )
    # The least the full import could take here, all three parties' CPU spread over every
    # core with no wait at all, as a ratio to the page-through: the ratio no rewrite of the
    # import's overlap can beat on this machine without spending less CPU somewhere.
    figures["ratio_least_wall_of_full_to_page_through"] = round(
        figures["full"]["cpu_s"]["least_wall_on_this_machine_s"] / mean_page_through, 2
    )
    if postgres_url is not None:
        figures["postgresql_enrolment_floor"] = enrolment_insert_floor(classroom)
    figures["write_alone"] = write_alone_in_empty_classroom(
        database_url, host_url, token_url, meter
    )
    figures["ratio_write_alone_to_page_through"] = round(
        figures["write_alone"]["writing_s"] / mean_page_through, 2
    )
    # A district's nightly full import, where nothing changed since the last: every record
    # read, looked up and found equal, nothing written.
    meter.start()
    figures["full_unchanged"] = asyncio.run(one_import(classroom, connection_id, full=True))
    figures["full_unchanged"]["cpu_s"] = meter.stop()
    figures["ratio_full_unchanged_to_page_through"] = round(
        figures["full_unchanged"]["seconds"] / mean_page_through, 2
    )
    figures["delta_unchanged"] = asyncio.run(one_import(classroom, connection_id, full=False))
    figures["changed"] = change_one_percent(Path(store_path))
    figures["delta_1_percent"] = asyncio.run(one_import(classroom, connection_id, full=False))
    classroom.close()
    print(json.dumps(figures))


def with_application_name(database_url: str) -> str:
    """A PostgreSQL URL whose connections `CpuMeter` finds by their application_name."""
    from sqlalchemy.engine import make_url

    return (
        make_url(database_url)
        .update_query_dict({"application_name": APPLICATION_NAME})
        .render_as_string(hide_password=False)
    )


def write_alone_in_empty_classroom(
    database_url: str, host_url: str, token_url: str, meter: CpuMeter
) -> dict[str, Any]:
    """`write_alone` in a classroom of its own, empty like the first full import's (a new
    schema on PostgreSQL, a new file on SQLite), dropped afterwards."""
    from sislink.classroom import open_classroom

    schema = None
    with tempfile.TemporaryDirectory() as tmp:
        if database_url.startswith("sqlite"):
            url = f"sqlite:///{Path(tmp) / 'classroom-write-alone.db'}"
        else:
            scoped, schema = postgres_schema_url()
            assert scoped is not None, schema
            url = with_application_name(scoped)
        classroom = open_classroom(url)
        try:
            connection_id = connect(classroom, host_url, token_url)
            return asyncio.run(write_alone(classroom, connection_id, meter))
        finally:
            classroom.close()
            if schema is not None:
                drop_schema(schema)


def postgres_schema_url() -> tuple[str | None, str]:
    try:
        from sqlalchemy import create_engine, text

        from sislink.classroom.db import normalise_database_url

        base = normalise_database_url(POSTGRES_URL)
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        engine = create_engine(base, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        scoped = base.update_query_dict({"options": f"-csearch_path={schema}"})
        return scoped.render_as_string(hide_password=False), schema
    except Exception as exc:
        return None, f"PostgreSQL at {POSTGRES_URL} is unreachable ({type(exc).__name__}); skipped"


def drop_schema(schema: str) -> None:
    from sqlalchemy import create_engine, text

    from sislink.classroom.db import normalise_database_url

    engine = create_engine(normalise_database_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


MODES = ("sqlite", "sqlite_streamed", "postgresql")


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--only", choices=MODES, action="append")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_database(*args.child)
        return
    results: dict[str, Any] = {
        "benchmark": "roster_import",
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "load_average_1m_before": load_average(),
        },
    }
    for students in args.students:
        results[str(students)] = run_size(students, args.only)
        results["machine"][f"load_average_1m_after_{students}"] = load_average()
    print(json.dumps(results, indent=2))


def run_size(students: int, only: list[str] | None) -> dict[str, Any]:
    results: dict[str, Any] = {"students": students}
    with tempfile.TemporaryDirectory() as tmp:
        seeded = Path(tmp) / "sis-seeded.db"
        results["seed_seconds"] = round(seed(seeded, students), 1)
        for database in MODES:
            if only and database not in only:
                continue
            # A fresh SIS per database: the 1% change of the first run must not leak.
            store_path = Path(tmp) / f"sis-{database}.db"
            shutil.copy(seeded, store_path)
            server = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(store_path)], stdout=subprocess.PIPE, text=True
            )
            assert server.stdout is not None
            host_url, token_url = server.stdout.readline().split()
            schema = None
            try:
                if database.startswith("sqlite"):
                    url = f"sqlite:///{Path(tmp) / f'classroom-{database}.db'}"
                else:
                    url, schema = postgres_schema_url()
                    if url is None:
                        results[database] = {"skipped": schema}
                        continue
                child = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        url,
                        host_url,
                        token_url,
                        str(store_path),
                        database,
                        str(server.pid),
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if child.returncode != 0:
                    results[database] = {"error": child.stderr[-2000:]}
                else:
                    results[database] = json.loads(child.stdout.strip().splitlines()[-1])
                results[database]["load_average_1m_after"] = load_average()
            finally:
                server.terminate()
                server.wait(timeout=10)
                if schema is not None and database == "postgresql":
                    drop_schema(schema)
    return results


if __name__ == "__main__":
    main()
