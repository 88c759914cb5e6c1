"""Benchmark: roster import of a 50,000-student district from the built-in SIS over loopback HTTP.

The SIS runs in its own process on a file store seeded once in a temp dir (so the RSS figures
are the importer's own); each database runs in a child process of its own. For SQLite and
PostgreSQL (postgresql://postgres@127.0.0.1:5432/test, a fresh schema; skipped with a note when
unreachable): a full import, a delta with no change, and a delta after 1% of the users were
renamed and 1% of the enrolments marked tobedeleted. Prints JSON: seconds, requests, peak RSS.

Targets: full <= 120 s, unchanged delta <= 5 s, 1% delta <= 15 s, RSS <= 400 MB.

Run: .venv/bin/python benchmarks/roster_import.py [--students 50000] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
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


async def one_import(classroom: Any, connection_id: int, full: bool) -> dict[str, Any]:
    from sislink.sync.roster_import import import_roster
    from sislink.sync.sis_client import open_sis_client

    started = time.perf_counter()
    async with open_sis_client(classroom) as client:
        report = await import_roster(classroom, client, connection_id=connection_id, full=full)
    seconds = time.perf_counter() - started
    counts = report.to_dict()["counts"]
    return {
        "seconds": round(seconds, 2),
        "requests": report.requests,
        "status": report.status,
        "peak_rss_mb": peak_rss_mb(),
        "written": {
            entity: {k: v for k, v in c.items() if k != "unchanged" and v}
            for entity, c in counts.items()
            if any(v for k, v in c.items() if k != "unchanged")
        },
    }


def run_database(database_url: str, host_url: str, token_url: str, store_path: str) -> None:
    """Child process: the three imports against one database; prints one JSON line."""
    from sislink.classroom import Actor, open_classroom
    from sislink.classroom.services import connections

    classroom = open_classroom(database_url)
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
        connection_id = saved.id
    figures: dict[str, Any] = {"rss_before_mb": peak_rss_mb()}
    figures["full"] = asyncio.run(one_import(classroom, connection_id, full=True))
    figures["delta_unchanged"] = asyncio.run(one_import(classroom, connection_id, full=False))
    figures["changed"] = change_one_percent(Path(store_path))
    figures["delta_1_percent"] = asyncio.run(one_import(classroom, connection_id, full=False))
    classroom.close()
    print(json.dumps(figures))


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=50_000)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_database(*args.child)
        return
    results: dict[str, Any] = {"students": args.students}
    with tempfile.TemporaryDirectory() as tmp:
        for database in ("sqlite", "postgresql"):
            if args.only and database != args.only:
                continue
            # A fresh SIS per database: the 1% change of the first run must not leak.
            store_path = Path(tmp) / f"sis-{database}.db"
            results[f"seed_seconds_{database}"] = round(seed(store_path, args.students), 1)
            server = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(store_path)], stdout=subprocess.PIPE, text=True
            )
            assert server.stdout is not None
            host_url, token_url = server.stdout.readline().split()
            schema = None
            try:
                if database == "sqlite":
                    url = f"sqlite:///{Path(tmp) / 'classroom.db'}"
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
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if child.returncode != 0:
                    results[database] = {"error": child.stderr[-2000:]}
                else:
                    results[database] = json.loads(child.stdout.strip().splitlines()[-1])
            finally:
                server.terminate()
                server.wait(timeout=10)
                if schema is not None and database == "postgresql":
                    drop_schema(schema)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
