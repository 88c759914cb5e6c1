"""What `sislink check-sis` does: the Classroom call sequence against any SIS, one check per
behaviour, each named after it and timed, like Google's OneRoster conformance notebook.

Reads always run; the writes (a test lineItem and result, then their deletion) only when asked.
A check whose prerequisite failed is reported as not run, never as passed.

`SIS_QUIRKS` is the small table of what each known SIS profile needs from the client (version,
auth kind, a gradebook vendor header, cookies): data, not if-chains.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sislink.oneroster.consumer.client import OneRosterClient
from sislink.oneroster.consumer.exceptions import OneRosterError
from sislink.oneroster.consumer.settings import (
    ConnectionSettings,
    OAuth1Settings,
    OAuth2Settings,
)
from sislink.oneroster.filters import where
from sislink.oneroster.models import (
    AcademicSession,
    Category,
    Class,
    GUIDRef,
    LineItem,
    Result,
    User,
)
from sislink.oneroster.versions import CLASSROOM_SCOPES, Version


@dataclass(frozen=True)
class SISQuirks:
    """What a SIS profile needs from the client. `vendor_header` is a gradebook-only header
    whose value (`key:secret`) the administrator supplies."""

    version: Literal["1.1", "1.2"]
    auth: Literal["oauth1", "oauth2"]
    credentials_in: Literal["basic", "form"] = "basic"
    vendor_header: str | None = None
    keep_cookies: bool = True


SIS_QUIRKS: dict[str, SISQuirks] = {
    "generic-1.1": SISQuirks("1.1", "oauth1"),
    "generic-1.2": SISQuirks("1.2", "oauth2"),
    "infinite-campus": SISQuirks("1.2", "oauth2", vendor_header="x-vendor-authorization"),
    "skyward": SISQuirks("1.1", "oauth2"),
    "aspen": SISQuirks("1.1", "oauth2"),
    "aeries": SISQuirks("1.1", "oauth2", keep_cookies=True),  # affinity cookie from /token
}


def settings_for_check(
    *,
    base_url: str,
    client_id: str,
    client_secret: str,
    token_url: str | None = None,
    version: str | None = None,
    profile: str | None = None,
    vendor_key: str | None = None,
    max_retries: int = 2,
    client_auth: str | None = None,
) -> ConnectionSettings:
    """Connection settings for a check, from what an administrator types (and a profile).

    `client_auth` ("basic" or "post", RFC 6749 section 2.3.1) overrides how the profile's
    token request sends the client id and secret. Few retries: a check should say quickly and
    precisely what is wrong, not wait it out.
    """
    if profile is not None and profile not in SIS_QUIRKS:
        raise ValueError(f"Unknown profile {profile!r}: use one of {', '.join(SIS_QUIRKS)}")
    if client_auth not in (None, "basic", "post"):
        raise ValueError(f"--client-auth is basic or post, not {client_auth!r}")
    quirks = SIS_QUIRKS[profile] if profile else None
    credentials_in = quirks.credentials_in if quirks else "basic"
    if client_auth is not None:
        credentials_in = "form" if client_auth == "post" else "basic"
    chosen_version = version or (quirks.version if quirks else "1.2")
    auth_kind = quirks.auth if quirks else ("oauth2" if token_url else "oauth1")
    auth: OAuth1Settings | OAuth2Settings
    if auth_kind == "oauth2":
        if not token_url:
            raise ValueError("This SIS uses OAuth 2: give --token-url")
        auth = OAuth2Settings(
            token_url=token_url,
            client_id=client_id,
            client_secret=client_secret,
            scopes=CLASSROOM_SCOPES,
            credentials_in=credentials_in,
        )
    else:
        if client_auth is not None:
            raise ValueError(
                "This SIS signs requests with OAuth 1.0a and asks for no token: leave out "
                "--client-auth (or give --token-url for OAuth 2)"
            )
        auth = OAuth1Settings(key=client_id, secret=client_secret)
    gradebook_headers: dict[str, str] = {}
    if quirks and quirks.vendor_header:
        if not vendor_key:
            raise ValueError(
                f"Profile {profile} needs a vendor key for the {quirks.vendor_header} header: "
                "give --vendor-key-env VAR with VAR holding key:secret"
            )
        gradebook_headers[quirks.vendor_header] = vendor_key
    return ConnectionSettings(
        version=chosen_version,  # type: ignore[arg-type]  # checked by ConnectionSettings
        base_url=base_url,
        auth=auth,
        gradebook_headers=gradebook_headers,
        keep_cookies=quirks.keep_cookies if quirks else True,
        max_retries=max_retries,
        backoff_base_s=0.1,
        backoff_max_s=2.0,
        connect_timeout_s=5.0,
        read_timeout_s=30.0,
    )


@dataclass(frozen=True)
class CheckResult:
    """One behaviour checked: passed (True), failed (False) or not run (None). `note`: what a
    passing SIS does differently from what most consumers expect (worth knowing, not a fault)."""

    name: str
    passed: bool | None
    details: str
    latency_ms: float | None = None
    note: str | None = None

    @property
    def status(self) -> str:
        return {True: "PASS", False: "FAIL", None: "NOT RUN"}[self.passed]


@dataclass
class ConformanceReport:
    base_url: str
    version: str
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True only when every check ran and passed."""
        return bool(self.checks) and all(check.passed for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "version": self.version,
            "passed": self.passed,
            "checks": [
                {
                    "check": c.name,
                    "status": c.status,
                    "details": c.details,
                    "latency_ms": None if c.latency_ms is None else round(c.latency_ms, 1),
                    "note": c.note,
                }
                for c in self.checks
            ],
        }


class CheckFailed(Exception):
    """A behaviour that did not hold; the message says what was seen."""


@dataclass(frozen=True)
class Passed:
    """A check that held, with a note on how (e.g. an update answered 201, not 200)."""

    details: str
    note: str


LONG_TITLE_LENGTH = 1000


@dataclass
class _State:
    """What earlier checks found and later ones need."""

    teacher: User | None = None
    klass: Class | None = None
    student: User | None = None
    category: Category | None = None
    grading_period: AcademicSession | None = None
    line_item: LineItem | None = None
    result: Result | None = None


class _Run:
    def __init__(self, sis: OneRosterClient, teacher_email: str, report: ConformanceReport) -> None:
        self.sis = sis
        self.email = teacher_email
        self.report = report
        self.state = _State()
        self.blocked: str | None = None  # why nothing more can run (no connection, no auth)

    async def check(
        self,
        name: str,
        run: Callable[[], Awaitable[str | Passed]],
        *,
        needs: tuple[str, ...] = (),
        gate: bool = False,
    ) -> bool:
        if self.blocked:
            self.report.checks.append(CheckResult(name, None, f"not run: {self.blocked}"))
            return False
        absent = [n for n in needs if getattr(self.state, n) is None]
        if absent:
            self.report.checks.append(
                CheckResult(name, None, f"not run: no {', '.join(absent)} found by earlier checks")
            )
            return False
        started = time.perf_counter()
        note: str | None = None
        unanswered = False  # the call itself failed (as opposed to an answer that was wrong)
        try:
            outcome = await run()
            passed = True
            if isinstance(outcome, Passed):
                details, note = outcome.details, outcome.note
            else:
                details = outcome
        except CheckFailed as exc:
            details, passed = str(exc), False
        except OneRosterError as exc:
            details, passed, unanswered = str(exc), False, True
        latency = (time.perf_counter() - started) * 1000
        self.report.checks.append(CheckResult(name, passed, details, latency, note))
        if gate and unanswered and not (name == "token_is_issued" and self.sis.tokens_fetched):
            # A token without every scope still lets the checks run: each call that needs a
            # missing scope then fails and names it.
            self.blocked = f"{name} failed"
        return passed

    # ---- reads -----------------------------------------------------------------------------

    async def token_is_issued(self) -> str:
        granted = await self.sis.authenticate()
        if granted is None:
            return "token issued (the SIS did not list the scopes it granted)"
        asked = self.sis.settings.scope_string().split()
        missing = [s for s in asked if s not in granted.split()]
        if missing:
            raise CheckFailed(
                f"token issued without the scope(s) {', '.join(missing)}: ask the SIS "
                "administrator to grant them to this client"
            )
        return f"token issued with {len(asked)} scopes"

    async def teachers_can_be_listed(self) -> str:
        page = await self.sis.page("teachers", limit=1)
        total = f" of {page.total_count}" if page.total_count is not None else ""
        if len(page.records) > 1:
            raise CheckFailed(
                f"teachers?limit=1 answered {len(page.records)} teachers{total}: the SIS ignores "
                "`limit`, so it cannot be paged; ask the SIS vendor to support limit/offset"
            )
        return f"{len(page.records)} teacher{total} on a page of 1"

    async def teachers_page_by_limit_and_offset(self) -> str | Passed:
        first = await self.sis.page("teachers", limit=2, offset=0)
        second = await self.sis.page("teachers", limit=2, offset=1)
        for offset, page in ((0, first), (1, second)):
            if len(page.records) > 2:
                raise CheckFailed(
                    f"teachers?limit=2&offset={offset} answered {len(page.records)} teachers: "
                    "the SIS ignores `limit`, so it cannot be paged"
                )
        ids = [str(r.get("sourcedId")) for r in first.records]
        if len(ids) < 2:
            return Passed(
                f"only {len(ids)} teacher(s): paging could not be compared",
                "list at least two teachers to this client to check paging",
            )
        if not second.records or str(second.records[0].get("sourcedId")) != ids[1]:
            seen = ", ".join(str(r.get("sourcedId")) for r in second.records) or "nothing"
            raise CheckFailed(
                f"teachers?limit=2&offset=1 answered {seen}, not {ids[1]} (the second of "
                f"offset=0): the SIS ignores `offset`, so pages repeat or skip records"
            )
        return "limit=2 gives two teachers; offset=1 starts at the second"

    async def teacher_is_found_by_email(self) -> str:
        found = [
            t
            async for t in self.sis.iter_collection(
                "teachers", filter=where("email", "=", self.email), page_size=10000
            )
        ]
        wanted = self.email.casefold()
        others = [
            t for t in found if not isinstance(t, User) or (t.email or "").casefold() != wanted
        ]
        if others:
            shown = ", ".join(
                f"{t.sourced_id} ({(t.email if isinstance(t, User) else None) or 'no email'})"
                for t in others[:3]
            )
            raise CheckFailed(
                f"teachers?filter=email='{self.email}' answered {len(found)} users, "
                f"{len(others)} of them with another email ({shown}): the SIS ignores or "
                "misreads `filter`"
            )
        if len(found) != 1:
            raise CheckFailed(
                f"teachers?filter=email='{self.email}' returned {len(found)} users, expected one"
            )
        teacher = found[0]
        assert isinstance(teacher, User)
        self.state.teacher = teacher
        return f"sourcedId {teacher.sourced_id}, email {teacher.email} (limit=10000 accepted)"

    async def teacher_classes_have_school_and_terms(self) -> str:
        assert self.state.teacher is not None
        classes = await self.sis.classes_for_teacher(self.state.teacher.sourced_id)
        if not classes:
            raise CheckFailed("the teacher has no active classes: pick a teacher who teaches")
        incomplete = [c.sourced_id for c in classes if not c.school.sourced_id or not c.terms]
        if incomplete:
            raise CheckFailed(f"classes without school or terms: {', '.join(incomplete[:5])}")
        self.state.klass = classes[0]
        return f"{len(classes)} active classes, each with school and terms"

    async def class_students_have_email_and_id(self) -> str:
        assert self.state.klass is not None
        students = await self.sis.students_for_class(self.state.klass.sourced_id)
        if not students:
            raise CheckFailed(f"class {self.state.klass.sourced_id} has no students")
        without = [s.sourced_id for s in students if not s.email]
        if without:
            raise CheckFailed(f"students without email: {', '.join(without[:5])}")
        self.state.student = students[0]
        return f"{len(students)} students in class {self.state.klass.sourced_id}, each with email"

    async def class_categories_are_listed(self) -> str:
        assert self.state.klass is not None
        categories = await self.sis.categories_for_class(self.state.klass.sourced_id)
        where_from = (
            "classes/{id}/categories"
            if self.sis.spec.has("class_categories")
            else "categories (1.1 has no classes/{id}/categories)"
        )
        if categories:
            self.state.category = categories[0]
        return f"{len(categories)} categories from {where_from}"

    async def term_grading_periods_are_complete(self) -> str:
        assert self.state.klass is not None
        term_id = self.state.klass.terms[0].sourced_id
        periods = await self.sis.grading_periods_for_term(term_id)
        if not periods:
            raise CheckFailed(f"term {term_id} has no grading periods")
        wrong = [p.sourced_id for p in periods if p.type != "gradingPeriod"]
        if wrong:
            raise CheckFailed(f"sessions whose type is not gradingPeriod: {', '.join(wrong[:5])}")
        today = datetime.now(UTC).date()
        current = [p for p in periods if p.start_date <= today <= p.end_date]
        self.state.grading_period = (current or periods)[0]
        return f"{len(periods)} grading periods in term {term_id}, each complete"

    # ---- writes ----------------------------------------------------------------------------

    def _line_item(self, title: str) -> LineItem:
        s = self.state
        assert s.klass is not None and s.category is not None and s.line_item is not None
        return s.line_item.model_copy(update={"title": title})

    async def line_item_put_creates_201(self) -> str:
        s = self.state
        assert s.klass is not None and s.category is not None and s.grading_period is not None
        now = datetime.now(UTC).replace(microsecond=0)
        s.line_item = LineItem(
            sourced_id=str(uuid.uuid4()),
            title="sislink check-sis test item",
            description="Written by sislink check-sis --write-test; deleted at the end.",
            assign_date=now,
            due_date=now + timedelta(days=7),
            class_=GUIDRef(sourced_id=s.klass.sourced_id),
            school=GUIDRef(sourced_id=s.klass.school.sourced_id),
            category=GUIDRef(sourced_id=s.category.sourced_id),
            grading_period=GUIDRef(sourced_id=s.grading_period.sourced_id),
            result_value_min=0,
            result_value_max=100,
        )
        outcome = await self.sis.put_line_item(s.line_item)
        if outcome.status_code != 201:
            raise CheckFailed(f"a new lineItem answered {outcome.status_code}, expected 201")
        return f"lineItem {s.line_item.sourced_id} created (201)"

    async def line_item_put_again_updates(self) -> str | Passed:
        assert self.state.line_item is not None
        outcome = await self.sis.put_line_item(self.state.line_item)
        if outcome.status_code == 201:
            return Passed(
                "updated (201)",
                "the SIS answers 201 to a PUT that updates, as 1EdTech's OpenAPI lists; "
                "Google's notebook accepts 200 or 201, so sislink cannot tell an update from a "
                "creation by the answer alone",
            )
        if outcome.status_code != 200:
            raise CheckFailed(
                f"the same PUT again answered {outcome.status_code}, expected 200 or 201"
            )
        return "updated (200)"

    async def line_item_is_listed_for_class(self) -> str:
        s = self.state
        assert s.klass is not None and s.line_item is not None
        items = await self.sis.line_items_for_class(s.klass.sourced_id)
        if s.line_item.sourced_id not in {i.sourced_id for i in items}:
            raise CheckFailed(f"classes/{s.klass.sourced_id}/lineItems does not list it")
        return f"listed among {len(items)} lineItems of the class"

    async def long_title_is_accepted(self) -> str:
        s = self.state
        assert s.line_item is not None
        outcome = await self.sis.put_line_item(self._line_item("L" * LONG_TITLE_LENGTH))
        kept = await self.sis.get("line_item", id=s.line_item.sourced_id)
        assert isinstance(kept, LineItem)
        return (
            f"accepted ({outcome.status_code}); the SIS kept {len(kept.title)} of "
            f"{LONG_TITLE_LENGTH} characters"
        )

    def _result(self, **update: Any) -> Result:
        s = self.state
        assert s.result is not None
        return s.result.model_copy(update=update)

    async def _read_result(self) -> Result:
        s = self.state
        assert s.klass is not None and s.line_item is not None and s.result is not None
        for result in await self.sis.results_for_line_item(
            s.klass.sourced_id, s.line_item.sourced_id
        ):
            if result.sourced_id == s.result.sourced_id:
                return result
        raise CheckFailed(
            f"classes/{s.klass.sourced_id}/lineItems/{s.line_item.sourced_id}/results "
            "does not list the result"
        )

    async def result_put_is_accepted(self) -> str:
        s = self.state
        assert s.line_item is not None and s.student is not None and s.klass is not None
        s.result = Result(
            sourced_id=str(uuid.uuid4()),
            line_item=GUIDRef(sourced_id=s.line_item.sourced_id),
            student=GUIDRef(sourced_id=s.student.sourced_id),
            class_=GUIDRef(sourced_id=s.klass.sourced_id),
            score_status="fully graded",
            score=80,
            score_date=date.today(),
            comment="sislink check-sis",
        )
        outcome = await self.sis.put_result(s.result)
        return f"result {s.result.sourced_id} score 80 accepted ({outcome.status_code})"

    async def extra_credit_score_is_kept(self) -> str:
        await self.sis.put_result(self._result(score=300))
        kept = await self._read_result()
        if kept.score != 300:
            raise CheckFailed(f"score 300 of 100 read back as {kept.score}")
        return "score 300 of 100 read back as 300"

    async def exempt_status_is_kept(self) -> str:
        await self.sis.put_result(self._result(score_status="exempt", score=None))
        kept = await self._read_result()
        if kept.score_status != "exempt":
            raise CheckFailed(f"scoreStatus exempt read back as {kept.score_status!r}")
        return "scoreStatus exempt read back as exempt"

    async def result_delete_removes_it(self) -> str:
        s = self.state
        assert s.result is not None and s.klass is not None and s.line_item is not None
        result_id = s.result.sourced_id
        if not await self.sis.delete_result(result_id):
            raise CheckFailed("DELETE answered 404: the SIS did not know the result")
        left = await self.sis.results_for_line_item(s.klass.sourced_id, s.line_item.sourced_id)
        if result_id in {r.sourced_id for r in left}:
            raise CheckFailed("the result is still listed after DELETE")
        return "deleted, and no longer listed"

    async def line_item_delete_removes_it(self) -> str:
        s = self.state
        assert s.line_item is not None and s.klass is not None
        item_id = s.line_item.sourced_id
        if not await self.sis.delete_line_item(item_id):
            raise CheckFailed("DELETE answered 404: the SIS did not know the lineItem")
        left = await self.sis.line_items_for_class(s.klass.sourced_id)
        if item_id in {i.sourced_id for i in left}:
            raise CheckFailed("the lineItem is still listed after DELETE")
        return "deleted, and no longer listed"


async def run_conformance(
    settings: ConnectionSettings, teacher_email: str, *, write_test: bool = False
) -> ConformanceReport:
    """Runs the Classroom call sequence (SIS-FACTS.md steps 1-11; 8-11 only with `write_test`)."""
    report = ConformanceReport(settings.root_url, Version(settings.version).value)
    async with OneRosterClient(settings) as sis:
        run = _Run(sis, teacher_email, report)
        if isinstance(settings.auth, OAuth2Settings):
            await run.check("token_is_issued", run.token_is_issued, gate=True)
        await run.check("teachers_can_be_listed", run.teachers_can_be_listed, gate=True)
        await run.check("teachers_page_by_limit_and_offset", run.teachers_page_by_limit_and_offset)
        await run.check("teacher_is_found_by_email", run.teacher_is_found_by_email)
        await run.check(
            "teacher_classes_have_school_and_terms",
            run.teacher_classes_have_school_and_terms,
            needs=("teacher",),
        )
        await run.check(
            "class_students_have_email_and_id",
            run.class_students_have_email_and_id,
            needs=("klass",),
        )
        await run.check(
            "class_categories_are_listed", run.class_categories_are_listed, needs=("klass",)
        )
        await run.check(
            "term_grading_periods_are_complete",
            run.term_grading_periods_are_complete,
            needs=("klass",),
        )
        if write_test:
            await _write_checks(run)
    return report


async def _write_checks(run: _Run) -> None:
    line_item_needs = ("klass", "category", "grading_period")
    created = await run.check(
        "line_item_put_creates_201", run.line_item_put_creates_201, needs=line_item_needs
    )
    if not created and run.state.line_item is not None:
        # The PUT may have written it with another status: keep going so it gets deleted.
        created = True
    await run.check(
        "line_item_put_again_updates", run.line_item_put_again_updates, needs=("line_item",)
    )
    await run.check(
        "line_item_is_listed_for_class", run.line_item_is_listed_for_class, needs=("line_item",)
    )
    await run.check("long_title_is_accepted", run.long_title_is_accepted, needs=("line_item",))
    await run.check(
        "result_put_is_accepted", run.result_put_is_accepted, needs=("line_item", "student")
    )
    await run.check("extra_credit_score_is_kept", run.extra_credit_score_is_kept, needs=("result",))
    await run.check("exempt_status_is_kept", run.exempt_status_is_kept, needs=("result",))
    await run.check("result_delete_removes_it", run.result_delete_removes_it, needs=("result",))
    await run.check(
        "line_item_delete_removes_it", run.line_item_delete_removes_it, needs=("line_item",)
    )
