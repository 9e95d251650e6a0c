"""photo redaction and abuse controls (issue 22 items 5-6)

Suspensions of resident accounts, reports flagged abusive (hidden from the public) and
the redactions of report photos (the rectangles, the kept unredacted copy).

Revision ID: 0090
Revises: 0080
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0090"
down_revision: str | None = "0080"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


REASON_CODES = ("spam", "offensive", "harassment", "personal_data", "false_report")


def upgrade() -> None:
    # item 6: suspensions of resident accounts (app/accounts/suspension.py)
    op.create_table(
        "account_suspensions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("suspended_by", sa.Uuid(), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.Uuid(), nullable=True),
        sa.Column("appeal_text", sa.Text(), nullable=True),
        sa.Column("appealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_account_suspensions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["suspended_by"],
            ["users.id"],
            name=op.f("fk_account_suspensions_suspended_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lifted_by"],
            ["users.id"],
            name=op.f("fk_account_suspensions_lifted_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_suspensions")),
    )
    op.create_index(
        "ix_account_suspensions_unlifted",
        "account_suspensions",
        ["user_id"],
        postgresql_where=sa.text("lifted_at IS NULL"),
    )
    op.create_index(
        "ix_account_suspensions_appealed",
        "account_suspensions",
        ["appealed_at"],
        postgresql_where=sa.text("lifted_at IS NULL AND appealed_at IS NOT NULL"),
    )
    # item 6: reports flagged abusive (app/complaints/abuse.py)
    op.create_table(
        "report_abuse_flags",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("report_code", sa.String(length=12), nullable=False),
        sa.Column("reason_code", sa.String(length=20), nullable=False),
        sa.Column("flagged_by", sa.Uuid(), nullable=True),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reason_code IN (" + ", ".join(f"'{c}'" for c in REASON_CODES) + ")",
            name=op.f("ck_report_abuse_flags_reason_code"),
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_report_abuse_flags_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["flagged_by"],
            ["users.id"],
            name=op.f("fk_report_abuse_flags_flagged_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_report_abuse_flags")),
        sa.UniqueConstraint("report_code", name=op.f("uq_report_abuse_flags_report_code")),
    )
    # item 5: photo redaction (app/complaints/redaction.py)
    op.create_table(
        "photo_redactions",
        sa.Column("photo_id", sa.Uuid(), nullable=False),
        sa.Column("original_key", sa.Text(), nullable=True),
        sa.Column("rectangles", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("times", sa.Integer(), nullable=False),
        sa.Column("redacted_by", sa.Uuid(), nullable=True),
        sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["photo_id"],
            ["report_photos.id"],
            name=op.f("fk_photo_redactions_photo_id_report_photos"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["redacted_by"],
            ["users.id"],
            name=op.f("fk_photo_redactions_redacted_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("photo_id", name=op.f("pk_photo_redactions")),
    )


def downgrade() -> None:
    op.drop_table("photo_redactions")
    op.drop_table("report_abuse_flags")
    op.drop_index(
        "ix_account_suspensions_appealed",
        table_name="account_suspensions",
        postgresql_where=sa.text("lifted_at IS NULL AND appealed_at IS NOT NULL"),
    )
    op.drop_index(
        "ix_account_suspensions_unlifted",
        table_name="account_suspensions",
        postgresql_where=sa.text("lifted_at IS NULL"),
    )
    op.drop_table("account_suspensions")
