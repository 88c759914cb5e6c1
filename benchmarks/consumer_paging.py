"""Benchmark: the consumer pages a 50,000-student district (every user, then every enrolment)
from the built-in SIS running in its own process. Prints JSON: records per second and the
consumer's own CPU seconds per 10,000 records (time.process_time of this process only).

The SIS is the server process of consumer_writes.py.

Run: .venv/bin/python benchmarks/consumer_paging.py [--students 50000] [--page-size 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from consumer_writes import settings, start_sis

from sislink.oneroster.consumer import OneRosterClient


async def page_through(origin: str, endpoint: str, page_size: int) -> dict[str, float]:
    async with OneRosterClient(settings(origin, 16)) as sis:
        await sis.authenticate()
        wall, cpu = time.perf_counter(), time.process_time()
        count = 0
        async for _record in sis.iter_collection(endpoint, page_size=page_size):
            count += 1
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
    args = parser.parse_args()
    started = time.perf_counter()
    process, origin, _ = start_sis(students=args.students, latency_ms=0)
    seeded_s = time.perf_counter() - started
    try:
        figures = {
            endpoint: asyncio.run(page_through(origin, endpoint, args.page_size))
            for endpoint in ("users", "enrollments")
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
                "models": "validated pydantic models (iter_collection)",
                **figures,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
