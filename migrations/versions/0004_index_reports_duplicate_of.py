"""index reports.duplicate_of_id (foreign-key checks when reports are deleted)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_reports_duplicate_of_id"), "reports", ["duplicate_of_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_reports_duplicate_of_id"), table_name="reports")
