"""The demo: start the built-in SIS on loopback and walk Google's OneRoster 1.2 call sequence against it.

Each step is one HTTP call (or a few) made with plain httpx, checked, timed and reported, so the
demo shows both that the sandbox works and what a classroom asks of a SIS.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from sislink.oneroster.provider.server import RunningProvider, running_provider
from sislink.oneroster.versions import CLASSROOM_SCOPES, spec_for

ROSTER = "/ims/oneroster/rostering/v1p2"
GRADEBOOK = "/ims/oneroster/gradebook/v1p2"


class StepFailed(Exception):
    """A step of the sequence did not hold; the message says what was expected."""


@dataclass
class _Run:
    sis: RunningProvider
    client: httpx.Client
    found: dict[str, Any] = field(default_factory=dict)

    def expect(self, response: httpx.Response, *statuses: int) -> Any:
        if response.status_code not in statuses:
            raise StepFailed(
                f"{response.request.method} {response.request.url.path} answered "
                f"{response.status_code}, expected {' or '.join(map(str, statuses))}: {response.text[:300]}"
            )
        return response.json() if response.content else None


def _token(run: _Run) -> str:
    response = httpx.post(
        run.sis.token_url,
        auth=(run.sis.client_id, run.sis.client_secret),
        data={
            "grant_type": "client_credentials",
            "scope": " ".join(spec_for("1.2").scope_uris(CLASSROOM_SCOPES)),
        },
    )
    body = run.expect(response, 200)
    run.client.headers["Authorization"] = f"Bearer {body['access_token']}"
    return f"token issued, expires in {body['expires_in']} s"


def _teachers(run: _Run) -> str:
    body = run.expect(run.client.get(f"{ROSTER}/teachers", params={"limit": 1}), 200)
    return f"{len(body['users'])} teacher on the first page"


def _teacher_by_email(run: _Run) -> str:
    params: dict[str, str | int] = {"filter": f"email='{run.sis.teacher_email}'", "limit": 10000}
    users = run.expect(run.client.get(f"{ROSTER}/teachers", params=params), 200)["users"]
    if len(users) != 1:
        raise StepFailed(
            f"expected exactly one teacher with email {run.sis.teacher_email}, got {len(users)}"
        )
    run.found["teacher"] = users[0]
    return f"{users[0]['givenName']} {users[0]['familyName']} is {users[0]['sourcedId']}"


def _teacher_classes(run: _Run) -> str:
    url = f"{ROSTER}/teachers/{run.found['teacher']['sourcedId']}/classes"
    classes = run.expect(
        run.client.get(url, params={"limit": 10000, "filter": "status='active'"}), 200
    )["classes"]
    if not classes or not all(c["school"]["sourcedId"] and c["terms"] for c in classes):
        raise StepFailed("expected active classes, each with a school and terms")
    run.found["class"] = classes[0]
    return f"{len(classes)} classes, first: {classes[0]['title']}"


def _class_students(run: _Run) -> str:
    url = f"{ROSTER}/classes/{run.found['class']['sourcedId']}/students"
    students = run.expect(run.client.get(url, params={"limit": 10000}), 200)["users"]
    if not students or not all(s.get("email") for s in students):
        raise StepFailed("expected students with emails")
    run.found["student"] = students[0]
    return f"{len(students)} students"


def _categories(run: _Run) -> str:
    url = f"{GRADEBOOK}/classes/{run.found['class']['sourcedId']}/categories"
    categories = run.expect(run.client.get(url, params={"limit": 10000}), 200)["categories"]
    if not categories:
        raise StepFailed("expected at least one category")
    run.found["category"] = categories[0]
    return ", ".join(c["title"] for c in categories)


def _grading_periods(run: _Run) -> str:
    term = run.found["class"]["terms"][0]["sourcedId"]
    periods = run.expect(
        run.client.get(f"{ROSTER}/terms/{term}/gradingPeriods", params={"limit": 10000}), 200
    )["academicSessions"]
    if not periods or any(p["type"] != "gradingPeriod" for p in periods):
        raise StepFailed("expected grading periods, each of type gradingPeriod")
    return ", ".join(f"{p['title']} ({p['startDate']}..{p['endDate']})" for p in periods)


def _put_line_item(run: _Run) -> str:
    klass = run.found["class"]
    line_item_id = str(uuid.uuid4())
    run.found["line_item_id"] = line_item_id
    run.found["line_item"] = {
        "lineItem": {
            "title": "Demo essay",
            "description": "Written by sislink demo",
            "assignDate": "2026-09-01T00:00:00Z",
            "dueDate": "2026-09-08T00:00:00Z",
            "resultValueMin": 0,
            "resultValueMax": 100,
            "class": {"sourcedId": klass["sourcedId"]},
            "category": {"sourcedId": run.found["category"]["sourcedId"]},
            "school": {"sourcedId": klass["school"]["sourcedId"]},
        }
    }
    url = f"{GRADEBOOK}/lineItems/{line_item_id}"
    run.expect(run.client.put(url, json=run.found["line_item"]), 201)
    run.expect(run.client.put(url, json=run.found["line_item"]), 200)
    return f"lineItem {line_item_id}: 201 created, then 200 updated"


def _class_line_items(run: _Run) -> str:
    url = f"{GRADEBOOK}/classes/{run.found['class']['sourcedId']}/lineItems"
    ids = {li["sourcedId"] for li in run.expect(run.client.get(url), 200)["lineItems"]}
    if run.found["line_item_id"] not in ids:
        raise StepFailed("the lineItem just written is not listed for its class")
    run.found["line_item"]["lineItem"]["title"] = "Long title " * 100
    kept = run.expect(
        run.client.put(
            f"{GRADEBOOK}/lineItems/{run.found['line_item_id']}", json=run.found["line_item"]
        ),
        200,
    )["lineItem"]["title"]
    return f"listed; a {len(run.found['line_item']['lineItem']['title'])}-character title kept as {len(kept)}"


def _results(run: _Run) -> str:
    result_id = str(uuid.uuid4())
    run.found["result_id"] = result_id
    url = f"{GRADEBOOK}/results/{result_id}"
    body: dict[str, Any] = {
        "result": {
            "score": 80,
            "scoreStatus": "fully graded",
            "scoreDate": "2026-09-09",
            "lineItem": {"sourcedId": run.found["line_item_id"]},
            "student": {"sourcedId": run.found["student"]["sourcedId"]},
        }
    }
    run.expect(run.client.put(url, json=body), 200, 201)
    body["result"]["score"] = 300
    run.expect(run.client.put(url, json=body), 200)
    if run.expect(run.client.get(url), 200)["result"]["score"] != 300:
        raise StepFailed("a score of 300 (extra credit) was not kept")
    body["result"]["scoreStatus"] = "exempt"
    run.expect(run.client.put(url, json=body), 200)
    if run.expect(run.client.get(url), 200)["result"]["scoreStatus"] != "exempt":
        raise StepFailed("scoreStatus exempt was not kept")
    return "80 stored; 300 of 100 kept (extra credit); exempt kept"


def _deletes(run: _Run) -> str:
    klass, line_item_id = run.found["class"]["sourcedId"], run.found["line_item_id"]
    run.expect(run.client.delete(f"{GRADEBOOK}/results/{run.found['result_id']}"), 200, 204)
    results = run.expect(
        run.client.get(f"{GRADEBOOK}/classes/{klass}/lineItems/{line_item_id}/results"), 200
    )
    if any(r["sourcedId"] == run.found["result_id"] for r in results["results"]):
        raise StepFailed("the deleted result is still listed")
    run.expect(run.client.delete(f"{GRADEBOOK}/lineItems/{line_item_id}"), 200, 204)
    items = run.expect(run.client.get(f"{GRADEBOOK}/classes/{klass}/lineItems"), 200)["lineItems"]
    if any(li["sourcedId"] == line_item_id for li in items):
        raise StepFailed("the deleted lineItem is still listed")
    return "result and lineItem deleted and gone"


GOOGLE_SEQUENCE: tuple[tuple[str, Callable[[_Run], str]], ...] = (
    ("token (client credentials, four scopes)", _token),
    ("teachers?limit=1", _teachers),
    ("teacher by email, limit=10000", _teacher_by_email),
    ("the teacher's active classes", _teacher_classes),
    ("the class's students", _class_students),
    ("the class's categories", _categories),
    ("the term's grading periods", _grading_periods),
    ("PUT a lineItem: 201 then 200", _put_line_item),
    ("the class's lineItems; a long title", _class_line_items),
    ("PUT a result: 80, 300, exempt", _results),
    ("DELETE the result and the lineItem", _deletes),
)


def run_demo(echo: Callable[[str], None] = print, *, students: int = 200, seed: int = 7) -> int:
    """Start the built-in SIS, print how to reach it, run Google's sequence; 0 when every step held."""
    with running_provider(profile="generic-1.2", students=students, seed=seed) as sis:
        echo("The built-in OneRoster SIS is up (generic OneRoster 1.2, seeded district):")
        echo(f"  host_url:      {sis.host_url}")
        echo(f"  base_url:      {sis.base_url}")
        echo(f"  token_url:     {sis.token_url}")
        echo(f"  client_id:     {sis.client_id}")
        echo(f"  client_secret: {sis.client_secret}   (the sandbox's own test credential)")
        echo(f"  teacher_email: {sis.teacher_email}")
        echo("")
        echo("Google Classroom's OneRoster 1.2 call sequence:")
        failures = 0
        with httpx.Client(base_url=sis.origin, timeout=30) as client:
            run = _Run(sis, client)
            for number, (title, step) in enumerate(GOOGLE_SEQUENCE, start=1):
                started = time.perf_counter()
                try:
                    outcome = step(run)
                except (StepFailed, httpx.HTTPError, KeyError) as error:
                    elapsed = (time.perf_counter() - started) * 1000
                    echo(f"  {number:>2}. {title}: FAILED ({elapsed:.0f} ms): {error}")
                    failures += 1
                    break  # later steps depend on this one
                elapsed = (time.perf_counter() - started) * 1000
                echo(f"  {number:>2}. {title}: ok ({elapsed:.0f} ms): {outcome}")
        echo("")
        echo("Every step held." if not failures else "The sequence stopped at a failed step.")
    return 1 if failures else 0
