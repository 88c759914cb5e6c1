"""Benchmark: 2,000 roster adds (students into courses) against the local Google Classroom with
50 ms latency per HTTP request: one by one, versus batched (50 calls a batch) and concurrent
(16 at once), through sislink's ClassroomClient on Google's own client library. Prints JSON.

The bound for N calls is the larger of
  - N x latency / concurrency, a batch being one round trip (so ceil(N / 50) round trips), and
  - N / the calls per second the quotas allow (every add is made as the one administrator, so
    the per-user quota, 1,200 a minute = 20 a second by Google's published figures, binds first).
Targets (issue 12): batched and concurrent at least 10x faster than one by one, within 1.5x of
the bound, and no call refused for quota left unretried (every add succeeds).

Runs, each against a fresh local Classroom in its own process (fresh quota windows):
  one_by_one         concurrency 1, no batches, Google's quotas
  batched_google     batches of 50, concurrency 16, Google's quotas (1,200/min per user)
  batched_raised     the same with quotas raised (a project granted more by Google, or the local
                     Classroom told other limits): shows what batching does to the latency bound
  concurrent_raised  concurrency 16 without batches, quotas raised
  one_by_one_user_raised, batched_user_raised
                     the per-user quota raised to the per-client default (3,000/min, as Google
                     grants on request) and the per-client quota left at Google's 3,000/min:
                     the one configuration under Google's published per-client quota where one
                     by one is bound by latency rather than by the quota, so both targets can
                     be judged on the same run
The setup (40 courses, created by the same client) is not timed, but its calls count against
the quota window exactly as they would at Google.

Run: .venv/bin/python benchmarks/google_calls.py [--adds 2000] [--latency-ms 50] [--skip-one-by-one]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from typing import Any

from sislink.googleclassroom import ClassroomClient, ClientSettings, ServiceAccountKey

SERVER = r"""
import sys, tempfile
from pathlib import Path
import uvicorn
from sislink.googleclassroom.emulator.app import ClassroomConfig, create_app
from sislink.googleclassroom.emulator.server import bind_socket, open_classroom
students, latency, per_user, per_client = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sock = bind_socket("127.0.0.1", 0)
origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
config = ClassroomConfig(latency_ms=latency, per_user_per_minute=per_user, per_client_per_minute=per_client)
classroom, key_file = open_classroom(origin=origin, students=students, config=config,
                                     key_file=Path(tempfile.mkdtemp()) / "key.json")
directory = classroom.backend.directory
students_emails = [u.email for u in directory.users if u.role == "student"]
print(origin + "/", key_file, directory.admin.email, directory.first_teacher.email,
      ",".join(students_emails), flush=True)
uvicorn.Server(uvicorn.Config(create_app(classroom), log_level="warning", access_log=False,
                              lifespan="off")).run(sockets=[sock])
"""

GOOGLE_PER_USER = 1200
GOOGLE_PER_CLIENT = 3000
RAISED = 1_000_000


def start_classroom(
    students: int, latency_ms: float, per_user: int, per_client: int
) -> tuple[subprocess.Popen[str], list[str]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SERVER,
            str(students),
            str(latency_ms),
            str(per_user),
            str(per_client),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    fields = process.stdout.readline().split()
    if len(fields) != 5:
        process.kill()
        raise RuntimeError("the local Classroom did not start")
    return process, fields


def run(
    name: str,
    *,
    adds: int,
    latency_ms: float,
    per_user: int,
    per_client: int,
    concurrency: int,
    batch: bool,
) -> dict[str, Any]:
    per_course = 50
    courses = math.ceil(adds / per_course)
    process, (api_url, key_file, admin, teacher, student_list) = start_classroom(
        max(adds, per_course), latency_ms, per_user, per_client
    )
    students = student_list.split(",")
    try:
        settings = ClientSettings(
            max_concurrency=concurrency,
            calls_per_minute_per_user=per_user,
            calls_per_minute=per_client,
        )
        with ClassroomClient(
            ServiceAccountKey.from_file(key_file),
            admin_email=admin,
            api_endpoint=api_url,
            settings=settings,
        ) as client:
            course_ids = []
            for k in range(courses):
                created = client.execute(
                    lambda s, k=k: s.courses().create(
                        body={"id": f"d:bench-{k}", "name": f"Course {k}", "ownerId": teacher}
                    )
                )
                course_ids.append(created["id"])
            makes = [
                (lambda s, c=course_ids[i // per_course], e=students[i % len(students)]:
                 s.courses().students().create(courseId=c, body={"userId": e}))
                for i in range(adds)
            ]  # fmt: skip
            calls_before, retries_before = client.calls_made, client.retries
            cpu_before = time.process_time()
            started = time.perf_counter()
            outcomes = client.execute_many(makes, batch=batch)
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_before
            failed = [str(o.error) for o in outcomes if not o.ok]
            round_trips = math.ceil(adds / 50) if batch else adds
            latency_bound = round_trips * latency_ms / 1000 / concurrency
            quota_qps = min(per_user, per_client) / 60
            quota_bound = adds / quota_qps
            bound = max(latency_bound, quota_bound)
            return {
                "run": name,
                "adds": adds,
                "concurrency": concurrency,
                "batched": batch,
                "quota_per_user_per_minute": per_user,
                "quota_per_client_per_minute": per_client,
                "seconds": round(elapsed, 2),
                "http_round_trips": client.calls_made - calls_before,
                "retries": client.retries - retries_before,
                "failed": len(failed),
                "first_failure": failed[0] if failed else None,
                "latency_bound_s": round(latency_bound, 3),
                "quota_bound_s": round(quota_bound, 2),
                "bound_s": round(bound, 2),
                "ratio_to_bound": round(elapsed / bound, 2),
                "client_cpu_s": round(cpu, 2),
            }
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adds", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--skip-one-by-one", action="store_true")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    common = {"adds": args.adds, "latency_ms": args.latency_ms}
    runs = []
    if not args.skip_one_by_one:
        runs.append(run("one_by_one", per_user=GOOGLE_PER_USER, per_client=GOOGLE_PER_CLIENT,
                        concurrency=1, batch=False, **common))  # fmt: skip
    runs.append(run("batched_google", per_user=GOOGLE_PER_USER, per_client=GOOGLE_PER_CLIENT,
                    concurrency=16, batch=True, **common))  # fmt: skip
    runs.append(run("batched_raised", per_user=RAISED, per_client=RAISED,
                    concurrency=16, batch=True, **common))  # fmt: skip
    runs.append(run("concurrent_raised", per_user=RAISED, per_client=RAISED,
                    concurrency=16, batch=False, **common))  # fmt: skip
    if not args.skip_one_by_one:
        runs.append(run("one_by_one_user_raised", per_user=GOOGLE_PER_CLIENT,
                        per_client=GOOGLE_PER_CLIENT, concurrency=1, batch=False, **common))  # fmt: skip
    runs.append(run("batched_user_raised", per_user=GOOGLE_PER_CLIENT, per_client=GOOGLE_PER_CLIENT,
                    concurrency=16, batch=True, **common))  # fmt: skip
    by_name = {r["run"]: r for r in runs}
    result: dict[str, Any] = {
        "benchmark": "google_calls",
        "adds": args.adds,
        "latency_ms": args.latency_ms,
        "runs": runs,
    }
    if "one_by_one" in by_name:
        sequential = by_name["one_by_one"]["seconds"]
        for name in ("batched_google", "batched_raised", "concurrent_raised"):
            result[f"speedup_{name}"] = round(sequential / by_name[name]["seconds"], 1)
        best = by_name["batched_raised"]
        user_raised = by_name["batched_user_raised"]
        result["speedup_batched_user_raised"] = round(
            by_name["one_by_one_user_raised"]["seconds"] / user_raised["seconds"], 1
        )
        result["targets"] = {
            "batched_google: >= 10x one by one": result["speedup_batched_google"] >= 10,
            "batched_google: <= 1.5x bound": by_name["batched_google"]["ratio_to_bound"] <= 1.5,
            "batched_raised: >= 10x one by one": result["speedup_batched_raised"] >= 10,
            "batched_raised: <= 1.5x bound": best["ratio_to_bound"] <= 1.5,
            "batched_user_raised: >= 10x one by one (same quotas)": (
                result["speedup_batched_user_raised"] >= 10
            ),
            "batched_user_raised: <= 1.5x bound": user_raised["ratio_to_bound"] <= 1.5,
            "no call left failed": all(r["failed"] == 0 for r in runs),
        }
    result["machine"] = {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
