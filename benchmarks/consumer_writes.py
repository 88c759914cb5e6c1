"""Benchmark: 2,000 result PUTs against the built-in SIS with 50 ms injected latency, sequential
(max_concurrency=1) versus the consumer's default concurrency (16). Prints JSON.

Target: the default is >= 10x faster than sequential and within 1.3x of the bound
2000 x 50 ms / 16 = 6.25 s.

The concurrent run is repeated (`--repeat`, default 3; each with fresh sourcedIds, so every PUT
creates) and judged by its median; the sequential run, ~110 s, is made once. Each run also
reports the consumer's own CPU seconds (this process: the SIS has its own), and the JSON the
machine's 1-minute load average before and after: on 2 cores, a busy neighbour slows the
consumer, and the figures say so.

The SIS runs in its own process, so the consumer's CPU is not shared with the server's; it
listens on the provider's `bind_socket` (IPPROTO_TCP, so asyncio turns Nagle off on each
connection; without it every keep-alive call would wait ~40 ms for a delayed ACK).

Run: .venv/bin/python benchmarks/consumer_writes.py [--puts 2000] [--latency-ms 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime

from sislink.oneroster.consumer import (
    ConnectionSettings,
    OAuth2Settings,
    OneRosterClient,
)
from sislink.oneroster.models import GUIDRef, LineItem, Result

SERVER = r"""
import sys, uvicorn
from sislink.oneroster.provider.app import create_app
from sislink.oneroster.provider.profiles import profile_named
from sislink.oneroster.provider.seed import seed_district
from sislink.oneroster.provider.server import bind_socket, build_config
from sislink.oneroster.provider.store import ProviderStore
students, latency = int(sys.argv[1]), float(sys.argv[2])
store = ProviderStore()
summary = seed_district(store, seed=7, students=students)
config = build_config(profile_named("generic-1.2"), client_id="bench", client_secret="bench-secret",
                      latency_ms=latency)
sock = bind_socket("127.0.0.1", 0)
print(sock.getsockname()[1], summary.teacher_email, flush=True)
uvicorn.Server(uvicorn.Config(create_app(store, config), log_level="warning", access_log=False,
                              lifespan="off")).run(sockets=[sock])
"""


def start_sis(students: int, latency_ms: float) -> tuple[subprocess.Popen[str], str, str]:
    """The built-in SIS in its own process; returns it, its origin and a teacher's email."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(students), str(latency_ms)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    port, email = process.stdout.readline().split()
    origin = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    import httpx

    while time.monotonic() < deadline:
        try:
            httpx.get(origin + "/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    return process, origin, email


def settings(origin: str, max_concurrency: int) -> ConnectionSettings:
    return ConnectionSettings(
        version="1.2",
        base_url=origin + "/ims/oneroster",
        auth=OAuth2Settings(
            token_url=origin + "/oauth2/token", client_id="bench", client_secret="bench-secret"
        ),
        max_concurrency=max_concurrency,
    )


async def prepare(origin: str, email: str, puts: int) -> list[Result]:
    """LineItems enough for `puts` results over one class's students (not timed)."""
    async with OneRosterClient(settings(origin, 16)) as sis:
        teacher = await sis.find_teacher_by_email(email)
        assert teacher is not None
        klass = (await sis.classes_for_teacher(teacher.sourced_id))[0]
        students = await sis.students_for_class(klass.sourced_id)
        category = (await sis.categories_for_class(klass.sourced_id))[0]
        items = [
            LineItem(
                sourced_id=str(uuid.uuid4()),
                title=f"Benchmark item {i}",
                assign_date=datetime(2026, 3, 1, tzinfo=UTC),
                due_date=datetime(2026, 3, 8, tzinfo=UTC),
                class_=GUIDRef(sourced_id=klass.sourced_id),
                school=GUIDRef(sourced_id=klass.school.sourced_id),
                category=GUIDRef(sourced_id=category.sourced_id),
                result_value_min=0,
                result_value_max=100,
            )
            for i in range(-(-puts // len(students)))
        ]
        await asyncio.gather(*(sis.put_line_item(item) for item in items))
    return [
        Result(
            sourced_id=str(uuid.uuid4()),
            line_item=GUIDRef(sourced_id=item.sourced_id),
            student=GUIDRef(sourced_id=student.sourced_id),
            class_=GUIDRef(sourced_id=klass.sourced_id),
            score_status="fully graded",
            score=float(n % 100),
            score_date=date(2026, 3, 9),
        )
        for n, (item, student) in enumerate((i, s) for i in items for s in students)
    ][:puts]


async def put_all(
    origin: str, results: list[Result], max_concurrency: int
) -> tuple[float, float, int]:
    """Seconds, consumer CPU seconds, and how many PUTs created."""
    async with OneRosterClient(settings(origin, max_concurrency)) as sis:
        await sis.authenticate()  # the token is not what is measured
        started, cpu_started = time.perf_counter(), time.process_time()
        outcomes = await asyncio.gather(*(sis.put_result(r) for r in results))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return elapsed, cpu, sum(o.created for o in outcomes)


def fresh_ids(results: list[Result]) -> list[Result]:
    return [r.model_copy(update={"sourced_id": str(uuid.uuid4())}) for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puts", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3, help="concurrent runs (median kept)")
    args = parser.parse_args()
    load_before = round(os.getloadavg()[0], 2)
    process, origin, email = start_sis(students=200, latency_ms=args.latency_ms)
    try:
        results = asyncio.run(prepare(origin, email, args.puts))
        runs = [
            asyncio.run(put_all(origin, fresh_ids(results), args.concurrency))
            for _ in range(max(1, args.repeat))
        ]
        sequential_s, sequential_cpu, created_s = asyncio.run(put_all(origin, results, 1))
    finally:
        process.terminate()
        process.wait(timeout=10)
    bound_s = args.puts * args.latency_ms / 1000 / args.concurrency
    concurrent_s = statistics.median(seconds for seconds, _, _ in runs)
    speedup = sequential_s / concurrent_s
    ratio = concurrent_s / bound_s
    print(
        json.dumps(
            {
                "benchmark": "consumer_writes",
                "puts": args.puts,
                "latency_ms": args.latency_ms,
                "concurrency": args.concurrency,
                "sequential_s": round(sequential_s, 2),
                "concurrent_s": round(concurrent_s, 2),
                "concurrent_runs_s": [round(seconds, 2) for seconds, _, _ in runs],
                "bound_s": round(bound_s, 2),
                "speedup_vs_sequential": round(speedup, 1),
                "ratio_to_bound": round(ratio, 2),
                "consumer_cpu_ms_per_put": {
                    "concurrent": round(
                        1000 * statistics.median(cpu for _, cpu, _ in runs) / args.puts, 2
                    ),
                    "sequential": round(1000 * sequential_cpu / args.puts, 2),
                },
                "created": {
                    "sequential": created_s,
                    "concurrent": [created for _, _, created in runs],
                },
                "targets": {"speedup_at_least": 10, "ratio_to_bound_at_most": 1.3},
                "targets_met": speedup >= 10 and ratio <= 1.3,
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
