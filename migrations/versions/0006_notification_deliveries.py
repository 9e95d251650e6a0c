"""notification deliveries (one push per notification and device), push reconciliation

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 15:08:19.301859
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_deliveries",
        sa.Column("notification_id", sa.BigInteger(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=10), server_default="pending", nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("fcm_message_id", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed', 'skipped')",
            name=op.f("ck_notification_deliveries_status"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_notification_deliveries_attempts")),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_notification_deliveries_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_deliveries_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "notification_id", "device_id", name=op.f("pk_notification_deliveries")
        ),
    )
    op.create_index(
        "ix_notification_deliveries_device_id",
        "notification_deliveries",
        ["device_id"],
        unique=False,
    )
    op.create_index(
        "ix_notifications_push_pending",
        "notifications",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("push_status = 'pending'"),
    )
    op.create_index(
        "ix_notifications_user_unread",
        "notifications",
        ["user_id", sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("read_at IS NULL"),
    )
    # by hand: autogenerate does not compare check constraints of existing tables
    op.create_check_constraint(
        op.f("ck_notifications_push_status"),
        "notifications",
        "push_status IN ('pending', 'sent', 'failed', 'no_device', 'expired')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_notifications_push_status"), "notifications", type_="check")
    op.drop_index(
        "ix_notifications_user_unread",
        table_name="notifications",
        postgresql_where=sa.text("read_at IS NULL"),
    )
    op.drop_index(
        "ix_notifications_push_pending",
        table_name="notifications",
        postgresql_where=sa.text("push_status = 'pending'"),
    )
    op.drop_index("ix_notification_deliveries_device_id", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
