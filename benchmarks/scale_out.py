"""Benchmark (issue 15): an export of every class of a district on Celery workers, with 1 and
then 2 `sislink worker` processes, against the built-in SIS with 20 ms latency and a rate limit
held in Redis for all workers (SISLINK_SIS_REQUESTS_PER_SECOND). Prints JSON: for each worker
count, the seconds of `sislink marks export --all` (handed to the workers: one job per class),
the writes, the rate-limit bound (writes / requests per second) and the ratio to it.

The classroom is filled as benchmarks/mark_export.py fills it (its `fill_classroom`, bulk
inserts, not measured): `--classes` linked classes of 35 students with `--coursework` coursework
each, fresh for each worker count. The SIS runs in its own process; Redis is the broker; the
classroom is PostgreSQL when SISLINK_TEST_POSTGRES_URL (or --database-url) is given (a schema of
its own, dropped after), else a SQLite file. The machine's load average is in the JSON (before
and after, and at each run's start and end), with sislink's own CPU seconds of each run (the
workers' and the CLI's).

Run: .venv/bin/python benchmarks/scale_out.py [--classes 200] [--coursework 2] [--rate 300]
    [--workers 1 2] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
import mark_export as filled
from consumer_writes import start_sis

from sislink.classroom import open_classroom
from sislink.classroom.db import normalise_database_url
from sislink.settings import Settings

REDIS = "redis://127.0.0.1:6379/0"


@contextmanager
def database(base_url: str | None, home: Path) -> Iterator[str]:
    """A fresh classroom database: a PostgreSQL schema of its own, or a SQLite file."""
    if not base_url:
        yield f"sqlite:///{home}/bench.db"
        return
    base = normalise_database_url(base_url)
    schema = f"bench_scale_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def start_workers(count: int, concurrency: int, env: dict[str, str], home: Path) -> list[Any]:
    started = []
    for n in range(count):
        log = (home / f"worker-{n}.log").open("w")
        started.append(
            subprocess.Popen(
                [sys.executable, "-m", "sislink.cli", "worker", f"--concurrency={concurrency}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        )
    for n in range(count):
        while " ready." not in (home / f"worker-{n}.log").read_text():
            if started[n].poll() is not None:
                raise SystemExit((home / f"worker-{n}.log").read_text())
            time.sleep(0.1)
    return started


def one_run(args: argparse.Namespace, origin: str, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        with database(args.database_url, home) as url:
            # The classroom sealed with this home's key, which the workers read too.
            filled.open_classroom = lambda u: open_classroom(Settings.for_home(home, u))  # type: ignore[assignment]
            began = time.perf_counter()
            classroom = filled.fill_classroom(url, origin, args.classes)
            classroom.close()
            setup_s = round(time.perf_counter() - began, 1)
            run = uuid.uuid4().hex[:8]
            env = {
                **os.environ,
                "SISLINK_HOME": str(home),
                "SISLINK_DATABASE_URL": url,
                "SISLINK_BROKER_URL": REDIS,
                "SISLINK_QUEUE": f"sislink-bench-{run}",
                "SISLINK_REDIS_PREFIX": f"sislink-bench-{run}",
                "SISLINK_SIS_REQUESTS_PER_SECOND": str(args.rate),
                "SISLINK_LOG_LEVEL": "WARNING",
            }
            load_at_start = round(os.getloadavg()[0], 2)
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = start_workers(workers, args.concurrency, env, home)
            try:
                began = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "sislink.cli", "marks", "export", "--all", "--json"],
                    capture_output=True,
                    text=True,
                    env=env,
                    check=False,
                )
                seconds = time.perf_counter() - began
            finally:
                for worker in started:
                    worker.terminate()
                for worker in started:
                    worker.wait(timeout=60)
            load_at_end = round(os.getloadavg()[0], 2)
            ended = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The workers' CPU (their pool processes' included) and the CLI's: sislink's own, not the
    # SIS's (still running), PostgreSQL's or Redis's.
    sislink_cpu_s = (ended.ru_utime + ended.ru_stime) - (children.ru_utime + children.ru_stime)
    said = json.loads(done.stdout) if done.stdout.strip() else {}
    if done.returncode not in (0, 3):
        raise SystemExit(f"the export failed ({done.returncode}): {done.stderr[-2000:]}")
    writes = int(said.get("writes", 0))
    bound = writes / args.rate
    return {
        "workers": workers,
        "worker_concurrency": args.concurrency,
        "setup_s": setup_s,
        "seconds": round(seconds, 1),
        "writes": writes,
        "classes": len(said.get("classes", [])),
        "rate_limit_bound_s": round(bound, 1),
        "ratio_to_bound": round(seconds / bound, 2) if bound else None,
        "writes_per_s": round(writes / seconds, 1),
        "sislink_cpu_s": round(sislink_cpu_s, 1),
        "load_average_1m_at_start": load_at_start,
        "load_average_1m_at_end": load_at_end,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--coursework", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--rate", type=float, default=300, help="SIS requests per second")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--concurrency", type=int, default=2, help="jobs per worker at once")
    parser.add_argument(
        "--database-url", default=os.environ.get("SISLINK_TEST_POSTGRES_URL"), help="PostgreSQL"
    )
    args = parser.parse_args()
    filled.COURSEWORK_PER_CLASS = args.coursework
    load_before = round(os.getloadavg()[0], 2)
    process, origin, _ = start_sis(filled.DISTRICT_STUDENTS, args.latency_ms)
    try:
        runs = [one_run(args, origin, count) for count in args.workers]
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(
        json.dumps(
            {
                "benchmark": "scale_out",
                "classes": args.classes,
                "students_per_class": filled.STUDENTS_PER_CLASS,
                "coursework_per_class": args.coursework,
                "latency_ms": args.latency_ms,
                "requests_per_second": args.rate,
                "database": "postgresql" if args.database_url else "sqlite",
                "runs": runs,
                "machine": {
                    "cpus": os.cpu_count(),
                    "load_average_1m_before": load_before,
                    "load_average_1m_after": round(os.getloadavg()[0], 2),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
