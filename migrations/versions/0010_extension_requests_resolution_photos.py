"""extension requests (an officer asks, a manager decides) and photos of a resolution

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("reports", sa.Column("extension_requested_until", sa.Date(), nullable=True))
    op.add_column("reports", sa.Column("extension_request_reason", sa.Text(), nullable=True))
    op.add_column(
        "reports",
        sa.Column("extension_requested_by", postgresql.UUID(as_uuid=True), nullable=True),
    )
    op.add_column(
        "reports",
        sa.Column("extension_requested_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("report_photos", sa.Column("event_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_report_photos_event_id_report_events"),
        "report_photos",
        "report_events",
        ["event_id"],
        ["id"],
        ondelete="SET NULL",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("fk_report_photos_event_id_report_events"), "report_photos", type_="foreignkey"
    )
    op.drop_column("report_photos", "event_id")
    op.drop_column("reports", "extension_requested_at")
    op.drop_column("reports", "extension_requested_by")
    op.drop_column("reports", "extension_request_reason")
    op.drop_column("reports", "extension_requested_until")
