"""dossiers (issue 19): agencies with their signing secrets and status-code mapping,
dossiers, their timeline, the documents asked for, residents' links, signed batches
received, file imports, and the agency side of the service index

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "agencies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name_vi", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_agencies_unit_id_units"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agencies")),
        sa.UniqueConstraint("code", name=op.f("uq_agencies_code")),
    )
    op.create_index(op.f("ix_agencies_unit_id"), "agencies", ["unit_id"], unique=False)
    op.create_table(
        "agency_secrets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_agency_secrets_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agency_secrets")),
    )
    op.create_index(
        op.f("ix_agency_secrets_agency_id"), "agency_secrets", ["agency_id"], unique=False
    )
    op.create_table(
        "agency_stats",
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("finished", sa.Integer(), nullable=False),
        sa.Column("finished_on_time", sa.Integer(), nullable=False),
        sa.Column("open", sa.Integer(), nullable=False),
        sa.Column("open_overdue", sa.Integer(), nullable=False),
        sa.Column("online", sa.Integer(), nullable=False),
        sa.Column("rated", sa.Integer(), nullable=False),
        sa.Column("satisfied", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("not_satisfied", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_agency_stats_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agency_id", "period", name=op.f("pk_agency_stats")),
    )
    op.create_table(
        "agency_status_codes",
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.CheckConstraint(
            "status IN ('received', 'processing', 'supplement_requested', 'completed',"
            " 'returned', 'refused', 'withdrawn')",
            name=op.f("ck_agency_status_codes_status"),
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_agency_status_codes_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agency_id", "code", name=op.f("pk_agency_status_codes")),
    )
    op.create_table(
        "dossier_imports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("file_format", sa.String(length=10), nullable=False),
        sa.Column("object_key", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="queued", nullable=False),
        sa.Column("bytes_done", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("lines_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("accepted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("duplicates", sa.Integer(), server_default="0", nullable=False),
        sa.Column("refused", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_dossier_imports_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_dossier_imports_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_imports")),
    )
    op.create_index(
        op.f("ix_dossier_imports_agency_id"), "dossier_imports", ["agency_id"], unique=False
    )
    op.create_table(
        "dossier_ingest_batches",
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("webhook_id", sa.String(length=128), nullable=False),
        sa.Column("body_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("results", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_dossier_ingest_batches_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agency_id", "webhook_id", name=op.f("pk_dossier_ingest_batches")),
    )
    op.create_table(
        "dossiers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("procedure_code", sa.String(length=64), nullable=False),
        sa.Column("procedure_name", sa.Text(), nullable=False),
        sa.Column("field_code", sa.String(length=64), nullable=True),
        sa.Column("applicant_name", sa.Text(), nullable=False),
        sa.Column("applicant_kind", sa.String(length=10), nullable=False),
        sa.Column("applicant_id_hash", sa.LargeBinary(length=32), nullable=True),
        sa.Column("applicant_id_last4", sa.String(length=4), nullable=True),
        sa.Column("applicant_phone", sa.Text(), nullable=True),
        sa.Column("applicant_email", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("handling_unit_name", sa.Text(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refused_reason", sa.Text(), nullable=True),
        sa.Column("finished_on_time", sa.Boolean(), nullable=True),
        sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "fees", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column(
            "results", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
        sa.Column("result_pickup", sa.Text(), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rating", sa.String(length=16), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "applicant_kind IN ('person', 'business')", name=op.f("ck_dossiers_applicant_kind")
        ),
        sa.CheckConstraint(
            "rating IN ('satisfied', 'accept', 'not_satisfied')", name=op.f("ck_dossiers_rating")
        ),
        sa.CheckConstraint(
            "status IN ('received', 'processing', 'supplement_requested', 'completed',"
            " 'returned', 'refused', 'withdrawn')",
            name=op.f("ck_dossiers_status"),
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_dossiers_agency_id_agencies"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossiers")),
        sa.UniqueConstraint("code", name=op.f("uq_dossiers_code")),
    )
    op.create_index(
        "ix_dossiers_agency_received", "dossiers", ["agency_id", "received_at"], unique=False
    )
    op.create_index(
        "ix_dossiers_applicant",
        "dossiers",
        ["applicant_id_hash", sa.literal_column("received_at DESC")],
        unique=False,
        postgresql_where=sa.text("applicant_id_hash IS NOT NULL"),
    )
    op.create_index(
        "ix_dossiers_open_due",
        "dossiers",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text(
            "status IN ('received', 'processing', 'supplement_requested')"
            " AND due_at IS NOT NULL AND overdue_at IS NULL"
        ),
    )
    op.create_table(
        "dossier_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("agency_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seq", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=24), nullable=True),
        sa.Column("to_status", sa.String(length=24), nullable=True),
        sa.Column("applied", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("handler", sa.Text(), nullable=True),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_dossier_events_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dossier_id"],
            ["dossiers.id"],
            name=op.f("fk_dossier_events_dossier_id_dossiers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_events")),
    )
    op.create_index(
        "ix_dossier_events_dossier_at", "dossier_events", ["dossier_id", "at", "seq"], unique=False
    )
    op.create_index(
        "uq_dossier_events_agency_event", "dossier_events", ["agency_id", "event_id"], unique=True
    )
    op.create_table(
        "dossier_import_errors",
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=60), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["dossier_imports.id"],
            name=op.f("fk_dossier_import_errors_import_id_dossier_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("import_id", "line", name=op.f("pk_dossier_import_errors")),
    )
    op.create_table(
        "dossier_links",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column(
            "linked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["dossier_id"],
            ["dossiers.id"],
            name=op.f("fk_dossier_links_dossier_id_dossiers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_dossier_links_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "dossier_id", name=op.f("pk_dossier_links")),
    )
    op.create_index(
        op.f("ix_dossier_links_dossier_id"), "dossier_links", ["dossier_id"], unique=False
    )
    op.create_table(
        "dossier_supplements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.String(length=128), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("needed", sa.Text(), nullable=False),
        sa.Column("supply_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("old_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("new_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("supplied_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["dossier_id"],
            ["dossiers.id"],
            name=op.f("fk_dossier_supplements_dossier_id_dossiers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_supplements")),
    )
    op.create_index(
        op.f("ix_dossier_supplements_dossier_id"),
        "dossier_supplements",
        ["dossier_id"],
        unique=False,
    )
    op.create_index(
        "uq_dossier_supplements_source",
        "dossier_supplements",
        ["dossier_id", "source_id"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_dossier_supplements_source", table_name="dossier_supplements")
    op.drop_index(op.f("ix_dossier_supplements_dossier_id"), table_name="dossier_supplements")
    op.drop_table("dossier_supplements")
    op.drop_index(op.f("ix_dossier_links_dossier_id"), table_name="dossier_links")
    op.drop_table("dossier_links")
    op.drop_table("dossier_import_errors")
    op.drop_index("uq_dossier_events_agency_event", table_name="dossier_events")
    op.drop_index("ix_dossier_events_dossier_at", table_name="dossier_events")
    op.drop_table("dossier_events")
    op.drop_index(
        "ix_dossiers_open_due",
        table_name="dossiers",
        postgresql_where=sa.text(
            "status IN ('received', 'processing', 'supplement_requested')"
            " AND due_at IS NOT NULL AND overdue_at IS NULL"
        ),
    )
    op.drop_index(
        "ix_dossiers_applicant",
        table_name="dossiers",
        postgresql_where=sa.text("applicant_id_hash IS NOT NULL"),
    )
    op.drop_index("ix_dossiers_agency_received", table_name="dossiers")
    op.drop_table("dossiers")
    op.drop_table("dossier_ingest_batches")
    op.drop_index(op.f("ix_dossier_imports_agency_id"), table_name="dossier_imports")
    op.drop_table("dossier_imports")
    op.drop_table("agency_status_codes")
    op.drop_table("agency_stats")
    op.drop_index(op.f("ix_agency_secrets_agency_id"), table_name="agency_secrets")
    op.drop_table("agency_secrets")
    op.drop_index(op.f("ix_agencies_unit_id"), table_name="agencies")
    op.drop_table("agencies")
