"""notification preferences (muted kinds, quiet hours), areas followed, announcements

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_PUSH_STATUSES = "push_status IN ('pending', 'sent', 'failed', 'no_device', 'expired')"
NEW_PUSH_STATUSES = "push_status IN ('pending', 'sent', 'failed', 'no_device', 'expired', 'muted')"


def upgrade() -> None:
    op.create_table(
        "notification_preferences",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "muted_kinds",
            postgresql.ARRAY(sa.String(length=40)),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("quiet_hours", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("quiet_start", sa.Time(), server_default="22:00", nullable=False),
        sa.Column("quiet_end", sa.Time(), server_default="06:00", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "quiet_start <> quiet_end", name=op.f("ck_notification_preferences_quiet_window")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notification_preferences_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_preferences")),
    )
    op.create_table(
        "area_follows",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("area_code", sa.String(length=10), nullable=False),
        sa.Column("following", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["area_code"],
            ["areas.code"],
            name=op.f("fk_area_follows_area_code_areas"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_area_follows_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "area_code", name=op.f("pk_area_follows")),
    )
    op.create_index(
        "ix_area_follows_area_user",
        "area_follows",
        ["area_code", "user_id"],
        unique=False,
        postgresql_where=sa.text("following"),
    )
    op.create_table(
        "announcements",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sender_id", sa.Uuid(), nullable=True),
        sa.Column("unit_id", sa.Uuid(), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("area_codes", postgresql.ARRAY(sa.String(length=10)), nullable=False),
        sa.Column("title_vi", sa.Text(), nullable=False),
        sa.Column("body_vi", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=True),
        sa.Column("body_en", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), server_default="queued", nullable=False),
        sa.Column("cursor", sa.Uuid(), nullable=True),
        sa.Column("recipients", sa.Integer(), server_default="0", nullable=False),
        sa.Column("inbox_rows", sa.Integer(), server_default="0", nullable=False),
        sa.Column("push_counts", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'done')", name=op.f("ck_announcements_status")
        ),
        sa.ForeignKeyConstraint(
            ["sender_id"],
            ["users.id"],
            name=op.f("fk_announcements_sender_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_announcements_unit_id_units"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_announcements")),
    )
    op.create_index(
        "ix_announcements_unfinished",
        "announcements",
        ["updated_at"],
        unique=False,
        postgresql_where=sa.text("status <> 'done'"),
    )
    op.add_column(
        "notifications", sa.Column("push_after", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("notifications", sa.Column("announcement_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_notifications_announcement_id_announcements"),
        "notifications",
        "announcements",
        ["announcement_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index(
        "ix_notifications_push_after",
        "notifications",
        ["push_after"],
        unique=False,
        postgresql_where=sa.text("push_status = 'pending' AND push_after IS NOT NULL"),
    )
    op.create_index(
        "ix_notifications_announcement_status",
        "notifications",
        ["announcement_id", "push_status"],
        unique=False,
        postgresql_where=sa.text("announcement_id IS NOT NULL"),
    )
    op.drop_constraint(op.f("ck_notifications_push_status"), "notifications", type_="check")
    op.create_check_constraint(
        op.f("ck_notifications_push_status"), "notifications", NEW_PUSH_STATUSES
    )
    # the fan-out's keyset walk over a ward's residents (users belongs to accounts; the
    # index is declared in app/notifications/models.py, its only user)
    op.create_index("ix_users_home_area_code_id", "users", ["home_area_code", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_users_home_area_code_id", table_name="users")
    op.execute("UPDATE notifications SET push_status = 'no_device' WHERE push_status = 'muted'")
    op.drop_constraint(op.f("ck_notifications_push_status"), "notifications", type_="check")
    op.create_check_constraint(
        op.f("ck_notifications_push_status"), "notifications", OLD_PUSH_STATUSES
    )
    op.drop_index(
        "ix_notifications_announcement_status",
        table_name="notifications",
        postgresql_where=sa.text("announcement_id IS NOT NULL"),
    )
    op.drop_index(
        "ix_notifications_push_after",
        table_name="notifications",
        postgresql_where=sa.text("push_status = 'pending' AND push_after IS NOT NULL"),
    )
    op.drop_constraint(
        op.f("fk_notifications_announcement_id_announcements"), "notifications", type_="foreignkey"
    )
    op.drop_column("notifications", "announcement_id")
    op.drop_column("notifications", "push_after")
    op.drop_index(
        "ix_announcements_unfinished",
        table_name="announcements",
        postgresql_where=sa.text("status <> 'done'"),
    )
    op.drop_table("announcements")
    op.drop_index(
        "ix_area_follows_area_user",
        table_name="area_follows",
        postgresql_where=sa.text("following"),
    )
    op.drop_table("area_follows")
    op.drop_table("notification_preferences")
