"""the resident's change log for one sync call (issue 24 item 2)

Revision ID: 0100
Revises: 0090
Create Date: 2026-12-05
"""

from collections.abc import Sequence

revision: str = "0100"
down_revision: str | None = "0090"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
