"""resumable photo uploads with the tus 1.0 protocol (issue 24 item 3)

Revision ID: 0110
Revises: 0100
Create Date: 2026-12-05
"""

from collections.abc import Sequence

revision: str = "0110"
down_revision: str | None = "0100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
