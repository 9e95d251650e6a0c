"""Open311 GeoReport v2 (issue 21): third-party API keys, category attributes

Categories' extra questions (``category_attributes``, Open311's service attributes) and
the answers on each report (``reports.attributes``); third-party apps' API keys (the
SHA-256 of the key, never the key), the channel of a report filed with one
(``reports.open311_key_id``) and what the app sent besides the report
(``open311_filings``: the submitter's contact for the unit, the ``media_url`` and the
state of its fetch).

Revision ID: 0040
Revises: 0022
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0040"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "category_attributes",
        sa.Column("category_code", sa.String(length=40), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("datatype", sa.Text(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("description_vi", sa.Text(), nullable=False),
        sa.Column("description_en", sa.Text(), nullable=False),
        sa.Column("datatype_description_vi", sa.Text(), nullable=True),
        sa.Column("datatype_description_en", sa.Text(), nullable=True),
        sa.Column(
            "values",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.CheckConstraint(
            "datatype IN ('string', 'number', 'datetime', 'text', 'singlevaluelist',"
            " 'multivaluelist')",
            name=op.f("ck_category_attributes_datatype"),
        ),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["categories.code"],
            name=op.f("fk_category_attributes_category_code_categories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("category_code", "code", name=op.f("pk_category_attributes")),
    )
    # held in each process with the categories (app/places/reference.py), same channel
    op.execute(
        "CREATE TRIGGER category_attributes_notify_reference_data"
        " AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON category_attributes"
        " FOR EACH STATEMENT EXECUTE FUNCTION notify_reference_data()"
    )
    op.add_column(
        "reports",
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.create_table(
        "open311_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("reporter_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_open311_keys_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["users.id"], name=op.f("fk_open311_keys_reporter_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_open311_keys_key_hash")),
    )
    op.add_column("reports", sa.Column("open311_key_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_reports_open311_key_id_open311_keys"),
        "reports",
        "open311_keys",
        ["open311_key_id"],
        ["id"],
    )
    op.create_table(
        "open311_filings",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("device_id", sa.Text(), nullable=True),
        sa.Column("account_id", sa.Text(), nullable=True),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("media_url", sa.Text(), nullable=True),
        sa.Column("media_state", sa.String(length=10), nullable=False),
        sa.Column("media_attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("media_error", sa.Text(), nullable=True),
        sa.Column("media_tried_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("media_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "media_state IN ('none', 'pending', 'attached', 'failed')",
            name=op.f("ck_open311_filings_media_state"),
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["open311_keys.id"], name=op.f("fk_open311_filings_key_id_open311_keys")
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_open311_filings_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_open311_filings")),
    )
    op.create_index(
        "ix_open311_filings_media_pending",
        "open311_filings",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("media_state = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_open311_filings_media_pending",
        table_name="open311_filings",
        postgresql_where=sa.text("media_state = 'pending'"),
    )
    op.drop_table("open311_filings")
    op.drop_constraint(
        op.f("fk_reports_open311_key_id_open311_keys"), "reports", type_="foreignkey"
    )
    op.drop_column("reports", "open311_key_id")
    op.drop_table("open311_keys")
    op.drop_column("reports", "attributes")
    op.drop_table("category_attributes")
