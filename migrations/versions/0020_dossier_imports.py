"""dossier file imports (issue 19 item 2): the uploaded file's name, the time of the last
committed chunk, a refused line's parameters (the statuses of an impossible move …) (the reconciler re-enqueues an unfinished import idle longer than
RECONCILE_AFTER_SECONDS), the statuses and formats as constraints, and the indexes of
the console's list and of the reconciler

Revision ID: 0020
Revises: 0017
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("dossier_imports", sa.Column("file_name", sa.Text(), nullable=True))
    op.add_column(
        "dossier_imports",
        sa.Column("progressed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "dossier_import_errors",
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.create_check_constraint(
        op.f("ck_dossier_imports_status"),
        "dossier_imports",
        "status IN ('queued', 'running', 'done', 'failed')",
    )
    op.create_check_constraint(
        op.f("ck_dossier_imports_file_format"),
        "dossier_imports",
        "file_format IN ('ndjson', 'csv')",
    )
    op.create_index(
        "ix_dossier_imports_created",
        "dossier_imports",
        [sa.text("created_at DESC"), sa.text("id DESC")],
        unique=False,
    )
    op.create_index(
        "ix_dossier_imports_unfinished",
        "dossier_imports",
        ["progressed_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_dossier_imports_unfinished",
        table_name="dossier_imports",
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.drop_index("ix_dossier_imports_created", table_name="dossier_imports")
    op.drop_constraint(op.f("ck_dossier_imports_file_format"), "dossier_imports", type_="check")
    op.drop_constraint(op.f("ck_dossier_imports_status"), "dossier_imports", type_="check")
    op.drop_column("dossier_import_errors", "params")
    op.drop_column("dossier_imports", "progressed_at")
    op.drop_column("dossier_imports", "file_name")
