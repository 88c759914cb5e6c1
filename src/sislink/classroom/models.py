"""The classroom's own data as SQLAlchemy tables: people, classes, coursework, marks, SIS links, jobs."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Named constraints, so that migrations and the models agree on every name on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Role(enum.StrEnum):
    """What a person may be in this classroom (several at once)."""

    ADMIN = "admin"
    TEACHER = "teacher"
    STUDENT = "student"


class EnrolmentRole(enum.StrEnum):
    TEACHER = "teacher"
    STUDENT = "student"


class CourseworkState(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    DELETED = "deleted"


class MarkState(enum.StrEnum):
    DRAFT = "draft"
    RETURNED = "returned"


class ConnectionStatus(enum.StrEnum):
    DRAFT = "draft"
    AUTHORISED = "authorised"
    DISCONNECTED = "disconnected"


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    # Finished, but something in it was not done (items skipped, records rejected): someone
    # should read its report. Never shown as a green "succeeded".
    NEEDS_ATTENTION = "needs_attention"
    FAILED = "failed"
    ON_HOLD = "on_hold"
    CANCELLED = "cancelled"


class ExportKind(enum.StrEnum):
    LINE_ITEM = "lineItem"
    RESULT = "result"


# Enum values are stored as plain strings (no database enum types): adding a value later is
# a code change, not a migration on every database.
ENUM_LENGTH = 20


class Organisation(Base):
    """The one organisation this installation serves, and its identity namespace."""

    __tablename__ = "organisation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Made once and never changed: every SIS id that mark export sends derives from it.
    identity_namespace: Mapped[str] = mapped_column(
        String(36), default=lambda: str(uuid.uuid4()), unique=True
    )
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    @property
    def namespace_uuid(self) -> uuid.UUID:
        return uuid.UUID(self.identity_namespace)


class Person(Base):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    given_name: Mapped[str | None] = mapped_column(String(150))
    family_name: Mapped[str | None] = mapped_column(String(150))
    email: Mapped[str | None] = mapped_column(String(320))
    # The email folded to lower case: uniqueness is case-insensitive on both databases.
    email_key: Mapped[str | None] = mapped_column(String(320), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_teacher: Mapped[bool] = mapped_column(Boolean, default=False)
    is_student: Mapped[bool] = mapped_column(Boolean, default=False)
    sis_sourced_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    sis_identifier: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)

    @property
    def roles(self) -> frozenset[Role]:
        held = {
            Role.ADMIN: self.is_admin,
            Role.TEACHER: self.is_teacher,
            Role.STUDENT: self.is_student,
        }
        return frozenset(role for role, has_role in held.items() if has_role)

    def __repr__(self) -> str:
        return f"Person(id={self.id!r}, name={self.name!r}, email={self.email!r})"


class School(Base):
    __tablename__ = "school"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    identifier: Mapped[str | None] = mapped_column(String(255))
    sis_sourced_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Term(Base):
    __tablename__ = "term"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    school_year: Mapped[str | None] = mapped_column(String(20))
    sis_sourced_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class GradingPeriod(Base):
    __tablename__ = "grading_period"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    start_date: Mapped[date | None] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    term_id: Mapped[int | None] = mapped_column(ForeignKey("term.id"), index=True)
    sis_sourced_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Course(Base):
    __tablename__ = "course"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    course_code: Mapped[str | None] = mapped_column(String(255))
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"), index=True)
    sis_sourced_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Class(Base):
    """A class (a section): who teaches it, when, where; imported from the SIS or made here."""

    __tablename__ = "class"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    section: Mapped[str | None] = mapped_column(String(255))
    school_id: Mapped[int | None] = mapped_column(ForeignKey("school.id"), index=True)
    term_id: Mapped[int | None] = mapped_column(ForeignKey("term.id"), index=True)
    course_id: Mapped[int | None] = mapped_column(ForeignKey("course.id"), index=True)
    primary_teacher_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    sis_sourced_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    # Field names a teacher changed by hand; roster imports leave these alone.
    hand_edited_fields: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)
    # When the class was last unlinked from its SIS class by hand (cleared when it is linked
    # by hand again): while set, roster imports do not link the imported class again.
    sis_unlinked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"Class(id={self.id!r}, title={self.title!r})"


class Enrolment(Base):
    """A person in a class as teacher or student; co-teachers are teacher enrolments."""

    __tablename__ = "enrolment"
    __table_args__ = (UniqueConstraint("class_id", "person_id", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("class.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    role: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    sis_sourced_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Category(Base):
    __tablename__ = "category"
    __table_args__ = (UniqueConstraint("class_id", "title"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("class.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    weight: Mapped[float | None] = mapped_column(Float)
    sis_sourced_id: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Coursework(Base):
    __tablename__ = "coursework"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("class.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    max_points: Mapped[float | None] = mapped_column(Float)
    assign_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("category.id"), index=True)
    grading_period_id: Mapped[int | None] = mapped_column(
        ForeignKey("grading_period.id"), index=True
    )
    state: Mapped[str] = mapped_column(String(ENUM_LENGTH), default=CourseworkState.DRAFT)
    export_to_sis: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class Mark(Base):
    __tablename__ = "mark"
    __table_args__ = (UniqueConstraint("coursework_id", "student_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    coursework_id: Mapped[int] = mapped_column(ForeignKey("coursework.id", ondelete="CASCADE"))
    student_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    score: Mapped[float | None] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(ENUM_LENGTH), default=MarkState.DRAFT)
    excused: Mapped[bool] = mapped_column(Boolean, default=False)
    missing: Mapped[bool] = mapped_column(Boolean, default=False)
    late: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str] = mapped_column(Text, default="")
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class SisConnection(Base):
    """One connection to a SIS; several may exist over time (history), at most one is current."""

    __tablename__ = "sis_connection"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(10))
    host_url: Mapped[str] = mapped_column(String(2000))
    token_url: Mapped[str | None] = mapped_column(String(2000))
    access_key: Mapped[str] = mapped_column(String(500))
    # A Fernet token; the secret code itself is never stored.
    secret_code_sealed: Mapped[str] = mapped_column(Text)
    # Sealed JSON of the profile's extra credentials (Infinite Campus's vendor key), if any.
    extra_credentials_sealed: Mapped[str | None] = mapped_column(Text)
    # How the OAuth 2 token request sends the client id and secret ("basic" or "post");
    # NULL: as the partner profile says.
    client_auth: Mapped[str | None] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(ENUM_LENGTH), default=ConnectionStatus.DRAFT)
    teacher_export_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # 1 on the current connection, NULL on history: a unique column allows only one current.
    current_slot: Mapped[int | None] = mapped_column(Integer, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    authorised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    connected_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    district_sourced_id: Mapped[str | None] = mapped_column(String(255))
    last_import_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_export_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_current(self) -> bool:
        return self.current_slot is not None

    @property
    def sis_identity(self) -> str | None:
        """Partner plus district sourcedId: survives host URL changes; None until known."""
        if self.district_sourced_id is None:
            return None
        return f"{self.partner}:{self.district_sourced_id}"

    def __repr__(self) -> str:
        return (
            f"SisConnection(id={self.id!r}, partner={self.partner!r}, host_url={self.host_url!r}, "
            f"status={self.status!r}, secret_code=<hidden>)"
        )


class GoogleConnection(Base):
    """The connection to a Google Workspace domain's Classroom (a service account with
    domain-wide delegation); history kept, at most one current. The key file is stored sealed
    and erased at disconnect."""

    __tablename__ = "google_connection"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    domain: Mapped[str] = mapped_column(String(255))
    admin_email: Mapped[str] = mapped_column(String(320))
    client_email: Mapped[str] = mapped_column(String(320))
    client_id: Mapped[str] = mapped_column(String(100))
    project_id: Mapped[str] = mapped_column(String(255))
    private_key_id: Mapped[str] = mapped_column(String(100))
    api_endpoint: Mapped[str] = mapped_column(String(2000))
    # A Fernet token of the whole JSON key file; NULL once disconnected (the key erased).
    key_sealed: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(ENUM_LENGTH), default=ConnectionStatus.DRAFT)
    # 1 on the current connection, NULL on history: a unique column allows only one current.
    current_slot: Mapped[int | None] = mapped_column(Integer, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    authorised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # JSON: the last authorise's checks, each {name, ok, detail}; no secret in it.
    last_check: Mapped[str | None] = mapped_column(Text)
    connected_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return (
            f"GoogleConnection(id={self.id!r}, domain={self.domain!r}, "
            f"client_email={self.client_email!r}, status={self.status!r}, key=<hidden>)"
        )


class GoogleCourseLink(Base):
    """A classroom class pushed into Google Classroom as one course (issue 13). The course is
    found again by `alias` (a `d:` domain alias derived from the SIS identity, never from the
    host URL), so a retry, a crash or a reconnect of either side never makes a second one.
    A row is written only for courses sislink created (or found by its own alias): courses made
    by hand in Classroom never get one and are never touched."""

    __tablename__ = "google_course_link"
    __table_args__ = (UniqueConstraint("domain", "alias"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("class.id", ondelete="CASCADE"), unique=True)
    # The Google Workspace domain the course lives in: another domain is another course.
    domain: Mapped[str] = mapped_column(String(255))
    # The course's alias without its `d:` prefix, e.g. `sislink-<uuid5>`.
    alias: Mapped[str] = mapped_column(String(255))
    # Google's own course id (what `alternateLink` and the API answer with); NULL until known.
    course_id: Mapped[str | None] = mapped_column(String(100))
    # The course's state as last seen: PROVISIONED, ACTIVE, DECLINED, ARCHIVED, SUSPENDED.
    course_state: Mapped[str | None] = mapped_column(String(ENUM_LENGTH))
    alternate_link: Mapped[str | None] = mapped_column(String(2000))
    owner_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    roster_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Grade pull: the greatest `updateTime` seen (RFC 3339 text, as Google sends it) and when.
    grades_watermark: Mapped[str | None] = mapped_column(String(40))
    grades_pulled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_grade_job_id: Mapped[int | None] = mapped_column(Integer)


class GoogleCourseMember(Base):
    """A teacher or student that sislink itself added to a course. Removal when the SIS ends
    an enrolment touches only these rows: people a teacher added by hand are never removed."""

    __tablename__ = "google_course_member"
    __table_args__ = (UniqueConstraint("link_id", "email_key", "role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(
        ForeignKey("google_course_link.id", ondelete="CASCADE"), index=True
    )
    # Lower-case email: Classroom matches users by their Google email address.
    email_key: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(ENUM_LENGTH))  # "teacher" or "student"
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class GoogleCourseworkLink(Base):
    """A Classroom courseWork item pulled into the classroom as one coursework (issue 13):
    the coursework then exports to the SIS like any other, with its derived ids and ledger."""

    __tablename__ = "google_coursework_link"
    __table_args__ = (UniqueConstraint("link_id", "course_work_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    link_id: Mapped[int] = mapped_column(
        ForeignKey("google_course_link.id", ondelete="CASCADE"), index=True
    )
    coursework_id: Mapped[int] = mapped_column(
        ForeignKey("coursework.id", ondelete="CASCADE"), unique=True
    )
    course_work_id: Mapped[str] = mapped_column(String(100))
    # The courseWork's `updateTime` when last pulled (RFC 3339 text).
    update_time: Mapped[str | None] = mapped_column(String(40))


class ClassLink(Base):
    """A classroom class linked to one SIS class: one SIS class per classroom class, and one
    classroom class per SIS class of a connection (the unique index below). Links of another
    SIS stay on their old connection, so the same sourcedId may appear there."""

    __tablename__ = "class_link"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("class.id", ondelete="CASCADE"), unique=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("sis_connection.id"))
    sis_class_sourced_id: Mapped[str] = mapped_column(String(255))
    linked_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class Job(Base):
    __tablename__ = "job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(ENUM_LENGTH), default=JobStatus.QUEUED, index=True)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int | None] = mapped_column(Integer)
    progress_message: Mapped[str] = mapped_column(Text, default="")
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("sis_connection.id"), index=True)
    class_id: Mapped[int | None] = mapped_column(
        ForeignKey("class.id", ondelete="SET NULL"), index=True
    )
    lock_key: Mapped[str | None] = mapped_column(String(200))
    # Equals lock_key while the job is queued, running or on hold, NULL once it ends: the
    # unique constraint lets at most one unfinished job hold a lock.
    active_lock: Mapped[str | None] = mapped_column(String(200), unique=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What the job was asked to do (ids, options): a worker elsewhere runs it from this alone.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Set by whoever cancels; the job checks it between batches and stops cleanly.
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # The lease of a queued or running job (services/jobs.py): the process that holds it (host,
    # pid, start, machine), its last heartbeat and when the lease runs out, both in the
    # database's time. A dead holder's job is failed and its locks taken over by the next run.
    lease_holder: Mapped[str | None] = mapped_column(String(300))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobLock(Base):
    """A lock an unfinished job holds: its own (`Job.lock_key`) and, for as long as it works on
    one, a class's (`class:N`, taken by an export of every class). The key is unique, so two
    jobs never hold one lock; a job's locks go when it ends."""

    __tablename__ = "job_lock"

    lock_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), index=True)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class RosterSyncState(Base):
    """Where roster imports from one SIS connection stand: the delta watermark, the last runs."""

    __tablename__ = "roster_sync_state"

    connection_id: Mapped[int] = mapped_column(ForeignKey("sis_connection.id"), primary_key=True)
    # The start of the last import that finished: the next delta asks for changes since then.
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_full_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_job_id: Mapped[int | None] = mapped_column(Integer)


class RosterSchedule(Base):
    """When roster imports run by themselves (one row): every so often, except in a pause window."""

    __tablename__ = "roster_schedule"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    interval_minutes: Mapped[int] = mapped_column(Integer, default=360)
    # Dates (inclusive) with no scheduled imports, e.g. between school years.
    pause_from: Mapped[date | None] = mapped_column(Date)
    pause_until: Mapped[date | None] = mapped_column(Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class AuditEvent(Base):
    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    action: Mapped[str] = mapped_column(String(100), index=True)
    subject: Mapped[str] = mapped_column(String(200), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ExportRecord(Base):
    """What mark export last sent for one classroom object to one SIS (the export ledger)."""

    __tablename__ = "export_record"
    __table_args__ = (UniqueConstraint("kind", "object_id", "sis_identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    object_id: Mapped[int] = mapped_column(Integer)
    # Indexed: an export reads its class's ledger by it (without, each read scans every class's).
    sis_identity: Mapped[str] = mapped_column(String(300), index=True)
    sis_sourced_id: Mapped[str] = mapped_column(String(255), index=True)
    content_hash: Mapped[str | None] = mapped_column(String(128))
    last_status: Mapped[str] = mapped_column(String(50))
    last_message: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, onupdate=utc_now)


class MissingMarkExport(enum.StrEnum):
    """What a mark flagged missing becomes in the SIS (a per-class choice)."""

    ZERO = "zero"  # a score of 0
    NOT_SUBMITTED = "not_submitted"  # scoreStatus 'not submitted', no score


class ClassExportSettings(Base):
    """A class's mark export choices, and what the SIS said of its class when it was linked."""

    __tablename__ = "class_export_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("class.id", ondelete="CASCADE"), unique=True)
    missing_as: Mapped[str] = mapped_column(String(ENUM_LENGTH), default=MissingMarkExport.ZERO)
    export_drafts: Mapped[bool] = mapped_column(Boolean, default=False)
    # Kept from the SIS on link (and refreshed on export): the SIS class's school and terms,
    # its grading periods ([{sourcedId, title, startDate, endDate}]) and categories.
    sis_school_sourced_id: Mapped[str | None] = mapped_column(String(255))
    sis_term_sourced_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    sis_grading_periods: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    sis_categories: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    sis_refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Calls for the SIS class that the SIS answered 404 although the class exists (a term's
    # grading periods, the class's categories), in words: why those facts are missing.
    sis_not_served: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=list)
    # The highest mark a coursework takes, as a multiple of its points (None: the default, 2).
    extra_credit_limit: Mapped[float | None] = mapped_column(Float)


class MarkExportReport(Base):
    """One mark export of one class: what was sent, skipped and failed, item by item."""

    __tablename__ = "mark_export_report"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("class.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    outcome: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    writes: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class ClassExportState(Base):
    """What a class's last mark export that sent everything it planned was made from: a digest
    of its inputs (marks, coursework, categories, students, settings, link, SIS facts, ledger).
    While an export finds the same digest, it has nothing to send and asks the SIS nothing."""

    __tablename__ = "class_export_state"

    class_id: Mapped[int] = mapped_column(
        ForeignKey("class.id", ondelete="CASCADE"), primary_key=True
    )
    sis_identity: Mapped[str] = mapped_column(String(300))
    inputs_digest: Mapped[str] = mapped_column(String(64))
    # The items of that export by kind and outcome, as an unchanged export reports them.
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    exported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


Index(
    "ix_class_link_sis_class",
    ClassLink.connection_id,
    ClassLink.sis_class_sourced_id,
    unique=True,
)


class ApiToken(Base):
    """A REST API token: only its SHA-256 is stored; the token itself is shown once, when made."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"ApiToken(id={self.id!r}, person_id={self.person_id!r}, token=<hidden>)"


class LoginAccount(Base):
    """A person's console password, as an argon2 hash only; without one nobody signs in."""

    __tablename__ = "login_account"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    password_hash: Mapped[str] = mapped_column(String(255))
    password_set_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"LoginAccount(person_id={self.person_id!r}, password=<hidden>)"


class Invitation(Base):
    """A set-password link for one person: only the token's SHA-256 is kept; used once."""

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleKey(Base):
    """The console's session-signing key (one row), sealed with the installation's secret box."""

    __tablename__ = "console_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


# The largest id a row can have: ids are INTEGER columns, 32-bit signed on PostgreSQL. An id
# outside 1..MAX_ROW_ID names no row (the REST API answers 404 without asking the database).
MAX_ROW_ID = 2**31 - 1


class ConsoleSession(Base):
    """A signed-in console session: the browser's cookie carries a random key, only its SHA-256
    is kept here. Deleting the row ends the session at once (sign-out, password change,
    account disabled), whatever cookie a browser kept."""

    __tablename__ = "console_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The OpenID Connect provider the person signed in with; None: with their password.
    # Removing the provider ends its sessions.
    provider_id: Mapped[int | None] = mapped_column(
        ForeignKey("oidc_provider.id", ondelete="CASCADE"), index=True, default=None
    )

    def __repr__(self) -> str:
        return f"ConsoleSession(id={self.id!r}, person_id={self.person_id!r}, key=<hidden>)"


class OidcProvider(Base):
    """An OpenID Connect provider people may sign in with (issue 18): the school's Google
    Workspace, Microsoft Entra ID, or any other. The client secret is kept sealed, or read at
    run time from the environment variable named here; never in clear."""

    __tablename__ = "oidc_provider"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(String(2000), unique=True)
    client_id: Mapped[str] = mapped_column(String(500))
    client_secret_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    client_secret_env: Mapped[str | None] = mapped_column(String(200), default=None)
    domain: Mapped[str | None] = mapped_column(String(255), default=None)
    admin_group: Mapped[str | None] = mapped_column(String(255), default=None)
    from_environment: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)

    def __repr__(self) -> str:
        return f"OidcProvider(id={self.id!r}, issuer={self.issuer!r}, secret=<hidden>)"


class OidcPending(Base):
    """A sign-in sent to a provider and not back yet: the browser's cookie holds the `state`,
    only its SHA-256 is kept here with the nonce and the sealed PKCE verifier. Used once: the
    row goes when the provider's answer comes back (or after ten minutes)."""

    __tablename__ = "oidc_pending"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state_hash: Mapped[str] = mapped_column(String(64), unique=True)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("oidc_provider.id", ondelete="CASCADE"), index=True
    )
    nonce: Mapped[str] = mapped_column(String(100))
    code_verifier_sealed: Mapped[str] = mapped_column(Text)
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    next_path: Mapped[str] = mapped_column(String(2000), default="/")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    def __repr__(self) -> str:
        return f"OidcPending(id={self.id!r}, provider_id={self.provider_id!r}, state=<hidden>)"


class SignInSetting(Base):
    """How people may sign in to the console (one row): whether the password form is offered.
    Password sign-in is on until an administrator turns it off (once a provider has worked)."""

    __tablename__ = "sign_in_setting"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    password_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class SignInFailure(Base):
    """A console sign-in that failed, or is being checked (it counts from the moment it starts
    and is removed if it succeeds): by the email typed (folded, whether or not it is a person)
    and the address it came from. Kept in the database so every console process counts them."""

    __tablename__ = "sign_in_failure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_key: Mapped[str] = mapped_column(String(320))
    address: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now, index=True)


Index("ix_sign_in_failure_account", SignInFailure.account_key, SignInFailure.failed_at)
Index("ix_sign_in_failure_address", SignInFailure.address, SignInFailure.failed_at)
# The order (and keyset) of the administrator's People and Classes pages (migration 0016).
Index("ix_person_name_id", Person.name, Person.id)
Index("ix_class_title_id", Class.title, Class.id)
# The Activity page's charts: exports by when they started, with what is summed (migration 0017).
Index(
    "ix_mark_export_report_started",
    MarkExportReport.started_at,
    MarkExportReport.dry_run,
    MarkExportReport.outcome,
    MarkExportReport.writes,
)


class OperatorSummary(Base):
    """A summary e-mail to the administrators (operations/summary.py): the morning summary of
    a day (`kind` "daily", one row per day in the school's time zone: the unique key lets one
    process of several claim it), one asked for (`sislink summary send`, "on_request"), or the
    alert for a job put on hold ("hold", one per job). The daily and asked-for rows remember
    what they covered, so the next summary tells what ran since."""

    __tablename__ = "operator_summary"
    __table_args__ = (UniqueConstraint("kind", "day"), UniqueConstraint("kind", "job_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    day: Mapped[date | None] = mapped_column(Date)
    job_id: Mapped[int | None] = mapped_column(Integer)
    # "sending" (claimed by `claimed_by`), "sent", "nothing" (nothing to tell: no e-mail), or
    # "failed" (the SMTP server refused or was away; `error` says how, tried again later).
    outcome: Mapped[str] = mapped_column(String(20), default="sending")
    claimed_by: Mapped[str | None] = mapped_column(String(300))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    covered_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    covered_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    subject: Mapped[str | None] = mapped_column(String(300))
    error: Mapped[str | None] = mapped_column(String(500))
