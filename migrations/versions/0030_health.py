"""health book (issue 20): patients matched by the citizen ID's keyed hash, their clinical
resources in the fields kept, practitioners and organisations for names, import jobs with
their files' cursors and per-line errors, and the access log of every read

Revision ID: 0030
Revises: 0020
Create Date: 2026-12-05 03:39:51.490561
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0030"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "health_parties",
        sa.Column("resource_type", sa.String(length=24), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=True),
        sa.Column("content_hash", sa.LargeBinary(length=16), nullable=False),
        sa.PrimaryKeyConstraint("resource_type", "source_id", name=op.f("pk_health_parties")),
    )
    op.create_table(
        "health_patients",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("citizen_id_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("citizen_id_last4", sa.String(length=4), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=True),
        sa.Column("birth_date", sa.String(length=10), nullable=True),
        sa.Column("sex", sa.String(length=16), nullable=True),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=True),
        sa.Column("content_hash", sa.LargeBinary(length=16), nullable=False),
        sa.Column(
            "imported_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_patients")),
        sa.UniqueConstraint("citizen_id_hash", name=op.f("uq_health_patients_citizen_id_hash")),
        sa.UniqueConstraint("source_id", name=op.f("uq_health_patients_source_id")),
    )
    op.create_table(
        "health_resources",
        sa.Column("resource_type", sa.String(length=24), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("section", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("code", sa.Text(), nullable=True),
        sa.Column("code_system", sa.Text(), nullable=True),
        sa.Column("display", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sort_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value_num", sa.Double(), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("performer_ref", sa.Text(), nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=True),
        sa.Column("content_hash", sa.LargeBinary(length=16), nullable=False),
        sa.Column(
            "imported_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "section IN ('allergies', 'conditions', 'medications', 'immunizations', 'procedures',"
            " 'vital_signs', 'results', 'reports', 'encounters')",
            name=op.f("ck_health_resources_section"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["health_patients.id"],
            name=op.f("fk_health_resources_patient_id_health_patients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("resource_type", "source_id", name=op.f("pk_health_resources")),
    )
    op.create_index(
        "ix_health_resources_patient_section",
        "health_resources",
        ["patient_id", "section", "sort_at", "resource_type", "source_id"],
        unique=False,
    )
    op.create_table(
        "health_access_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("section", sa.String(length=20), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=True),
        sa.Column("device", sa.Text(), nullable=True),
        sa.Column("ip", postgresql.INET(), nullable=True),
        sa.Column("request_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["health_patients.id"],
            name=op.f("fk_health_access_log_patient_id_health_patients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_health_access_log_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_access_log")),
    )
    op.create_index(
        "ix_health_access_log_patient_id",
        "health_access_log",
        ["patient_id", sa.literal_column("id DESC")],
        unique=False,
    )
    op.create_index("ix_health_access_log_user_id", "health_access_log", ["user_id"], unique=False)
    op.create_table(
        "health_import_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=12), server_default="queued", nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "progressed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("runs", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failure_code", sa.String(length=60), nullable=True),
        sa.Column("failure_params", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("bulk_status_url", sa.Text(), nullable=True),
        sa.Column("bulk_deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lines", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("imported", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("unchanged", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("skipped", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("duplicates", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("errors", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("kind IN ('files', 'bulk')", name=op.f("ck_health_import_jobs_kind")),
        sa.CheckConstraint(
            "status IN ('queued', 'exporting', 'importing', 'succeeded', 'failed')",
            name=op.f("ck_health_import_jobs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_health_import_jobs_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_import_jobs")),
    )
    op.create_index(
        "ix_health_import_jobs_created_at",
        "health_import_jobs",
        [sa.literal_column("created_at DESC")],
        unique=False,
    )
    op.create_index(
        "ix_health_import_jobs_unfinished",
        "health_import_jobs",
        ["progressed_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('queued', 'exporting', 'importing')"),
    )
    op.create_table(
        "health_import_errors",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("line", sa.BigInteger(), nullable=True),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("field", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["health_import_jobs.id"],
            name=op.f("fk_health_import_errors_job_id_health_import_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_import_errors")),
    )
    op.create_index(
        "ix_health_import_errors_job_id", "health_import_errors", ["job_id", "id"], unique=False
    )
    op.create_table(
        "health_import_files",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("byte_offset", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("line", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("done", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("lines", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("imported", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("unchanged", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("skipped", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("duplicates", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("errors", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "format IN ('ndjson', 'bundle')", name=op.f("ck_health_import_files_format")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["health_import_jobs.id"],
            name=op.f("fk_health_import_files_job_id_health_import_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "position", name=op.f("pk_health_import_files")),
    )


def downgrade() -> None:
    op.drop_table("health_import_files")
    op.drop_index("ix_health_import_errors_job_id", table_name="health_import_errors")
    op.drop_table("health_import_errors")
    op.drop_index(
        "ix_health_import_jobs_unfinished",
        table_name="health_import_jobs",
        postgresql_where=sa.text("status IN ('queued', 'exporting', 'importing')"),
    )
    op.drop_index("ix_health_import_jobs_created_at", table_name="health_import_jobs")
    op.drop_table("health_import_jobs")
    op.drop_index("ix_health_access_log_user_id", table_name="health_access_log")
    op.drop_index("ix_health_access_log_patient_id", table_name="health_access_log")
    op.drop_table("health_access_log")
    op.drop_index("ix_health_resources_patient_section", table_name="health_resources")
    op.drop_table("health_resources")
    op.drop_table("health_patients")
    op.drop_table("health_parties")
