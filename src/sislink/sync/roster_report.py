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
    "teachers_without_email": "teachers have no email in the SIS; they were imported, but "
    "cannot sign in, link their classes or be matched by email until the SIS gives them one",
    "enrolments_moved": "enrolments now name another class or person in the SIS (their "
    "sourcedId was re-used): the old enrolment ended and the new one started",
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
    "categories_without_class": "categories are listed by no class of the SIS "
    "(classes/{id}/categories) and were skipped",
    "categories_not_permitted": "the connection may not read grading categories (the SIS "
    "refused them); ask the SIS administrator for the gradebook scope",
    "invalid_records": "records are not valid OneRoster and were rejected; what sislink held "
    "for them stays as it was (they are not deactivated): correct them in the SIS",
    "admins_not_deactivated": "administrators no longer in the SIS were kept active so that "
    "nobody is locked out; deactivate them by hand if they left",
    "people_renumbered": "people took over the row of a person the SIS no longer sends (same "
    "email, and the same identifier or name: the SIS re-numbered them); check each is the "
    "same person",
    "class_categories_not_served": "call to classes/{id}/categories answered 404: the SIS does "
    "not list a class's own categories, so each linked class is offered the district's",
    "enrolments_moved_held": "enrolments now name another class or person in the SIS; as the "
    "import is on hold they were left as they were (the next applied import moves them)",
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


# Imported classes left unlinked are listed one by one up to this many; the rest are counted.
LEFT_UNLINKED_LISTED = 100
# Rejected records are listed one by one (id and reason) up to this many; the rest are counted.
REJECTED_LISTED = 200
# Warnings about records that were not applied: an import that has any needs attention.
NOT_APPLIED = (
    "invalid_records",
    "duplicate_emails",
    "enrolments_unknown_user",
    "enrolments_unknown_class",
    "duplicate_enrolments",
    "categories_without_class",
    "skipped",
)


@dataclass
class ClassLeftUnlinked:
    """An imported class the import did not link to its SIS class, and why, for its teacher
    and the administrator: `reason` is "unlinked_by_hand" (someone unlinked it; imports leave
    that alone) or "sis_class_taken" (another class is linked to its SIS class)."""

    class_id: int
    class_title: str
    sis_class_id: str
    reason: str
    unlinked_at: str | None = None  # when it was unlinked by hand, ISO 8601
    holder_id: int | None = None  # the class linked to its SIS class, if one is
    holder_title: str | None = None

    @property
    def message(self) -> str:
        head = f"Class {self.class_title!r} was not linked to SIS class {self.sis_class_id}"
        held = (
            f"SIS class {self.sis_class_id} is already linked to class {self.holder_title!r}"
            if self.holder_title is not None
            else None
        )
        if self.reason == "unlinked_by_hand":
            day = (self.unlinked_at or "")[:10] or "an earlier day"
            advice = (
                f"{head}: it was unlinked by hand on {day}; link it again if that was a mistake"
            )
            return f"{advice} ({held}: unlink it there first)" if held else advice
        return f"{head}: {held or 'another class is linked to it'} (one SIS class per class)"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassLeftUnlinked:
        return cls(
            class_id=int(data["class_id"]),
            class_title=str(data["class_title"]),
            sis_class_id=str(data["sis_class_id"]),
            reason=str(data["reason"]),
            unlinked_at=data.get("unlinked_at"),
            holder_id=data.get("holder_id"),
            holder_title=data.get("holder_title"),
        )


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
    # Imported classes still unlinked after the import, and why (listed up to a limit).
    classes_left_unlinked: list[ClassLeftUnlinked] = field(default_factory=list)
    classes_left_unlinked_count: int = 0
    # Records the SIS sent that are not valid OneRoster: {entity, sourced_id, reason}.
    rejected: list[dict[str, str]] = field(default_factory=list)
    rejected_count: int = 0

    def reject(self, entity: str, sourced_id: str, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < REJECTED_LISTED:
            self.rejected.append({"entity": entity, "sourced_id": sourced_id, "reason": reason})

    def not_applied(self) -> tuple[int, list[str]]:
        """How many records the SIS sent were not applied (rejected or skipped for a reason
        someone must fix), and the reasons in words, first the most telling."""
        found = [w for w in self.warnings.values() if w.code in NOT_APPLIED]
        count = sum(w.count for w in found)
        reasons = [
            f"{w.message} (e.g. {', '.join(w.examples[:2])})" if w.examples else w.message
            for w in found
        ]
        return count, reasons

    def left_unlinked(self, entry: ClassLeftUnlinked) -> None:
        self.classes_left_unlinked_count += 1
        if len(self.classes_left_unlinked) < LEFT_UNLINKED_LISTED:
            self.classes_left_unlinked.append(entry)

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
            "classes_left_unlinked": [c.to_dict() for c in self.classes_left_unlinked],
            "classes_left_unlinked_count": self.classes_left_unlinked_count,
            "rejected": self.rejected,
            "rejected_count": self.rejected_count,
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
            classes_left_unlinked=[
                ClassLeftUnlinked.from_dict(item)
                for item in data.get("classes_left_unlinked") or []
            ],
            classes_left_unlinked_count=int(data.get("classes_left_unlinked_count") or 0),
            rejected=[dict(item) for item in data.get("rejected") or []],
            rejected_count=int(data.get("rejected_count") or 0),
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
