"""response templates and bulk work (issue 22 items 1-2)

response_templates: a unit's (or the city's) ready answers with placeholders.
response_template_auto_sends: a report entering a status an automatic template is kept
for, written by a trigger on report_events (every transition writes its timeline event
there, routing's set-based statements too), sent by the worker once per report and status.

Revision ID: 0070
Revises: 0060
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0070"
down_revision: str | None = "0060"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE FUNCTION response_template_auto_send_queue() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- a report entering a status that an automatic template is kept for
    IF EXISTS (SELECT 1 FROM response_templates WHERE auto_on_status = NEW.to_status) THEN
        INSERT INTO response_template_auto_sends (report_id, status, queued_at)
        VALUES (NEW.report_id, NEW.to_status, now())
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$
"""
TRIGGER = """
CREATE TRIGGER response_template_auto_send_queue
AFTER INSERT ON report_events
FOR EACH ROW
WHEN (NEW.to_status IS NOT NULL AND NEW.to_status IS DISTINCT FROM NEW.from_status)
EXECUTE FUNCTION response_template_auto_send_queue();
"""


def upgrade() -> None:
    op.create_table(
        "response_templates",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=True),
        sa.Column("category_code", sa.String(length=40), nullable=True),
        sa.Column("for_status", sa.String(length=12), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body_vi", sa.Text(), nullable=False),
        sa.Column("body_en", sa.Text(), nullable=False),
        sa.Column("target_status", sa.String(length=12), nullable=True),
        sa.Column("auto_on_status", sa.String(length=12), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
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
            "target_status IN ('resolved', 'rejected')",
            name=op.f("ck_response_templates_target_status"),
        ),
        sa.CheckConstraint(
            "auto_on_status IN ('submitted', 'assigned', 'in_progress', 'reopened')",
            name=op.f("ck_response_templates_auto_on_status"),
        ),
        sa.CheckConstraint(
            "auto_on_status IS NULL OR target_status IS NULL",
            name=op.f("ck_response_templates_auto_is_a_reply"),
        ),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["categories.code"],
            name=op.f("fk_response_templates_category_code_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_response_templates_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["units.id"],
            name=op.f("fk_response_templates_unit_id_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_response_templates")),
    )
    op.create_index("ix_response_templates_unit_id", "response_templates", ["unit_id"])
    op.create_index(
        "ix_response_templates_auto",
        "response_templates",
        ["auto_on_status"],
        postgresql_where=sa.text("auto_on_status IS NOT NULL"),
    )
    op.create_table(
        "response_template_auto_sends",
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column(
            "queued_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("template_id", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(length=10), nullable=True),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["reports.id"],
            name=op.f("fk_response_template_auto_sends_report_id_reports"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["response_templates.id"],
            name=op.f("fk_response_template_auto_sends_template_id_response_templates"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint(
            "report_id", "status", name=op.f("pk_response_template_auto_sends")
        ),
    )
    op.create_index(
        "ix_response_template_auto_sends_pending",
        "response_template_auto_sends",
        ["queued_at"],
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.execute(FUNCTION)
    op.execute(TRIGGER)


def downgrade() -> None:
    op.execute("DROP TRIGGER response_template_auto_send_queue ON report_events")
    op.execute("DROP FUNCTION response_template_auto_send_queue()")
    op.drop_table("response_template_auto_sends")
    op.drop_table("response_templates")
