"""notification_deliveries.claimed_until: a push run's claim on the rows it is sending

A push job claims its rows in one short transaction, sends with no transaction open, and
records the answers in another (app/notifications/push.py); the claim keeps other runs
off the rows meanwhile, and lapses if the run dies. Nullable, no default: no rewrite.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "notification_deliveries",
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("notification_deliveries", "claimed_until")
