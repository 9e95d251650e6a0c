"""the agency index and the supervisors' page (issue 19 item 7): agency_stats gets the
finished-late count (the on-time share's denominator is the dossiers with a verdict) and
the median working days taken; an index of the open overdue dossiers per agency (the
supervisors' list, keyset on the due date, and the sweep that unmarks a dossier whose due
date moved); indexes on when a dossier last changed and was rated (the index's refresh
recomputes only the months of the dossiers changed since the previous one); the working
days a dossier took to its first finish, frozen by the sweep (as reports' handling days),
with the index of the finished dossiers not measured yet

Revision ID: 0021
Revises: 0030
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "agency_stats",
        sa.Column("finished_late", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "agency_stats",
        sa.Column("median_handling_working_days", sa.Numeric(7, 2), nullable=True),
    )
    op.create_index(
        "ix_dossiers_open_overdue",
        "dossiers",
        ["agency_id", "due_at", "id"],
        unique=False,
        postgresql_where=sa.text(
            "status IN ('received', 'processing', 'supplement_requested')"
            " AND overdue_at IS NOT NULL"
        ),
    )
    op.add_column("dossiers", sa.Column("handling_working_days", sa.Numeric(7, 2), nullable=True))
    op.create_index(
        "ix_dossiers_unmeasured",
        "dossiers",
        ["id"],
        unique=False,
        postgresql_where=sa.text(
            "status IN ('completed', 'returned', 'refused') AND handling_working_days IS NULL"
        ),
    )
    op.create_index("ix_dossiers_updated_at", "dossiers", ["updated_at"], unique=False)
    op.create_index(
        "ix_dossiers_rated_at",
        "dossiers",
        ["rated_at"],
        unique=False,
        postgresql_where=sa.text("rated_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_dossiers_rated_at",
        table_name="dossiers",
        postgresql_where=sa.text("rated_at IS NOT NULL"),
    )
    op.drop_index("ix_dossiers_updated_at", table_name="dossiers")
    op.drop_index(
        "ix_dossiers_unmeasured",
        table_name="dossiers",
        postgresql_where=sa.text(
            "status IN ('completed', 'returned', 'refused') AND handling_working_days IS NULL"
        ),
    )
    op.drop_column("dossiers", "handling_working_days")
    op.drop_index(
        "ix_dossiers_open_overdue",
        table_name="dossiers",
        postgresql_where=sa.text(
            "status IN ('received', 'processing', 'supplement_requested')"
            " AND overdue_at IS NOT NULL"
        ),
    )
    op.drop_column("agency_stats", "median_handling_working_days")
    op.drop_column("agency_stats", "finished_late")
