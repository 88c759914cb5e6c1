"""Benchmark: seed a 50,000-student district into a file-backed store, then page it over HTTP.

Seeds the built-in SIS (about 2,500 teachers, 8,000 classes, 408,000 enrolments) into SQLite in
a temporary directory, starts the provider in this process on 127.0.0.1, takes an OAuth 2 token
and pages every user and every enrolment with limit=1000 using plain httpx. Prints one JSON
object: seeding and page-through seconds (users and enrolments apart), requests, records, peak
RSS (this process, server included), and the machine with its 1-minute load average when the run
began and when it ended (other work on a 2-core machine slows every figure). Targets:
seeding <= 60 s, page-through <= 30 s, RSS <= 500 MB.

    .venv/bin/python benchmarks/provider_paging.py [--students 50000] [--limit 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from sislink.oneroster.provider.seed import seed_district
from sislink.oneroster.provider.server import running_provider
from sislink.oneroster.provider.store import ProviderStore

SCOPE = "https://purl.imsglobal.org/spec/or/v1p2/scope/roster.readonly"


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in kilobytes.
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def page_through(client: httpx.Client, url: str, key: str, limit: int) -> tuple[int, int]:
    """(requests, records) for paging a whole collection with offset/limit."""
    requests = records = offset = 0
    total: int | None = None
    while total is None or offset < total:
        response = client.get(url, params={"limit": limit, "offset": offset})
        response.raise_for_status()
        requests += 1
        total = int(response.headers["X-Total-Count"])
        page = response.json()[key]
        if not page:
            break
        records += len(page)
        offset += len(page)
    if records != total:
        raise RuntimeError(f"Paged {records} {key} but X-Total-Count says {total}")
    return requests, records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=50_000)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    result: dict[str, Any] = {
        "benchmark": "provider_paging",
        "students": args.students,
        "limit": args.limit,
    }
    load_at_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="sislink-bench-") as tmp:
        store = ProviderStore(Path(tmp) / "sis.sqlite3")
        started = time.perf_counter()
        summary = seed_district(store, seed=args.seed, students=args.students)
        result["seeding_s"] = round(time.perf_counter() - started, 2)
        result["seeded"] = {
            "schools": summary.schools,
            "teachers": summary.teachers,
            "students": summary.students,
            "classes": summary.classes,
            "enrollments": summary.enrollments,
            "categories": summary.categories,
        }
        result["rss_after_seeding_mb"] = peak_rss_mb()
        result["db_size_mb"] = round((Path(tmp) / "sis.sqlite3").stat().st_size / 2**20, 1)

        with running_provider(store=store, profile="generic-1.2") as sis:
            token = httpx.post(
                sis.token_url,
                data={"grant_type": "client_credentials", "scope": SCOPE},
                auth=(sis.client_id, sis.client_secret),
                timeout=30,
            )
            token.raise_for_status()
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            with httpx.Client(headers=headers, timeout=60) as client:
                started = time.perf_counter()
                users = page_through(client, sis.url("rostering/v1p2/users"), "users", args.limit)
                users_s = time.perf_counter() - started
                enrollments = page_through(
                    client, sis.url("rostering/v1p2/enrollments"), "enrollments", args.limit
                )
                total_s = time.perf_counter() - started
        store.close()

    result["page_through_s"] = round(total_s, 2)
    result["users_s"] = round(users_s, 2)
    result["enrollments_s"] = round(total_s - users_s, 2)
    result["requests"] = users[0] + enrollments[0]
    result["records"] = users[1] + enrollments[1]
    result["peak_rss_mb"] = peak_rss_mb()
    result["rss_includes_server"] = True
    result["targets"] = {"seeding_s": 60, "page_through_s": 30, "peak_rss_mb": 500}
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_1m_at_start": load_at_start,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
