"""Benchmark: the consumer pages a 50,000-student district (every user, then every enrolment)
from the built-in SIS running in its own process. Prints JSON: for each way of reading, records
per second and the consumer's own CPU seconds per 10,000 records (time.process_time of this
process only), with the load average before and after.

Ways of reading, each over the same pages in the same run:
- `records`: `iter_records`, raw dicts, no validation (the raw page-through);
- `records_then_models`: `iter_records`, then `spec.from_wire` on each record (what the
  roster import's reader does with them);
- `models`: `iter_collection` (validated pydantic models);
- `model_pages`: `iter_model_pages` (models a page at a time, bad records set aside).

The SIS is the server process of consumer_writes.py.

Run: .venv/bin/python benchmarks/consumer_paging.py [--students 50000] [--page-size 1000]
     [--ways records models ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from consumer_writes import settings, start_sis

from sislink.oneroster.consumer import OneRosterClient

WAYS = ("records", "records_then_models", "models", "model_pages")
ENTITIES = {"users": "user", "enrollments": "enrollment"}


async def _count(sis: OneRosterClient, way: str, endpoint: str, page_size: int) -> int:
    count = 0
    if way == "records":
        async for _record in sis.iter_records(endpoint, page_size=page_size):
            count += 1
    elif way == "records_then_models":
        async for record in sis.iter_records(endpoint, page_size=page_size):
            sis.spec.from_wire(ENTITIES[endpoint], record)
            count += 1
    elif way == "models":
        async for _model in sis.iter_collection(endpoint, page_size=page_size):
            count += 1
    else:
        pages: AsyncIterator[Any] = sis.iter_model_pages(endpoint, page_size=page_size)
        async for page in pages:
            count += len(page.models) + len(page.rejected)
    return count


async def page_through(origin: str, way: str, endpoint: str, page_size: int) -> dict[str, float]:
    async with OneRosterClient(settings(origin, 16)) as sis:
        await sis.authenticate()
        wall, cpu = time.perf_counter(), time.process_time()
        count = await _count(sis, way, endpoint, page_size)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "records": count,
        "seconds": round(wall, 2),
        "records_per_second": round(count / wall),
        "consumer_cpu_s_per_10k": round(cpu / count * 10_000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=50_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument(
        "--ways",
        nargs="+",
        choices=WAYS,
        default=list(WAYS),
        help="ways of reading to measure (default: all; model_pages is skipped on a client "
        "without iter_model_pages)",
    )
    args = parser.parse_args()
    ways = [
        w for w in args.ways if w != "model_pages" or hasattr(OneRosterClient, "iter_model_pages")
    ]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    process, origin, _ = start_sis(students=args.students, latency_ms=0)
    seeded_s = time.perf_counter() - started
    try:
        figures = {
            way: {
                endpoint: asyncio.run(page_through(origin, way, endpoint, args.page_size))
                for endpoint in ENTITIES
            }
            for way in ways
        }
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(
        json.dumps(
            {
                "benchmark": "consumer_paging",
                "students": args.students,
                "page_size": args.page_size,
                "sis_start_and_seed_s": round(seeded_s, 1),
                **figures,
                "machine": {
                    "cpus": os.cpu_count(),
                    "load_average_1m_before": round(load_before, 2),
                    "load_average_1m_after": round(os.getloadavg()[0], 2),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
