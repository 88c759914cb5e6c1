"""What a roster import did or would do: counts per entity, warnings a school can act on, the plan.

The report is plain data (`to_dict` / `from_dict`) so that it can be stored in the Job row,
printed as JSON by `sislink roster import --json` and served by the console.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ENTITIES = (
    "schools",
    "terms",
    "grading_periods",
    "courses",
    "classes",
    "teachers",
    "students",
    "enrolments",
    "categories",
)
# An import that would deactivate more than the allowed share of these goes on hold.
GUARDED = ("students", "teachers", "enrolments")
EXAMPLES = 5

# What each warning means, in words for the person who can fix it (the SIS administrator).
WARNING_TEXT: dict[str, str] = {
    "students_without_email": "students have no email in the SIS; they were imported, but "
    "cannot sign in or be matched by email until the SIS gives them one",
    "duplicate_emails": "people were not imported because their email is already used by "
    "someone else; correct the emails in the SIS",
    "classes_without_teacher": "active classes have no active teacher; add a teacher "
    "enrolment in the SIS",
    "enrolments_unknown_user": "enrolments point at a user the SIS did not send (or that "
    "was not imported); they were skipped",
    "enrolments_unknown_class": "enrolments point at a class the SIS did not send (or that "
    "was not imported); they were skipped",
    "enrolments_other_role": "enrolments have a role other than teacher or student "
    "(aide, guardian, ...); sislink imports teachers and students only",
    "duplicate_enrolments": "enrolments repeat a person already enrolled in the same class "
    "with the same role; they were skipped",
    "grading_periods_outside_term": "grading periods start before or end after their term; "
    "correct the dates in the SIS",
    "categories_without_class": "categories are not tied to a class (metadata.classSourcedId) "
    "and were skipped",
    "categories_not_permitted": "the connection may not read grading categories (the SIS "
    "refused them); ask the SIS administrator for the gradebook scope",
    "invalid_records": "records are not valid OneRoster and were skipped",
    "admins_not_deactivated": "administrators no longer in the SIS were kept active so that "
    "nobody is locked out; deactivate them by hand if they left",
    "skipped": "records were skipped",
}


@dataclass
class EntityCounts:
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0
    skipped: int = 0


@dataclass
class RosterWarning:
    """One kind of problem: how many records have it and a few of their SIS ids (and why)."""

    code: str
    entity: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        return f"{self.count} {WARNING_TEXT.get(self.code, WARNING_TEXT['skipped'])}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "entity": self.entity,
            "count": self.count,
            "message": self.message,
            "examples": self.examples,
        }


@dataclass
class RosterReport:
    """One import: full or delta, dry run or applied (or on hold), its counts and warnings.

    `plan` holds a few examples per entity of what is (or would be) created, updated and
    deactivated; `deactivations` the complete lists of SIS ids to deactivate, kept only while
    the import is on hold (approving applies exactly those).
    """

    mode: str  # "full" or "delta"
    dry_run: bool = False
    status: str = "running"  # applied | dry_run | on_hold | running
    since: str | None = None  # the delta's dateLastModified lower bound
    started_at: str | None = None
    finished_at: str | None = None
    requests: int = 0
    hold_reason: str | None = None
    counts: dict[str, EntityCounts] = field(
        default_factory=lambda: {name: EntityCounts() for name in ENTITIES}
    )
    warnings: dict[str, RosterWarning] = field(default_factory=dict)
    plan: dict[str, dict[str, list[str]]] = field(
        default_factory=lambda: {
            name: {"create": [], "update": [], "deactivate": []} for name in ENTITIES
        }
    )
    deactivations: dict[str, list[str]] = field(default_factory=dict)
    classes_linked: int = 0  # imported classes linked to their SIS class by this import

    def warn(self, code: str, entity: str, example: str, count: int = 1) -> None:
        key = f"{code}:{entity}" if code == "skipped" else code
        warning = self.warnings.setdefault(key, RosterWarning(code, entity))
        warning.count += count
        if len(warning.examples) < EXAMPLES:
            warning.examples.append(example)

    def example(self, entity: str, action: str, sourced_id: str) -> None:
        listed = self.plan[entity][action]
        if len(listed) < EXAMPLES:
            listed.append(sourced_id)

    def wants_examples(self, entity: str, action: str) -> bool:
        return len(self.plan[entity][action]) < EXAMPLES

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "dry_run": self.dry_run,
            "status": self.status,
            "since": self.since,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "requests": self.requests,
            "hold_reason": self.hold_reason,
            "counts": {name: asdict(counts) for name, counts in self.counts.items()},
            "warnings": [warning.to_dict() for warning in self.warnings.values()],
            "plan": self.plan,
            "deactivations": self.deactivations,
            "classes_linked": self.classes_linked,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RosterReport:
        report = cls(
            mode=data.get("mode", "full"),
            dry_run=bool(data.get("dry_run")),
            status=data.get("status", "running"),
            since=data.get("since"),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            requests=int(data.get("requests") or 0),
            hold_reason=data.get("hold_reason"),
            classes_linked=int(data.get("classes_linked") or 0),
        )
        for name, counts in (data.get("counts") or {}).items():
            report.counts[name] = EntityCounts(**counts)
        for item in data.get("warnings") or []:
            warning = RosterWarning(
                item["code"], item.get("entity", ""), item["count"], list(item["examples"])
            )
            key = f"{warning.code}:{warning.entity}" if warning.code == "skipped" else warning.code
            report.warnings[key] = warning
        report.plan.update(data.get("plan") or {})
        report.deactivations = {k: list(v) for k, v in (data.get("deactivations") or {}).items()}
        return report
