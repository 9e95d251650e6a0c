"""report hardening (issue 17): reopen deadlines and counts, spatial lookups

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # item 14: the fingerprint of the body filed under an Idempotency-Key (NULL for
    # reports filed before: they match any retry, as they did)
    op.add_column(
        "reports", sa.Column("idempotency_fingerprint", sa.LargeBinary(length=32), nullable=True)
    )
    # item 13: the service index counts reopened reports per unit
    op.add_column(
        "unit_stats",
        sa.Column("reopened", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("unit_stats", "reopened")
    op.drop_column("reports", "idempotency_fingerprint")
