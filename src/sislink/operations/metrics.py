"""Prometheus metrics: what the jobs did, what the SIS was asked and answered, and what waits.

Counted as things happen, in the process where they happen:
- jobs started and ended by kind and status (succeeded, needs_attention, failed, cancelled,
  on_hold), and their durations (the job runner calls `job_started` / `job_ended`);
- every attempt at a SIS call by endpoint, method and status, retries, 429s, and the writes the
  SIS accepted (`observe_sis_call`, told of each attempt by the OneRoster consumer, which
  imports nothing of sislink's: sync/sis_client.py hands it this function);
- every attempt at a Google Classroom call by API method, HTTP method and status, retries,
  429s and the writes Classroom accepted (`observe_google_call`, told by the Classroom client,
  which imports nothing of sislink's either: sync/google_connection.py hands it this function);
- items skipped by reason (mark export items by their skip reason, fed by jobs/; roster
  import warnings by their code, read from the job's report).

Read from the database at each scrape, so they are right whichever process did the work and
survive restarts: roster imports and Google syncs on hold, and the last successful run (its end,
as a Unix time) of each job kind; a run that needs attention ran, so it counts as successful.

Several processes (`sislink serve`, Celery workers): set PROMETHEUS_MULTIPROC_DIR to an empty
folder, the same for every process, before they start; the counts are then kept in files
there (prometheus-client's multiprocess mode) and any process's /metrics reports them all.
"""

from __future__ import annotations

import functools
import logging
import os
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ParamSpec, Protocol

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from sislink.classroom import Classroom
from sislink.classroom.models import Job, JobStatus

logger = logging.getLogger("sislink.operations.metrics")

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
METRICS_TOKEN_VARIABLE = "SISLINK_METRICS_TOKEN"  # noqa: S105 (a variable's name)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
WRITE_METHODS = frozenset({"PUT", "POST", "DELETE"})
# The job kinds that can be put on hold for review (sislink_holds_waiting has a series for
# each, at 0 when none is held). Named here, not imported: operations/ sits below jobs/.
GOOGLE_ROSTER_SYNC = "google_roster_sync"
HELD_KINDS = frozenset({"roster_import", GOOGLE_ROSTER_SYNC})
# Jobs last from a second (a dry run) to an hour (a district's first import).
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)

# The metrics of this process (not prometheus-client's global registry, so that tests and
# several apps in one process do not collide, and the exposition chooses what it shows).
PROCESS_REGISTRY = CollectorRegistry(auto_describe=True)

JOBS_STARTED = Counter(
    "sislink_jobs_started", "Jobs started, by kind.", ["kind"], registry=PROCESS_REGISTRY
)
JOBS_ENDED = Counter(
    "sislink_jobs_ended",
    "Jobs ended, by kind and status (succeeded, needs_attention, failed, cancelled, on_hold).",
    ["kind", "status"],
    registry=PROCESS_REGISTRY,
)
JOB_DURATION = Histogram(
    "sislink_job_duration_seconds",
    "How long jobs ran, by kind and status.",
    ["kind", "status"],
    buckets=DURATION_BUCKETS,
    registry=PROCESS_REGISTRY,
)
SIS_CALLS = Counter(
    "sislink_sis_calls",
    "Attempts at SIS calls (retries included), by endpoint, method and HTTP status "
    "('none' when no answer came).",
    ["endpoint", "method", "status"],
    registry=PROCESS_REGISTRY,
)
SIS_RETRIES = Counter(
    "sislink_sis_retries",
    "SIS call attempts that were retries, by endpoint.",
    ["endpoint"],
    registry=PROCESS_REGISTRY,
)
SIS_RATE_LIMITED = Counter(
    "sislink_sis_rate_limited",
    "SIS answers 429 (slow down), by endpoint.",
    ["endpoint"],
    registry=PROCESS_REGISTRY,
)
SIS_WRITES = Counter(
    "sislink_sis_writes",
    "Writes (PUT, POST, DELETE) the SIS accepted, by endpoint.",
    ["endpoint", "method"],
    registry=PROCESS_REGISTRY,
)
ITEMS_SKIPPED = Counter(
    "sislink_items_skipped",
    "Items a job did not do, by job kind and reason (export skip reasons, roster warning codes).",
    ["kind", "reason"],
    registry=PROCESS_REGISTRY,
)


GOOGLE_CALLS = Counter(
    "sislink_google_calls",
    "Attempts at Google Classroom calls (retries included), by API method ('courses.list'; "
    "'batch' for a batch's own round trip, whose calls count under their own names), HTTP "
    "method and status ('none' when no answer came).",
    ["call", "method", "status"],
    registry=PROCESS_REGISTRY,
)
GOOGLE_RETRIES = Counter(
    "sislink_google_retries",
    "Google Classroom call attempts that were retries, by API method.",
    ["call"],
    registry=PROCESS_REGISTRY,
)
GOOGLE_RATE_LIMITED = Counter(
    "sislink_google_rate_limited",
    "Google Classroom answers 429 (quota exhausted), by API method.",
    ["call"],
    registry=PROCESS_REGISTRY,
)
GOOGLE_WRITES = Counter(
    "sislink_google_writes",
    "Writes (POST, PATCH, PUT, DELETE) Google Classroom accepted, by API method.",
    ["call", "method"],
    registry=PROCESS_REGISTRY,
)
GOOGLE_WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


P = ParamSpec("P")
_said_failure: set[str] = set()


def never_raises(count: Callable[P, None]) -> Callable[P, None]:
    """Counting must never cost the work it counts: in multiprocess mode a count is a write to
    a file in PROMETHEUS_MULTIPROC_DIR, which fails when the folder is missing or not writable.
    Such a failure is logged once (per kind of failure), in words, and the count is lost."""

    @functools.wraps(count)
    def counted(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            count(*args, **kwargs)
        except Exception as exc:  # an OSError mostly; whatever it is, the job goes on
            said = f"{type(exc).__name__}: {exc}"
            if said not in _said_failure:
                _said_failure.add(said)
                folder = os.environ.get(MULTIPROCESS_VARIABLE, "")
                where = (
                    f" (set {MULTIPROCESS_VARIABLE} to a folder that exists and this process "
                    f"may write to; it is {folder!r})"
                    if folder
                    else ""
                )
                logger.warning("metrics are not being counted: %s%s", said, where)

    return counted


class SisCallAttempt(Protocol):
    """What the consumer says of each attempt (oneroster.consumer.client.CallAttempt)."""

    @property
    def endpoint(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def status(self) -> int | None: ...
    @property
    def attempt(self) -> int: ...


@never_raises
def observe_sis_call(seen: SisCallAttempt) -> None:
    """Count one attempt at a SIS call (a `call_observers` entry of the OneRoster client)."""
    status = str(seen.status) if seen.status is not None else "none"
    SIS_CALLS.labels(seen.endpoint, seen.method, status).inc()
    if seen.attempt > 0:
        SIS_RETRIES.labels(seen.endpoint).inc()
    if seen.status == 429:
        SIS_RATE_LIMITED.labels(seen.endpoint).inc()
    accepted = seen.status is not None and 200 <= seen.status < 300
    # The token endpoint's POST asks for a token: it writes nothing to the SIS.
    if seen.method in WRITE_METHODS and seen.endpoint != "token" and accepted:
        SIS_WRITES.labels(seen.endpoint, seen.method).inc()


class GoogleCallAttempt(Protocol):
    """What the Classroom client says of each attempt (googleclassroom.client.CallAttempt)."""

    @property
    def call(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def status(self) -> int | None: ...
    @property
    def attempt(self) -> int: ...


@never_raises
def observe_google_call(seen: GoogleCallAttempt) -> None:
    """Count one attempt at a Classroom call (a `call_observers` entry of its client)."""
    status = str(seen.status) if seen.status is not None else "none"
    GOOGLE_CALLS.labels(seen.call, seen.method, status).inc()
    if seen.attempt > 0:
        GOOGLE_RETRIES.labels(seen.call).inc()
    if seen.status == 429:
        GOOGLE_RATE_LIMITED.labels(seen.call).inc()
    accepted = seen.status is not None and 200 <= seen.status < 300
    # A batch's own POST carries the calls inside it, which count for themselves.
    if seen.method in GOOGLE_WRITE_METHODS and seen.call != "batch" and accepted:
        GOOGLE_WRITES.labels(seen.call, seen.method).inc()


@never_raises
def job_started(kind: str) -> None:
    JOBS_STARTED.labels(kind).inc()


@never_raises
def job_ended(kind: str, status: str, seconds: float, report: Mapping[str, Any]) -> None:
    """Count a job's end, its duration, and the items its report says it skipped: a roster
    import's warnings, a Google roster sync's skipped courses and members."""
    JOBS_ENDED.labels(kind, status).inc()
    JOB_DURATION.labels(kind, status).observe(max(seconds, 0.0))
    if kind == GOOGLE_ROSTER_SYNC and status != "on_hold" and not report.get("dry_run"):
        # A held sync did nothing yet (it is counted when it runs, approved).
        items_skipped(kind, google_roster_skips(report))
    warnings = report.get("warnings")
    if isinstance(warnings, list):
        for warning in warnings:
            if isinstance(warning, Mapping) and isinstance(warning.get("code"), str):
                count = warning.get("count")
                if isinstance(count, int) and count > 0:
                    ITEMS_SKIPPED.labels(kind, warning["code"]).inc(count)


def google_roster_skips(report: Mapping[str, Any]) -> Tally[str]:
    """A Google roster sync's skipped items by reason: each course it did not make or change,
    by the report's reason ("no primary teacher" -> `no_primary_teacher`; `archived`,
    `declined` for a course Classroom will not let it change, `not_made`, `not_read` for a
    course whose read failed and was left as it was), and the teachers
    and students it did not add or remove (`teachers_not_synced`, `students_not_synced`: the
    report's warnings say who and why)."""
    found: Tally[str] = Tally()
    courses = report.get("courses")
    for entry in courses if isinstance(courses, list) else []:
        if isinstance(entry, Mapping) and entry.get("action") == "skipped":
            reason = str(entry.get("reason") or "unknown").strip().lower()
            found["_".join(reason.split()) or "unknown"] += 1
    counts = report.get("counts")
    if isinstance(counts, Mapping):
        for entity in ("teachers", "students"):
            entity_counts = counts.get(entity)
            skipped = entity_counts.get("skipped") if isinstance(entity_counts, Mapping) else 0
            if isinstance(skipped, int) and skipped > 0:
                found[f"{entity}_not_synced"] += skipped
    return found


@never_raises
def items_skipped(kind: str, reasons: Mapping[str, int]) -> None:
    """Count items a job skipped, by reason (fed by the jobs that know their items)."""
    for reason, count in reasons.items():
        if count > 0:
            ITEMS_SKIPPED.labels(kind, reason).inc(count)


class StoredJobsCollector(Collector):
    """Holds waiting and each kind's last successful run, read from the Job table at scrape."""

    def __init__(self, classroom: Classroom) -> None:
        self.classroom = classroom

    def collect(self) -> Iterable[Metric]:
        holds = GaugeMetricFamily(
            "sislink_holds_waiting",
            "Jobs on hold for an administrator (a roster import or Google sync held for review).",
            labels=["kind"],
        )
        last = GaugeMetricFamily(
            "sislink_last_success_timestamp_seconds",
            "When the last successful run of each job kind ended (Unix time); a run that needs "
            "attention counts as successful.",
            labels=["kind"],
        )
        with self.classroom.session() as session:
            for kind, count in session.execute(
                select(Job.kind, func.count())
                .where(Job.status == JobStatus.ON_HOLD)
                .group_by(Job.kind)
            ):
                holds.add_metric([kind], float(count))
            for kind, finished in session.execute(
                select(Job.kind, func.max(Job.finished_at))
                .where(Job.status.in_([JobStatus.SUCCEEDED, JobStatus.NEEDS_ATTENTION]))
                .group_by(Job.kind)
            ):
                if finished is not None:
                    last.add_metric([kind], finished.timestamp())
        held = {sample.labels["kind"] for sample in holds.samples}
        for kind in HELD_KINDS - held:  # the alert rule needs a series at 0 for each
            holds.add_metric([kind], 0.0)
        yield holds
        yield last


def multiprocess_mode(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get(MULTIPROCESS_VARIABLE))


class MetricsUnavailable(Exception):
    """The metrics cannot be read; the message says why and what to do."""


def exposition(classroom: Classroom) -> bytes:
    """The metrics in Prometheus' text format: this process's (or, in multiprocess mode, every
    process's) counts, and what the database says now."""
    if multiprocess_mode():
        folder = os.environ.get(MULTIPROCESS_VARIABLE, "")
        if not os.path.isdir(folder):
            raise MetricsUnavailable(
                f"The metrics folder {MULTIPROCESS_VARIABLE}={folder} does not exist: make it "
                "(empty) before sislink starts, or unset the variable for a single process."
            )
        counted = CollectorRegistry()
        MultiProcessCollector(counted)  # type: ignore[no-untyped-call]  # untyped upstream
    else:
        counted = PROCESS_REGISTRY
    stored = CollectorRegistry(auto_describe=True)
    stored.register(StoredJobsCollector(classroom))
    return generate_latest(counted) + generate_latest(stored)
