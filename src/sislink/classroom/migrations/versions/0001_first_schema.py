"""The classroom's first schema: every table of sislink.classroom.models as of issue 4.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 21:48:47.167044
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "export_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("object_id", sa.Integer(), nullable=False),
        sa.Column("sis_identity", sa.String(length=300), nullable=False),
        sa.Column("sis_sourced_id", sa.String(length=255), nullable=False),
        sa.Column("content_hash", sa.String(length=128), nullable=True),
        sa.Column("last_status", sa.String(length=50), nullable=False),
        sa.Column("last_message", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_record")),
        sa.UniqueConstraint(
            "kind",
            "object_id",
            "sis_identity",
            name=op.f("uq_export_record_kind_object_id_sis_identity"),
        ),
    )
    with op.batch_alter_table("export_record", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_export_record_sis_sourced_id"), ["sis_sourced_id"], unique=False
        )

    organisation = op.create_table(
        "organisation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("identity_namespace", sa.String(length=36), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisation")),
        sa.UniqueConstraint("identity_namespace", name=op.f("uq_organisation_identity_namespace")),
    )
    # The organisation row and its identity namespace are made here, once per database:
    # never by two processes racing at first start.
    op.bulk_insert(
        organisation,
        [
            {
                "name": "",
                "identity_namespace": str(uuid.uuid4()),
                "settings": {},
                "created_at": datetime.now(UTC),
            }
        ],
    )
    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("given_name", sa.String(length=150), nullable=True),
        sa.Column("family_name", sa.String(length=150), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("email_key", sa.String(length=320), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("is_teacher", sa.Boolean(), nullable=False),
        sa.Column("is_student", sa.Boolean(), nullable=False),
        sa.Column("sis_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("sis_identifier", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
        sa.UniqueConstraint("email_key", name=op.f("uq_person_email_key")),
        sa.UniqueConstraint("sis_sourced_id", name=op.f("uq_person_sis_sourced_id")),
    )
    op.create_table(
        "school",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=True),
        sa.Column("sis_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_school")),
        sa.UniqueConstraint("sis_sourced_id", name=op.f("uq_school_sis_sourced_id")),
    )
    op.create_table(
        "term",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("school_year", sa.String(length=20), nullable=True),
        sa.Column("sis_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_term")),
        sa.UniqueConstraint("sis_sourced_id", name=op.f("uq_term_sis_sourced_id")),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["person.id"], name=op.f("fk_audit_event_actor_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_at"), ["at"], unique=False)

    op.create_table(
        "course",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("course_code", sa.String(length=255), nullable=True),
        sa.Column("school_id", sa.Integer(), nullable=True),
        sa.Column("sis_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["school_id"], ["school.id"], name=op.f("fk_course_school_id_school")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_course")),
        sa.UniqueConstraint("sis_sourced_id", name=op.f("uq_course_sis_sourced_id")),
    )
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_course_school_id"), ["school_id"], unique=False)

    op.create_table(
        "grading_period",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("term_id", sa.Integer(), nullable=True),
        sa.Column("sis_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["term_id"], ["term.id"], name=op.f("fk_grading_period_term_id_term")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grading_period")),
        sa.UniqueConstraint("sis_sourced_id", name=op.f("uq_grading_period_sis_sourced_id")),
    )
    with op.batch_alter_table("grading_period", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grading_period_term_id"), ["term_id"], unique=False)

    op.create_table(
        "sis_connection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner", sa.String(length=100), nullable=False),
        sa.Column("version", sa.String(length=10), nullable=False),
        sa.Column("host_url", sa.String(length=2000), nullable=False),
        sa.Column("token_url", sa.String(length=2000), nullable=True),
        sa.Column("access_key", sa.String(length=500), nullable=False),
        sa.Column("secret_code_sealed", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("teacher_export_enabled", sa.Boolean(), nullable=False),
        sa.Column("current_slot", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("authorised_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("connected_by_id", sa.Integer(), nullable=True),
        sa.Column("disconnected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("district_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("last_import_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_export_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connected_by_id"],
            ["person.id"],
            name=op.f("fk_sis_connection_connected_by_id_person"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sis_connection")),
        sa.UniqueConstraint("current_slot", name=op.f("uq_sis_connection_current_slot")),
    )
    op.create_table(
        "class",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("section", sa.String(length=255), nullable=True),
        sa.Column("school_id", sa.Integer(), nullable=True),
        sa.Column("term_id", sa.Integer(), nullable=True),
        sa.Column("course_id", sa.Integer(), nullable=True),
        sa.Column("primary_teacher_id", sa.Integer(), nullable=True),
        sa.Column("sis_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("hand_edited_fields", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"], ["course.id"], name=op.f("fk_class_course_id_course")
        ),
        sa.ForeignKeyConstraint(
            ["primary_teacher_id"], ["person.id"], name=op.f("fk_class_primary_teacher_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["school_id"], ["school.id"], name=op.f("fk_class_school_id_school")
        ),
        sa.ForeignKeyConstraint(["term_id"], ["term.id"], name=op.f("fk_class_term_id_term")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_class")),
        sa.UniqueConstraint("sis_sourced_id", name=op.f("uq_class_sis_sourced_id")),
    )
    with op.batch_alter_table("class", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_class_course_id"), ["course_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_class_primary_teacher_id"), ["primary_teacher_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_class_school_id"), ["school_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_class_term_id"), ["term_id"], unique=False)

    op.create_table(
        "category",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("weight", sa.Float(), nullable=True),
        sa.Column("sis_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"], ["class.id"], name=op.f("fk_category_class_id_class"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category")),
        sa.UniqueConstraint("class_id", "title", name=op.f("uq_category_class_id_title")),
    )
    op.create_table(
        "class_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("sis_class_sourced_id", sa.String(length=255), nullable=False),
        sa.Column("linked_by_id", sa.Integer(), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["class.id"],
            name=op.f("fk_class_link_class_id_class"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["sis_connection.id"],
            name=op.f("fk_class_link_connection_id_sis_connection"),
        ),
        sa.ForeignKeyConstraint(
            ["linked_by_id"], ["person.id"], name=op.f("fk_class_link_linked_by_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_class_link")),
        sa.UniqueConstraint("class_id", name=op.f("uq_class_link_class_id")),
    )
    with op.batch_alter_table("class_link", schema=None) as batch_op:
        batch_op.create_index(
            "ix_class_link_sis_class", ["connection_id", "sis_class_sourced_id"], unique=False
        )

    op.create_table(
        "enrolment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("sis_sourced_id", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"], ["class.id"], name=op.f("fk_enrolment_class_id_class"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["person.id"], name=op.f("fk_enrolment_person_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrolment")),
        sa.UniqueConstraint(
            "class_id", "person_id", "role", name=op.f("uq_enrolment_class_id_person_id_role")
        ),
        sa.UniqueConstraint("sis_sourced_id", name=op.f("uq_enrolment_sis_sourced_id")),
    )
    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_enrolment_person_id"), ["person_id"], unique=False)

    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=True),
        sa.Column("progress_message", sa.Text(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("class_id", sa.Integer(), nullable=True),
        sa.Column("lock_key", sa.String(length=200), nullable=True),
        sa.Column("active_lock", sa.String(length=200), nullable=True),
        sa.Column("requested_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["class_id"], ["class.id"], name=op.f("fk_job_class_id_class"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["sis_connection.id"],
            name=op.f("fk_job_connection_id_sis_connection"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["person.id"], name=op.f("fk_job_requested_by_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
        sa.UniqueConstraint("active_lock", name=op.f("uq_job_active_lock")),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_class_id"), ["class_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_connection_id"), ["connection_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_status"), ["status"], unique=False)

    op.create_table(
        "coursework",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("class_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("max_points", sa.Float(), nullable=True),
        sa.Column("assign_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("grading_period_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("export_to_sis", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"], ["category.id"], name=op.f("fk_coursework_category_id_category")
        ),
        sa.ForeignKeyConstraint(
            ["class_id"],
            ["class.id"],
            name=op.f("fk_coursework_class_id_class"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["person.id"], name=op.f("fk_coursework_created_by_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["grading_period_id"],
            ["grading_period.id"],
            name=op.f("fk_coursework_grading_period_id_grading_period"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coursework")),
    )
    with op.batch_alter_table("coursework", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_coursework_category_id"), ["category_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_coursework_class_id"), ["class_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_coursework_grading_period_id"), ["grading_period_id"], unique=False
        )

    op.create_table(
        "mark",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("coursework_id", sa.Integer(), nullable=False),
        sa.Column("student_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("excused", sa.Boolean(), nullable=False),
        sa.Column("missing", sa.Boolean(), nullable=False),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["coursework_id"],
            ["coursework.id"],
            name=op.f("fk_mark_coursework_id_coursework"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["student_id"], ["person.id"], name=op.f("fk_mark_student_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["person.id"], name=op.f("fk_mark_updated_by_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mark")),
        sa.UniqueConstraint(
            "coursework_id", "student_id", name=op.f("uq_mark_coursework_id_student_id")
        ),
    )
    with op.batch_alter_table("mark", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mark_student_id"), ["student_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mark", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mark_student_id"))

    op.drop_table("mark")
    with op.batch_alter_table("coursework", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coursework_grading_period_id"))
        batch_op.drop_index(batch_op.f("ix_coursework_class_id"))
        batch_op.drop_index(batch_op.f("ix_coursework_category_id"))

    op.drop_table("coursework")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_status"))
        batch_op.drop_index(batch_op.f("ix_job_connection_id"))
        batch_op.drop_index(batch_op.f("ix_job_class_id"))

    op.drop_table("job")
    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrolment_person_id"))

    op.drop_table("enrolment")
    with op.batch_alter_table("class_link", schema=None) as batch_op:
        batch_op.drop_index("ix_class_link_sis_class")

    op.drop_table("class_link")
    op.drop_table("category")
    with op.batch_alter_table("class", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_class_term_id"))
        batch_op.drop_index(batch_op.f("ix_class_school_id"))
        batch_op.drop_index(batch_op.f("ix_class_primary_teacher_id"))
        batch_op.drop_index(batch_op.f("ix_class_course_id"))

    op.drop_table("class")
    op.drop_table("sis_connection")
    with op.batch_alter_table("grading_period", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grading_period_term_id"))

    op.drop_table("grading_period")
    with op.batch_alter_table("course", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_course_school_id"))

    op.drop_table("course")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_at"))
        batch_op.drop_index(batch_op.f("ix_audit_event_action"))

    op.drop_table("audit_event")
    op.drop_table("term")
    op.drop_table("school")
    op.drop_table("person")
    op.drop_table("organisation")
    with op.batch_alter_table("export_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_record_sis_sourced_id"))

    op.drop_table("export_record")
